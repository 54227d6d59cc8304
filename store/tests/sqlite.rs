//! The conformance suite against the SQLite backend, in memory.

decompte_store::conformance_tests!(std::sync::Arc::new(
    decompte_store::SqliteStore::in_memory().expect("in-memory SQLite")
));

/// A bulk that at least doubles the table drops the date index for its
/// writes and builds it again before it ends: other connections keep it
/// throughout, and it is there after a bulk kept as after one undone.
#[tokio::test]
async fn a_large_bulk_builds_the_date_index_again() {
    use decompte_store::conformance::{day, report};
    use decompte_store::{Ledgered, Reports};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("decompte.sqlite");
    let store = decompte_store::SqliteStore::open(&path).expect("open");
    let indexed = || {
        rusqlite::Connection::open(&path)
            .expect("another connection")
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'current_by_date'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .expect("read")
            == 1
    };
    let w = Ledgered::for_fixtures();
    let reports: Vec<_> = ["56001", "56002", "56003"]
        .into_iter()
        .map(|commune| report(commune, day(1), 1, 1))
        .collect();
    for keep in [false, true] {
        assert!(store.begin_bulk(w, reports.len()).await.expect("begin"));
        store.write_reports(w, &reports).await.expect("written");
        assert!(indexed(), "other connections keep the index");
        store.end_bulk(w, keep).await.expect("ended");
        assert!(
            indexed(),
            "the index is there after the bulk (kept: {keep})"
        );
    }
    let day_one = store
        .current_reports(&decompte_store::ReportQuery {
            from: Some(day(1)),
            to: Some(day(1)),
            ..decompte_store::ReportQuery::default()
        })
        .await
        .expect("read by day");
    assert_eq!(day_one.len(), 3);
}
