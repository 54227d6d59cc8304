//! The conformance suite every backend must pass. Each check takes a fresh, empty
//! store; [`conformance_tests!`](crate::conformance_tests) turns them into one
//! `#[tokio::test]` each for a backend.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use decompte_core::{CommuneCode, Counts, Report, Role, Source};

use crate::model::{
    Credential, IdempotencyRecord, Publication, PublicationStatus, ReportQuery, Session,
};
use crate::{ChangeMark, Ledgered, Store, StoreError};

/// The conformance suite writes as the ledger would.
const W: Ledgered = Ledgered::new();

/// Generates one test per conformance check, given an expression that yields an
/// `Arc<dyn Store>` (it may `.await`).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            first_report_and_correction, stale_version_is_refused, history_keeps_every_version,
            idempotency_record_is_atomic, credentials_issue_use_revoke, sessions_and_expiry,
            completeness_of_a_day, changes_since_a_watermark, changes_after_a_mark,
            many_reports_are_all_read,
            concurrent_writers_one_winner, throttling_counters, publications,
            a_batch_is_written_whole_or_not_at_all, tallies_of_a_departement,
            current_reports_of_keys, second_factor_enrolment_and_use,
            a_bulk_is_kept_or_undone_whole, a_reference_series_is_replaced_whole,
            contact_overrides_are_replaced_whole,
            the_first_reminder_of_a_day_stands);
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store: std::sync::Arc<dyn $crate::Store> = $make;
                $crate::conformance::$name(store).await;
            }
        )*
    };
}

pub fn code(text: &str) -> CommuneCode {
    CommuneCode::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

pub fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 3, 1).unwrap_or_default() + Duration::days(i64::from(n))
}

pub fn instant(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_585_000_000 + seconds, 0)
        .single()
        .unwrap_or_default()
}

