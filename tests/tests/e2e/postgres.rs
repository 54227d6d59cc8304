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

/// A first import (a bulk at least as large as the writes so far) drops
/// the date index for its writes and builds it again before it commits:
/// the index is there after a bulk kept as after one undone, and a later,
/// smaller bulk leaves it in place (reads are not held behind it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_import_builds_the_date_index_again() {
    use decompte_store::conformance::{day, report};
    use decompte_store::{Ledgered, Reports};
    let (_, store, client) = decompte_tests::postgres_local::PostgresLocal::shared()
        .fresh_store_and_client()
        .await;
    let indexed = || async {
        client
            .query_one(
                "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'current_by_date'",
                &[],
            )
            .await
            .expect("read")
            .get::<_, i64>(0)
            == 1
    };
    let w = Ledgered::for_fixtures();
    let reports: Vec<_> = (1..=40).map(|d| report("56001", day(d), 1, 1)).collect();
    for keep in [false, true] {
        assert!(store.begin_bulk(w, reports.len()).await.expect("begin"));
        store.write_reports(w, &reports).await.expect("written");
        store.end_bulk(w, keep).await.expect("ended");
        assert!(
            indexed().await,
            "the index is there after the bulk (kept: {keep})"
        );
    }
    // A smaller bulk into the store in service keeps the index, so the
    // app's reads go on while it runs (a dropped index would hold them).
    let day_one = decompte_store::ReportQuery {
        from: Some(day(1)),
        to: Some(day(1)),
        ..decompte_store::ReportQuery::default()
    };
    assert!(store.begin_bulk(w, 1).await.expect("begin"));
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        store.current_reports(&day_one),
    )
    .await
    .expect("a read during a small bulk is not held")
    .expect("read by day");
    assert_eq!(read.len(), 1);
    store.end_bulk(w, false).await.expect("ended");
}

/// A replica of the version before starts on a database a newer version
/// already migrated (a rolling upgrade, a version rolled back): it opens the
/// store and leaves the newer schema's version as it is, so that the newer
/// version does not apply its steps a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_version_leaves_a_newer_schema_alone() {
    let (url, store, client) = decompte_tests::postgres_local::PostgresLocal::shared()
        .fresh_store_and_client()
        .await;
    client
        .batch_execute("UPDATE decompte_schema SET version = version + 1")
        .await
        .expect("a newer version's mark");
    let newer: i32 = client
        .query_one("SELECT version FROM decompte_schema", &[])
        .await
        .expect("read")
        .get(0);
    assert_eq!(store.migrate().await.expect("migrate"), 0);
    let reopened = decompte_store::PostgresStore::connect(&url).await;
    assert!(reopened.is_ok(), "{:?}", reopened.err());
    let after: i32 = client
        .query_one("SELECT version FROM decompte_schema", &[])
        .await
        .expect("read")
        .get(0);
    assert_eq!(after, newer, "the newer schema's version was lowered");
}

mod copy {
    use decompte_core::Role;
    use decompte_store::conformance::{code, day, instant, report};
    use decompte_store::prelude::*;
    use decompte_store::{
        ContactOverrides, Credential, Ledgered, Publication, PublicationRequest, PublicationStatus,
        ReferenceSeries, Reminder, ReportQuery, SecondFactor,
    };
    use decompte_tests::dynamodb_local::DynamoLocal;
    use decompte_tests::postgres_local::PostgresLocal;

    /// Everything a store holds that a copy carries, as it reads it back.
    #[derive(Debug, PartialEq)]
    struct Dump {
        versions: Vec<decompte_core::Report>,
        credentials: Vec<Credential>,
        reference: Option<ReferenceSeries>,
        contacts: Option<ContactOverrides>,
        reminders: Vec<Reminder>,
        publications: Vec<Publication>,
    }

    async fn dump(store: &dyn Store) -> Dump {
        let mut reminders = Vec::new();
        for n in 0..12 {
            reminders.extend(store.reminders(day(n), "56").await.expect("reminders"));
        }
        let mut credentials = store.credentials().await.expect("credentials");
        credentials.sort_by(|a, b| a.id.cmp(&b.id));
        Dump {
            versions: store
                .versions(&ReportQuery::default())
                .await
                .expect("versions"),
            credentials,
            reference: store.reference("56").await.expect("reference"),
            contacts: store.contacts("56").await.expect("contacts"),
            reminders,
            publications: store.publications(100).await.expect("publications"),
        }
    }

