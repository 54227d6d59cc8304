//! The store conformance suite against PostgreSQL (Debian's, run by the
//! test as the `postgres` user on loopback).

decompte_store::conformance_tests!(std::sync::Arc::new(
    decompte_tests::postgres_local::PostgresLocal::shared()
        .fresh_store()
        .await
));

/// Opening the store applies the schema once: a second opening (another
/// replica starting) has nothing to apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_applied_once() {
    let store = decompte_tests::postgres_local::PostgresLocal::shared()
        .fresh_store()
        .await;
    assert_eq!(store.migrate().await.expect("again"), 0);
}