pub fn counts(hopital: u32, ehpad: u32) -> Counts {
    [
        ("hopital", hopital),
        ("ehpad", ehpad),
        ("esms", 0),
        ("domicile", 0),
        ("autre", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub fn report(commune: &str, date: NaiveDate, version: u32, hopital: u32) -> Report {
    Report {
        commune: code(commune),
        date,
        counts: counts(hopital, 1),
        version,
        recorded_at: instant(i64::from(version)),
        recorded_by: "cred-1".into(),
        source: Source::Api,
        reason: (version > 1).then(|| "correction".to_owned()),
        // A second version carries a confirmed warning: every store keeps it.
        warnings: if version == 2 {
            vec!["jump".to_owned()]
        } else {
            Vec::new()
        },
    }
}

fn is_conflict(result: Result<(), StoreError>) -> Option<Option<Box<Report>>> {
    match result {
        Err(StoreError::Conflict { current }) => Some(current),
        _ => None,
    }
}

pub async fn first_report_and_correction(store: Arc<dyn Store>) {
    let first = report("56001", day(1), 1, 2);
    assert_eq!(
        store.current_report(&first.commune, first.date).await.ok(),
        Some(None)
    );
    store
        .write_report(W, &first, None)
        .await
        .expect("first report");
    assert_eq!(
        store
            .current_report(&first.commune, first.date)
            .await
            .expect("read"),
        Some(first.clone())
    );
    let second = report("56001", day(1), 2, 5);
    store
        .write_report(W, &second, None)
        .await
        .expect("correction");
    assert_eq!(
        store
            .current_report(&first.commune, first.date)
            .await
            .expect("read"),
        Some(second)
    );
}

pub async fn a_batch_is_written_whole_or_not_at_all(store: Arc<dyn Store>) {
    let batch: Vec<Report> = (1..=3)
        .map(|d| report("56010", day(d), 1, d))
        .chain([report("56011", day(1), 1, 7)])
        .collect();
    store.write_reports(W, &batch).await.expect("a batch");
    let all = store
        .current_reports(&ReportQuery::default())
        .await
        .expect("read");
    assert_eq!(all.len(), 4);
    // A batch with one stale version: it is refused and none of it is written.
    let mut stale = vec![report("56010", day(1), 2, 9), report("56012", day(1), 1, 1)];
    stale.push(report("56011", day(1), 1, 8));
    match store.write_reports(W, &stale).await {
        Err(StoreError::Conflict { current }) => {
            assert_eq!(current.map(|c| c.version), Some(1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        store
            .current_reports(&ReportQuery::default())
            .await
            .expect("read"),
        all,
        "nothing of a refused batch is written"
    );
    store.write_reports(W, &[]).await.expect("an empty batch");

    // An import's batch (what a backend may send another way: PostgreSQL
    // with COPY): 120 days, corrections of those above among them.
    let large: Vec<Report> = (1..=3)
        .map(|d| report("56010", day(d), 2, 10 + d))
        .chain((0..117).map(|d| report("56013", day(d), 1, d)))
        .collect();
    store.write_reports(W, &large).await.expect("a large batch");
    let read = store
        .current_reports(&ReportQuery {
            commune: Some(code("56010")),
            ..ReportQuery::default()
        })
        .await
        .expect("read");
    assert_eq!(
        read.iter()
            .map(|r| (r.version, r.count("hopital")))
            .collect::<Vec<_>>(),
        [(2, 11), (2, 12), (2, 13)]
    );
    assert_eq!(
        store
            .history(&code("56010"), day(2))
            .await
            .expect("history")
            .len(),
        2
    );
    let all = store
        .current_reports(&ReportQuery::default())
        .await
        .expect("read");
    assert_eq!(all.len(), 4 + 117);
    // A large batch of first versions, one of them stale, is refused with
    // the current report of that key: none of it is written on a store with
    // transactions of any size, the batches before the stale one elsewhere
    // (DynamoDB: 50 reports a batch), as `Partial` says.
    let first: Vec<Report> = (200..260).map(|d| report("56014", day(d), 1, 1)).collect();
    let mut stale = first.clone();
    stale.push(report("56013", day(5), 1, 9));
    let (written, current) = match store.write_reports(W, &stale).await {
        Err(StoreError::Conflict { current }) => (0, current),
        Err(StoreError::Partial { written, error }) => match *error {
            StoreError::Conflict { current } => (written, current),
            other => panic!("expected a conflict, got {other:?}"),
        },
        other => panic!("expected a conflict, got {other:?}"),
    };
    assert_eq!(
        current.map(|c| (c.commune.to_string(), c.date, c.count("hopital"))),
        Some(("56013".to_owned(), day(5), 5))
    );
    assert!(store
        .current_of(&[(code("56013"), day(5))])
        .await
        .expect("read")
        .iter()
        .all(|r| r.count("hopital") == 5));
    let of_56014 = ReportQuery {
        commune: Some(code("56014")),
        ..ReportQuery::default()
    };
    let current_of_56014 = || async { store.current_reports(&of_56014).await.expect("read").len() };
    assert_eq!(
        current_of_56014().await,
        written,
        "only what the store says it wrote"
    );
    // The rest of the same first versions alone is written, each once.
    store
        .write_reports(W, &first[written..])
        .await
        .expect("first versions");
    assert_eq!(current_of_56014().await, 60);
    assert_eq!(
        store
            .history(&code("56014"), day(230))
            .await
            .expect("history")
            .len(),
        1
    );
}

/// An import of many batches: on a store that can (SQLite), undone whole when
/// a later batch fails; elsewhere, each batch stands alone.
pub async fn a_bulk_is_kept_or_undone_whole(store: Arc<dyn Store>) {
    let atomic = store.begin_bulk(W, 1).await.expect("begin");
    store
        .write_reports(W, &[report("56020", day(1), 1, 1)])
        .await
        .expect("a first batch");
    let stale = store
        .write_reports(W, &[report("56021", day(1), 3, 1)])
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    store.end_bulk(W, false).await.expect("undo");
    let first = store
        .current_report(&code("56020"), day(1))
        .await
        .expect("read");
    if atomic {
        assert_eq!(first, None, "the whole bulk is undone");
    } else {
        assert!(first.is_some(), "without bulks, each batch stands alone");
    }
    // A bulk kept: every batch of it.
    store.begin_bulk(W, 1).await.expect("begin");
    for (commune, n) in [("56022", 1), ("56023", 2)] {
        store
            .write_reports(W, &[report(commune, day(1), 1, n)])
            .await
            .expect("a batch");
    }
    store.end_bulk(W, true).await.expect("keep");
    for commune in ["56022", "56023"] {
        assert!(store
            .current_report(&code(commune), day(1))
            .await
            .expect("read")
            .is_some());
    }
    // And the store writes as before once the bulk is over.
    store
        .write_report(W, &report("56024", day(1), 1, 1), None)
        .await
        .expect("a report after the bulk");
}

pub async fn stale_version_is_refused(store: Arc<dyn Store>) {
    let first = report("56001", day(1), 1, 2);
    store.write_report(W, &first, None).await.expect("first");
    // A second "first report" conflicts and returns the current report.
    let current = is_conflict(
        store
            .write_report(W, &report("56001", day(1), 1, 9), None)
            .await,
    );
    assert_eq!(current, Some(Some(Box::new(first.clone()))));
    // Skipping a version conflicts too.
    assert!(is_conflict(
        store
            .write_report(W, &report("56001", day(1), 3, 9), None)
            .await
    )
    .is_some());
    assert_eq!(
        store
            .history(&first.commune, first.date)
            .await
            .expect("history")
            .len(),
        1
    );
}

pub async fn history_keeps_every_version(store: Arc<dyn Store>) {
    for version in 1..=4 {
        store
            .write_report(W, &report("56002", day(2), version, version * 10), None)
            .await
            .expect("write");
    }
    let history = store
        .history(&code("56002"), day(2))
        .await
        .expect("history");
    assert_eq!(
        history.iter().map(|r| r.version).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(history[0].count("hopital"), 10);
    assert_eq!(history[3].count("hopital"), 40);
    assert!(store
        .history(&code("56002"), day(3))
        .await
        .expect("history")
        .is_empty());
}

pub async fn idempotency_record_is_atomic(store: Arc<dyn Store>) {
    let record = IdempotencyRecord {
        key: "cred-1:key-1".into(),
        request_hash: "abc".into(),
        status: 201,
        body: "{}".into(),
        created_at: instant(0),
        expires_at: instant(86_400),
    };
    store
        .write_report(W, &report("56003", day(1), 1, 1), Some(&record))
        .await
        .expect("write");
    assert_eq!(
        store
            .idempotency_record(&record.key, instant(1))
            .await
            .expect("read"),
        Some(record.clone())
    );
    // The same key on another write is refused and writes nothing.
    let other = report("56003", day(2), 1, 1);
    assert!(matches!(
        store.write_report(W, &other, Some(&record)).await,
        Err(StoreError::IdempotencyKeyTaken)
    ));
    assert_eq!(
        store
            .current_report(&other.commune, other.date)
            .await
            .expect("read"),
        None
    );
    // A refused write does not keep its idempotency record, so it can be retried.
    let retry = IdempotencyRecord {
        key: "cred-1:key-2".into(),
        ..record.clone()
    };
    assert!(is_conflict(
        store
            .write_report(W, &report("56003", day(1), 1, 1), Some(&retry))
            .await
    )
    .is_some());
    assert_eq!(
        store
            .idempotency_record(&retry.key, instant(1))
            .await
            .expect("read"),
        None
    );
    // Past its expiry a record is never returned, purged or not.
    assert_eq!(
        store
            .idempotency_record(&record.key, instant(86_400))
            .await
            .expect("read"),
        None
    );
    store.purge_expired(instant(86_400)).await.expect("purge");
}

fn credential(id: &str, role: Role, commune: Option<&str>) -> Credential {
    Credential {
        id: id.into(),
        role,
        commune: commune.map(code),
        departements: Vec::new(),
        label: format!("label {id}"),
        code_hash: format!("hash-{id}"),
        created_at: instant(0),
        last_used_at: None,
        revoked_at: None,
        issued_by: None,
        expires_at: None,
        second_factor: None,
    }
}

pub async fn credentials_issue_use_revoke(store: Arc<dyn Store>) {
    let mayor = credential("c1", Role::Commune, Some("56001"));
    let prefecture = credential("p1", Role::Prefecture, None);
    let brittany = Credential {
        departements: vec!["29".into(), "56".into()],
        ..credential("p2", Role::Prefecture, None)
    };
    // Issued by the ministry, for 90 days.
    let ministry = credential("n1", Role::National, None);
    let brittany = Credential {
        issued_by: Some("n1".into()),
        expires_at: Some(instant(90 * 86_400)),
        ..brittany
    };
    store.insert_credential(&mayor).await.expect("insert");
    store.insert_credential(&prefecture).await.expect("insert");
    store.insert_credential(&brittany).await.expect("insert");
    store.insert_credential(&ministry).await.expect("insert");
    for expected in [&prefecture, &brittany, &ministry] {
        assert_eq!(
            store.credential(&expected.id).await.expect("read").as_ref(),
            Some(expected),
            "a credential reads back with its role and départements"
        );
    }
    assert_eq!(
        store.credential_by_hash("hash-c1").await.expect("read"),
        Some(mayor.clone())
    );
    assert_eq!(store.credential_by_hash("nope").await.expect("read"), None);
    store
        .touch_credential("c1", instant(5))
        .await
        .expect("touch");
    assert_eq!(
        store
            .credential("c1")
            .await
            .expect("read")
            .and_then(|c| c.last_used_at),
        Some(instant(5))
    );
    // An agent's reach follows the rules at each sign-in: narrowed, then
    // every département served (none named).
    for reach in [
        vec!["56".to_owned()],
        Vec::new(),
        vec!["29".into(), "56".into()],
    ] {
        assert!(store.set_departements("p2", &reach).await.expect("set"));
        let read = store.credential("p2").await.expect("read").expect("there");
        assert_eq!(read.departements, reach);
        assert_eq!(read.label, brittany.label, "nothing else changes");
    }
    assert!(!store.set_departements("zzz", &[]).await.expect("unknown"));
    store
        .insert_session(&Session {
            id_hash: "s1".into(),
            credential_id: "c1".into(),
            created_at: instant(0),
            expires_at: instant(3600),
            last_seen_at: instant(0),
            pending: false,
        })
        .await
        .expect("session");
    assert!(store
        .revoke_credential("c1", instant(10))
        .await
        .expect("revoke"));
    assert!(!store
        .revoke_credential("c1", instant(11))
        .await
        .expect("revoke twice"));
    assert!(!store
        .revoke_credential("zzz", instant(11))
        .await
        .expect("revoke unknown"));
    let revoked = store
        .credential_by_hash("hash-c1")
        .await
        .expect("read")
        .expect("still listed");
    assert_eq!(revoked.revoked_at, Some(instant(10)));
    assert!(!revoked.is_active(instant(10)));
    assert!(brittany.is_active(instant(90 * 86_400 - 1)));
    assert!(
        !brittany.is_active(instant(90 * 86_400)),
        "a code past its end opens nothing"
    );
    // Revocation ends the credential's sessions.
    assert_eq!(store.session("s1", instant(11)).await.expect("read"), None);
    let listed: Vec<String> = store
        .credentials()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, ["c1", "n1", "p1", "p2"]);
}

pub async fn sessions_and_expiry(store: Arc<dyn Store>) {
    let session = Session {
        id_hash: "s2".into(),
        credential_id: "c2".into(),
        created_at: instant(0),
        expires_at: instant(3600),
        last_seen_at: instant(0),
        pending: false,
    };
    store.insert_session(&session).await.expect("insert");
    // A login half done reads back as such.
    let half = Session {
        id_hash: "s2-pending".into(),
        pending: true,
        ..session.clone()
    };
    store.insert_session(&half).await.expect("insert");
    assert_eq!(
        store.session("s2-pending", instant(1)).await.expect("read"),
        Some(half)
    );
    assert_eq!(
        store.session("s2", instant(1)).await.expect("read"),
        Some(session.clone())
    );
    // Activity is recorded; touching a session that is gone brings nothing back.
    store
        .touch_session("s2", instant(120))
        .await
        .expect("touch");
    assert_eq!(
        store
            .session("s2", instant(121))
            .await
            .expect("read")
            .map(|s| s.last_seen_at),
        Some(instant(120))
    );
    store
        .touch_session("gone", instant(120))
        .await
        .expect("touch a missing session");
    assert_eq!(
        store.session("gone", instant(121)).await.expect("read"),
        None
    );
    store.purge_expired(instant(3599)).await.expect("purge");
    assert!(store
        .session("s2", instant(3599))
        .await
        .expect("read")
        .is_some());
    assert_eq!(
        store.session("s2", instant(3600)).await.expect("read"),
        None
    );
    store.purge_expired(instant(3600)).await.expect("purge");
    store
        .insert_session(&Session {
            id_hash: "s3".into(),
            ..session
        })
        .await
        .expect("insert");
    store.delete_session("s3").await.expect("delete");
    assert_eq!(store.session("s3", instant(1)).await.expect("read"), None);
}

pub async fn second_factor_enrolment_and_use(store: Arc<dyn Store>) {
    let read = |store: Arc<dyn Store>| async move {
        store
            .credential("p9")
            .await
            .expect("read")
            .expect("the credential")
    };
    store
        .insert_credential(&credential("p9", Role::Prefecture, None))
        .await
        .expect("insert");
    assert!(!store
        .begin_second_factor("nobody", "AAAA")
        .await
        .expect("begin"));
    // An enrolment begun twice keeps the last secret; the first cannot be confirmed.
    assert!(store
        .begin_second_factor("p9", "FIRST")
        .await
        .expect("begin"));
    assert!(store
        .begin_second_factor("p9", "SECOND")
        .await
        .expect("begin again"));
    let begun = read(store.clone()).await;
    assert_eq!(
        begun.second_factor,
        Some(crate::SecondFactor::pending("SECOND".into()))
    );
    assert!(!begun.has_second_factor());
    let hashes = vec!["r1".to_owned(), "r2".to_owned()];
    assert!(!store
        .confirm_second_factor("p9", "FIRST", 100, &hashes, instant(5))
        .await
        .expect("confirm a replaced enrolment"));
    assert!(
        !store.use_second_factor_step("p9", 101).await.expect("use"),
        "no code is good before the enrolment is confirmed"
    );
    assert!(store
        .confirm_second_factor("p9", "SECOND", 100, &hashes, instant(5))
        .await
        .expect("confirm"));
    let enrolled = read(store.clone()).await;
    assert!(enrolled.has_second_factor());
    let factor = enrolled.second_factor.clone().expect("a second factor");
    assert_eq!(
        (
            factor.confirmed_at,
            factor.last_step,
            factor.recovery_left()
        ),
        (Some(instant(5)), 100, 2)
    );
    // Confirmed: neither a new enrolment nor a second confirmation.
    assert!(!store
        .begin_second_factor("p9", "THIRD")
        .await
        .expect("begin"));
    assert!(!store
        .confirm_second_factor("p9", "SECOND", 101, &hashes, instant(6))
        .await
        .expect("confirm twice"));
    // A step is good once, and never one older than the last accepted.
    assert!(!store.use_second_factor_step("p9", 100).await.expect("use"));
    assert!(store.use_second_factor_step("p9", 102).await.expect("use"));
    assert!(!store.use_second_factor_step("p9", 102).await.expect("use"));
    assert!(!store.use_second_factor_step("p9", 101).await.expect("use"));
    // A recovery code is good once.
    assert!(store.use_recovery_code("p9", "r2").await.expect("recover"));
    assert!(!store.use_recovery_code("p9", "r2").await.expect("recover"));
    assert!(!store.use_recovery_code("p9", "zz").await.expect("recover"));
    assert_eq!(
        read(store.clone())
            .await
            .second_factor
            .map(|f| f.recovery_hashes),
        Some(vec!["r1".to_owned()])
    );
    assert!(store.use_recovery_code("p9", "r1").await.expect("recover"));
    assert!(!store.use_recovery_code("p9", "r1").await.expect("recover"));
    assert_eq!(
        read(store).await.second_factor.map(|f| f.recovery_left()),
        Some(0)
    );
}

pub async fn completeness_of_a_day(store: Arc<dyn Store>) {
    for commune in ["56001", "56002", "56004"] {
        store
            .write_report(W, &report(commune, day(5), 1, 0), None)
            .await
            .expect("write");
    }
    store
        .write_report(W, &report("56003", day(6), 1, 0), None)
        .await
        .expect("write");
    let reported = store.reported_communes(day(5)).await.expect("read");
    assert_eq!(
        reported.into_iter().map(String::from).collect::<Vec<_>>(),
        ["56001", "56002", "56004"]
    );
    assert!(store
        .reported_communes(day(7))
        .await
        .expect("read")
        .is_empty());
}

pub async fn changes_since_a_watermark(store: Arc<dyn Store>) {
    let mut early = report("56001", day(1), 1, 1);
    early.recorded_at = instant(100);
    let mut late = report("56002", day(1), 1, 1);
    late.recorded_at = instant(200);
    store.write_report(W, &early, None).await.expect("write");
    store.write_report(W, &late, None).await.expect("write");
    let changed = store.changed_since(instant(150)).await.expect("read");
    assert_eq!(changed, [late.clone()]);
    // A correction of the early report moves it past the watermark.
    let mut correction = report("56001", day(1), 2, 3);
    correction.recorded_at = instant(300);
    store
        .write_report(W, &correction, None)
        .await
        .expect("write");
    let changed = store.changed_since(instant(150)).await.expect("read");
    assert_eq!(changed, [late, correction]);
    assert!(store
        .changed_since(instant(300))
        .await
        .expect("read")
        .is_empty());
}

/// What a publisher reads between two publications. A store that numbers
/// its writes returns exactly what was committed after the mark, whatever
/// the instants the reports carry (an import of past days, a correction
/// recorded with an older clock); one that marks by instant returns at
/// least what was recorded after the mark.
pub async fn changes_after_a_mark(store: Arc<dyn Store>) {
    let mut before = report("56001", day(1), 1, 1);
    before.recorded_at = instant(100);
    store.write_report(W, &before, None).await.expect("write");
    let mark = store.change_mark(instant(100)).await.expect("mark");
    match mark {
        ChangeMark::Sequence(_) => {
            let mut past = report("56002", day(1), 1, 2);
            past.recorded_at = instant(-86_400);
            let mut correction = report("56001", day(1), 2, 3);
            correction.recorded_at = instant(50);
            store.write_report(W, &past, None).await.expect("write");
            store
                .write_reports(W, &[correction.clone()])
                .await
                .expect("write");
            let changes = store.changes_after(mark).await.expect("read");
            assert_eq!(changes.reports, [past, correction], "in commit order");
            assert!(matches!(changes.mark, ChangeMark::Sequence(n) if n > 0));
            let again = store.changes_after(changes.mark).await.expect("read");
            assert!(again.reports.is_empty(), "{again:?}");
            assert_eq!(again.mark, changes.mark, "nothing new, the same mark");
            assert_eq!(
                store.change_mark(instant(500)).await.expect("mark"),
                changes.mark
            );
        }
        ChangeMark::Instant(at) => {
            let mut after = report("56002", day(1), 1, 2);
            after.recorded_at = at + Duration::seconds(10);
            store.write_report(W, &after, None).await.expect("write");
            let changes = store.changes_after(mark).await.expect("read");
            assert!(changes.reports.contains(&after), "{changes:?}");
            assert_eq!(changes.mark, ChangeMark::Instant(after.recorded_at));
        }
    }
    assert!(
        store
            .changes_after(match mark {
                ChangeMark::Sequence(_) => ChangeMark::Instant(instant(0)),
                ChangeMark::Instant(_) => ChangeMark::Sequence(0),
            })
            .await
            .is_err(),
        "a mark of another kind is refused"
    );
}

pub async fn tallies_of_a_departement(store: Arc<dyn Store>) {
    let mut demo = report("56002", day(2), 1, 4);
    demo.recorded_by = decompte_core::report::DEMONSTRATION.into();
    for written in [
        report("56001", day(1), 1, 1),
        report("56001", day(1), 2, 7),
        demo,
        report("29001", day(1), 1, 9),
    ] {
        store.write_report(W, &written, None).await.expect("write");
    }
    let keys: Vec<String> = vec!["ehpad".into(), "hopital".into(), "cimetiere".into()];
    let mut tallies = store
        .current_tallies("56", &keys, decompte_core::report::DEMONSTRATION)
        .await
        .expect("read");
    tallies.sort_by(|a, b| (&a.commune, a.date).cmp(&(&b.commune, b.date)));
    let seen: Vec<(String, u32, Vec<u32>, bool)> = tallies
        .iter()
        .map(|t| {
            (
                t.commune.to_string(),
                t.version,
                t.counts.clone(),
                t.flagged,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("56001".to_owned(), 2, vec![1, 7, 0], false),
            ("56002".to_owned(), 1, vec![1, 4, 0], true),
        ],
        "the current version of each report of the département, counts in the order asked"
    );
    assert_eq!(tallies[0].recorded_at, instant(2));
    let brittany = store
        .current_tallies("29", &keys, decompte_core::report::DEMONSTRATION)
        .await
        .expect("read");
    assert_eq!(brittany.len(), 1);
    assert!(store
        .current_tallies("35", &keys, decompte_core::report::DEMONSTRATION)
        .await
        .expect("read")
        .is_empty());
    // Corsica's letters, and a flag with a quote (a backend that writes it in
    // its statement must escape it).
    let mut quoted = report("2A004", day(1), 1, 2);
    quoted.recorded_by = "l'outil".into();
    store.write_report(W, &quoted, None).await.expect("write");
    let corsica = store
        .current_tallies("2A", &keys, "l'outil")
        .await
        .expect("read");
    assert_eq!(corsica.len(), 1);
    assert!(corsica[0].flagged, "the flag with a quote is recognised");
}

pub async fn current_reports_of_keys(store: Arc<dyn Store>) {
    for written in [
        report("56001", day(1), 1, 1),
        report("56001", day(1), 2, 5),
        report("56002", day(1), 1, 2),
    ] {
        store.write_report(W, &written, None).await.expect("write");
    }
    // 150 keys, more than one request of a backend that reads 100 at a time.
    let mut keys: Vec<(CommuneCode, NaiveDate)> =
        (0..148).map(|d| (code("56003"), day(10 + d))).collect();
    keys.push((code("56001"), day(1)));
    keys.push((code("56002"), day(1)));
    let mut found = store.current_of(&keys).await.expect("read");
    found.sort_by(|a, b| a.commune.cmp(&b.commune));
    assert_eq!(
        found
            .iter()
            .map(|r| (r.commune.to_string(), r.version, r.count("hopital")))
            .collect::<Vec<_>>(),
        [("56001".to_owned(), 2, 5), ("56002".to_owned(), 1, 2)]
    );
    assert!(store.current_of(&[]).await.expect("read").is_empty());

    // Many keys none of which is stored, with stored keys on both sides of
    // the range they span and one inside it (a store may look at that range
    // first).
    for written in [report("56003", day(5), 1, 4), report("56004", day(1), 1, 3)] {
        store.write_report(W, &written, None).await.expect("write");
    }
    let absent: Vec<(CommuneCode, NaiveDate)> =
        (0..100).map(|d| (code("56003"), day(10 + d))).collect();
    assert!(store.current_of(&absent).await.expect("read").is_empty());
    // Stored keys at both ends of the span: only those asked for come back,
    // not the one between them.
    let mut ends = absent.clone();
    ends.push((code("56002"), day(1)));
    ends.push((code("56004"), day(1)));
    let mut found = store.current_of(&ends).await.expect("read");
    found.sort_by(|a, b| a.commune.cmp(&b.commune));
    assert_eq!(
        found
            .iter()
            .map(|r| r.commune.to_string())
            .collect::<Vec<_>>(),
        ["56002", "56004"]
    );
}

pub async fn many_reports_are_all_read(store: Arc<dyn Store>) {
    // 3,000 reports: 30 communes × 100 days.
    let mut written = 0;
    for c in 1..=30 {
        for d in 0..100 {
            store
                .write_report(W, &report(&format!("56{c:03}"), day(d), 1, c), None)
                .await
                .expect("write");
            written += 1;
        }
    }
    let all = store
        .current_reports(&ReportQuery::default())
        .await
        .expect("read");
    assert_eq!(all.len(), written);
    let one = store
        .current_reports(&ReportQuery {
            commune: Some(code("56007")),
            from: Some(day(10)),
            to: Some(day(19)),
            ..ReportQuery::default()
        })
        .await
        .expect("read");
    assert_eq!(one.len(), 10);
    assert!(one
        .iter()
        .all(|r| r.commune == code("56007") && r.count("hopital") == 7));
    assert_eq!(one.first().map(|r| r.date), Some(day(10)));
}

pub async fn concurrent_writers_one_winner(store: Arc<dyn Store>) {
    store
        .write_report(W, &report("56009", day(1), 1, 0), None)
        .await
        .expect("first");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .write_report(W, &report("56009", day(1), 2, i + 1), None)
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(()) => wins += 1,
            Err(StoreError::Conflict { current }) => {
                assert_eq!(current.map(|r| r.version), Some(2));
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(wins, 1);
    let history = store
        .history(&code("56009"), day(1))
        .await
        .expect("history");
    assert_eq!(
        history.iter().map(|r| r.version).collect::<Vec<_>>(),
        [1, 2]
    );
}

pub async fn throttling_counters(store: Arc<dyn Store>) {
    let window = instant(0);
    assert_eq!(
        store
            .failures("ip:127.0.0.1", window, instant(1))
            .await
            .expect("read"),
        0
    );
    for expected in 1..=3 {
        let count = store
            .add_failure("ip:127.0.0.1", window, instant(900))
            .await
            .expect("add");
        assert_eq!(count, expected);
    }
    assert_eq!(
        store
            .failures("ip:127.0.0.1", window, instant(1))
            .await
            .expect("read"),
        3
    );
    assert_eq!(
        store
            .failures("ip:127.0.0.1", instant(900), instant(901))
            .await
            .expect("read"),
        0
    );
    // Past its expiry a counter reads as zero, purged or not.
    assert_eq!(
        store
            .failures("ip:127.0.0.1", window, instant(900))
            .await
            .expect("read"),
        0
    );
    store.purge_expired(instant(900)).await.expect("purge");
}

pub async fn the_first_reminder_of_a_day_stands(store: Arc<dyn Store>) {
    let reminder = |commune: &str, date: NaiveDate, by: &str, at: i64| crate::Reminder {
        date,
        commune: code(commune),
        channel: "telephone".into(),
        at: instant(at),
        by: by.into(),
    };
    assert!(store
        .record_reminder(&reminder("56260", day(0), "agent-1", 0))
        .await
        .expect("record"));
    // A second agent, a minute later: the first call stands.
    assert!(!store
        .record_reminder(&reminder("56260", day(0), "agent-2", 60))
        .await
        .expect("record"));
    for (commune, date) in [("56001", day(0)), ("56260", day(1)), ("29019", day(0))] {
        assert!(store
            .record_reminder(&reminder(commune, date, "agent-2", 120))
            .await
            .expect("record"));
    }
    let of_day = store.reminders(day(0), "56").await.expect("read");
    assert_eq!(
        of_day,
        [
            reminder("56001", day(0), "agent-2", 120),
            reminder("56260", day(0), "agent-1", 0)
        ]
    );
    assert_eq!(store.reminders(day(2), "56").await.expect("read"), []);
}

pub async fn a_reference_series_is_replaced_whole(store: Arc<dyn Store>) {
    assert_eq!(store.reference("56").await.expect("read"), None);
    let first = crate::ReferenceSeries {
        departement: "56".into(),
        days: [(day(0), 3), (day(1), 0), (day(2), 5)]
            .into_iter()
            .collect(),
        imported_at: instant(0),
        imported_by: "p1".into(),
    };
    store.put_reference(&first).await.expect("put");
    assert_eq!(store.reference("56").await.expect("read"), Some(first));
    let second = crate::ReferenceSeries {
        departement: "56".into(),
        days: [(day(1), 2)].into_iter().collect(),
        imported_at: instant(10),
        imported_by: "p2".into(),
    };
    store.put_reference(&second).await.expect("replace");
    assert_eq!(store.reference("56").await.expect("read"), Some(second));
    assert_eq!(store.reference("29").await.expect("read"), None);
}

pub async fn contact_overrides_are_replaced_whole(store: Arc<dyn Store>) {
    assert_eq!(store.contacts("56").await.expect("read"), None);
    let entry = |phone: &str, email: &str| (phone.to_owned(), email.to_owned());
    let first = crate::ContactOverrides {
        departement: "56".into(),
        contacts: [
            (
                "56001".to_owned(),
                entry("02 99 00 00 01", "maire@allaire.bzh"),
            ),
            (
                "56260".to_owned(),
                entry("", "secretariat@mairie-vannes.fr"),
            ),
        ]
        .into_iter()
        .collect(),
        imported_at: instant(0),
        imported_by: "p1".into(),
    };
    store.put_contacts(&first).await.expect("put");
    assert_eq!(store.contacts("56").await.expect("read"), Some(first));
    let second = crate::ContactOverrides {
        departement: "56".into(),
        contacts: [("56003".to_owned(), entry("02 97 00 00 03", ""))]
            .into_iter()
            .collect(),
        imported_at: instant(10),
        imported_by: "p2".into(),
    };
    store.put_contacts(&second).await.expect("replace");
    assert_eq!(store.contacts("56").await.expect("read"), Some(second));
    assert_eq!(store.contacts("29").await.expect("read"), None);
    // The SpF series of the département is another thing.
    assert_eq!(store.reference("56").await.expect("read"), None);
}

pub async fn publications(store: Arc<dyn Store>) {
    let mut publication = Publication {
        id: "pub-1".into(),
        status: PublicationStatus::Queued,
        requested_by: "p1".into(),
        reason: "test".into(),
        requested_at: instant(0),
        started_at: None,
        finished_at: None,
        files_changed: None,
        error: None,
    };
    store
        .insert_publication(&publication)
        .await
        .expect("insert");
    // Two replicas pick the queued publication up: one runs it.
    let running = Publication {
        status: PublicationStatus::Running,
        started_at: Some(instant(1)),
        ..publication.clone()
    };
    let claims = tokio::join!(
        store.claim_publication(&running),
        store.claim_publication(&running),
    );
    assert_eq!(
        [claims.0.expect("claim"), claims.1.expect("claim")]
            .iter()
            .filter(|taken| **taken)
            .count(),
        1,
        "a queued publication is taken once"
    );
    assert_eq!(
        store.publication("pub-1").await.expect("read"),
        Some(running.clone())
    );
    assert!(!store.claim_publication(&running).await.expect("claim"));
    publication.status = PublicationStatus::Succeeded;
    publication.started_at = Some(instant(1));
    publication.finished_at = Some(instant(2));
    publication.files_changed = Some(12);
    store
        .update_publication(&publication)
        .await
        .expect("update");
    assert_eq!(
        store.publication("pub-1").await.expect("read"),
        Some(publication.clone())
    );
    let newer = Publication {
        id: "pub-2".into(),
        requested_at: instant(10),
        ..publication.clone()
    };
    store.insert_publication(&newer).await.expect("insert");
    let listed: Vec<String> = store
        .publications(10)
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(listed, ["pub-2", "pub-1"]);
    assert_eq!(store.publications(1).await.expect("list").len(), 1);
}