    /// A crisis on DynamoDB: corrections with reasons and warnings, a
    /// prefecture's code with its second factor and recovery codes, a mairie's
    /// code it issued, an SpF series, contacts, a reminder, a publication.
    async fn crisis(store: &dyn Store) {
        let w = Ledgered::for_fixtures();
        for d in 1..=4 {
            store
                .write_report(w, &report("56260", day(d), 1, d), None)
                .await
                .expect("write");
        }
        store
            .write_report(w, &report("56260", day(2), 2, 9), None)
            .await
            .expect("correction");
        store
            .write_report(w, &report("56121", day(1), 1, 3), None)
            .await
            .expect("write");
        let prefecture = Credential {
            id: "prefecture-1".into(),
            role: Role::Prefecture,
            commune: None,
            departements: vec!["56".into()],
            label: "Cellule de crise".into(),
            code_hash: "hash-prefecture".into(),
            created_at: instant(0),
            last_used_at: Some(instant(50)),
            revoked_at: None,
            issued_by: None,
            expires_at: Some(instant(90 * 86_400)),
            second_factor: Some(SecondFactor {
                secret: "JBSWY3DPEHPK3PXP".into(),
                confirmed_at: Some(instant(10)),
                last_step: 42,
                recovery_hashes: vec!["r1".into(), "r2".into()],
            }),
        };
        store.insert_credential(&prefecture).await.expect("insert");
        let mairie = Credential {
            id: "commune-1".into(),
            role: Role::Commune,
            commune: Some(code("56260")),
            departements: Vec::new(),
            label: "Vannes".into(),
            code_hash: "hash-vannes".into(),
            issued_by: Some("prefecture-1".into()),
            expires_at: None,
            second_factor: None,
            revoked_at: Some(instant(70)),
            ..prefecture.clone()
        };
        store.insert_credential(&mairie).await.expect("insert");
        store
            .put_reference(&ReferenceSeries {
                departement: "56".into(),
                days: [(day(1), 4), (day(2), 6)].into_iter().collect(),
                imported_at: instant(100),
                imported_by: "prefecture-1".into(),
            })
            .await
            .expect("reference");
        store
            .put_contacts(&ContactOverrides {
                departement: "56".into(),
                contacts: [(
                    "56121".to_owned(),
                    ("0297000000".to_owned(), "mairie@lorient.fr".to_owned()),
                )]
                .into_iter()
                .collect(),
                imported_at: instant(110),
                imported_by: "prefecture-1".into(),
            })
            .await
            .expect("contacts");
        store
            .record_reminder(&Reminder {
                date: day(3),
                commune: code("56121"),
                channel: "telephone".into(),
                at: instant(120),
                by: "prefecture-1".into(),
            })
            .await
            .expect("reminder");
        let request = PublicationRequest {
            reason: "Correction".into(),
            requested_by: "prefecture-1".into(),
            publication_id: None,
            requested_at: None,
        };
        let mut publication = Publication::queued(&request, "pub-1".into(), instant(130));
        publication.status = PublicationStatus::Succeeded;
        publication.finished_at = Some(instant(131));
        publication.files_changed = Some(12);
        store
            .insert_publication(&publication)
            .await
            .expect("publication");
    }

    fn scope() -> decompte_core::Scope {
        decompte_config::Options::for_data_dir(std::env::temp_dir())
            .scope()
            .expect("scope")
    }

    /// `decompte store copy`: a crisis moves from DynamoDB to PostgreSQL,
    /// from there to SQLite, and reads back the same everywhere; a copy run
    /// again (a resumption) writes nothing more; an interrupted one goes on
    /// where it stopped; a target holding something else is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crisis_moves_between_the_three_stores() {
        let dynamo = DynamoLocal::shared().fresh_store(&["56"]).await;
        crisis(&dynamo).await;
        let original = dump(&dynamo).await;
        assert_eq!(original.versions.len(), 6);

        let postgres = PostgresLocal::shared().fresh_store().await;
        let folder = tempfile::tempdir().expect("folder");
        let sqlite =
            decompte_store::SqliteStore::open(&folder.path().join("copie.sqlite")).expect("sqlite");
        let today = day(11);
        let quiet = |_: &str| {};
        let first = decompte::copy::copy(&dynamo, &postgres, &scope(), today, &quiet)
            .await
            .expect("DynamoDB → PostgreSQL");
        assert_eq!(first.versions_written, 6);
        assert_eq!(first.credentials_written, 2);
        assert_eq!((first.references, first.contacts), (1, 1));
        assert_eq!((first.reminders, first.publications_written), (1, 1));
        decompte::copy::copy(&postgres, &sqlite, &scope(), today, &quiet)
            .await
            .expect("PostgreSQL → SQLite");
        assert_eq!(dump(&postgres).await, original);
        assert_eq!(dump(&sqlite).await, original);
        let checked = &first.checked;
        assert!(checked
            .iter()
            .any(|c| c.departement == "56" && c.versions == 6));

        // Run again: nothing more to write.
        let again = decompte::copy::copy(&dynamo, &postgres, &scope(), today, &quiet)
            .await
            .expect("a resumption");
        assert_eq!((again.versions_written, again.credentials_written), (0, 0));
        assert_eq!(dump(&postgres).await, original);

        // Interrupted after the first versions: it goes on from there.
        let resumed = decompte_store::SqliteStore::in_memory().expect("sqlite");
        let first_versions: Vec<_> = original
            .versions
            .iter()
            .filter(|r| r.version == 1)
            .cloned()
            .collect();
        resumed
            .write_reports(Ledgered::for_fixtures(), &first_versions)
            .await
            .expect("a copy cut short");
        let rest = decompte::copy::copy(&dynamo, &resumed, &scope(), today, &quiet)
            .await
            .expect("the rest");
        assert_eq!(rest.versions_written, 1);
        assert_eq!(dump(&resumed).await, original);

        // A target holding a declaration the source does not: refused,
        // nothing written.
        let other = decompte_store::SqliteStore::in_memory().expect("sqlite");
        other
            .write_report(
                Ledgered::for_fixtures(),
                &report("56260", day(9), 1, 5),
                None,
            )
            .await
            .expect("write");
        let refused = decompte::copy::copy(&dynamo, &other, &scope(), today, &quiet)
            .await
            .expect_err("not a resumption");
        assert!(refused.to_string().contains("pas la reprise"), "{refused}");
        assert!(other.credentials().await.expect("read").is_empty());
    }
}

/// A replica says whether it can serve: `/readyz` answers 503 while its
/// database is down (a load balancer then sends it nothing), `/healthz`
/// still 200 (the process is alive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database() {
    let server = decompte_tests::postgres_local::PostgresLocal::start();
    let store = server.fresh_store().await;
    let app = decompte_tests::TestApp::start_on(std::sync::Arc::new(store)).await;
    assert_eq!(
        app.get("/readyz", None).await.status,
        reqwest::StatusCode::OK
    );
    server.stop();
    let down = app.get("/readyz", None).await;
    assert_eq!(down.status, reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        down.text.contains("Le stockage ne répond pas"),
        "{}",
        down.text
    );
    assert_eq!(
        app.get("/healthz", None).await.status,
        reqwest::StatusCode::OK
    );
}

/// Among replicas on one database, one holds the publisher's lease; it
/// hears every replica's writes and queued publications, and the lease
/// passes to another when its holder's connection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_holds_the_publisher_s_lease() {
    use decompte_store::conformance::{day, report};
    use decompte_store::prelude::*;
    use decompte_store::{Ledgered, PostgresStore, Publication, PublicationRequest};
    use std::time::Duration;

    let server = decompte_tests::postgres_local::PostgresLocal::shared();
    let url = server.fresh_database().await;
    let first = PostgresStore::connect(&url).await.expect("first replica");
    let second = PostgresStore::connect(&url).await.expect("second replica");
    let lease = first
        .lease_publisher()
        .await
        .expect("asked")
        .expect("the first replica leads");
    assert!(lease.is_shared());
    assert!(
        second.lease_publisher().await.expect("asked").is_none(),
        "two replicas hold the lease"
    );

    // The other replica writes a report, then queues a publication: the
    // holder hears both.
    let heard = |what: &'static str| {
        let lease = &lease;
        async move {
            tokio::time::timeout(Duration::from_secs(5), lease.changed())
                .await
                .unwrap_or_else(|_| panic!("the holder did not hear {what}"));
        }
    };
    second
        .write_report(
            Ledgered::for_fixtures(),
            &report("56260", day(1), 1, 2),
            None,
        )
        .await
        .expect("write");
    heard("a report").await;
    let request = PublicationRequest {
        reason: "Correction".into(),
        requested_by: "prefecture-1".into(),
        publication_id: None,
        requested_at: None,
    };
    second
        .insert_publication(&Publication::queued(
            &request,
            "pub-1".into(),
            decompte_store::conformance::instant(0),
        ))
        .await
        .expect("queued");
    heard("a queued publication").await;

    // Given back: the other replica takes it.
    drop(lease);
    let taken = async {
        loop {
            if let Some(lease) = second.lease_publisher().await.expect("asked") {
                return lease;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let lease = tokio::time::timeout(Duration::from_secs(5), taken)
        .await
        .expect("the lease passes on within seconds");

    // Its connection cut by the server (as when a primary fails): lost, and
    // the first replica can take it.
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("admin");
    tokio::spawn(connection);
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .await
        .expect("terminate");
    tokio::time::timeout(Duration::from_secs(10), lease.lost())
        .await
        .expect("the holder learns its lease is lost");
    assert!(lease.is_lost());
    assert!(first.lease_publisher().await.expect("asked").is_some());
}
