//! The store conformance suite against Amazon's DynamoDB Local.

decompte_store::conformance_tests!(std::sync::Arc::new(
    decompte_tests::dynamodb_local::DynamoLocal::shared()
        .fresh_store(&["56"])
        .await
));

mod races {
    use decompte_core::Role;
    use decompte_tests::dynamodb_local::DynamoLocal;
    use decompte_tests::{report_body, TestApp};
    use reqwest::StatusCode;
    use serde_json::json;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn store_init_is_idempotent() {
        let local = DynamoLocal::shared();
        let store = local.fresh_store(&["56"]).await;
        assert!(
            !store.init().await.expect("second init"),
            "the table exists: nothing to do"
        );
    }

    /// 50 tasks race corrections of one (commune, day) through the API, each
    /// retrying with the version a conflict reports until one of its writes is
    /// accepted: every version is won exactly once, history has no gap, and the
    /// current value is the last accepted write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_racing_correctors_each_win_one_version() {
        let store = DynamoLocal::shared().fresh_store(&["56"]).await;
        let app = std::sync::Arc::new(TestApp::start_on(std::sync::Arc::new(store)).await);
        let code = app.issue(Role::Prefecture, None).await;
        let first = app
            .post_json(
                "/api/v1/reports",
                Some(&code),
                &report_body("56260", "2020-04-01", [0, 0, 0, 0, 0]),
                &[],
            )
            .await;
        assert_eq!(first.status, StatusCode::CREATED);
        let tasks: Vec<_> = (1..=50u32)
            .map(|task| {
                let app = std::sync::Arc::clone(&app);
                let code = code.clone();
                tokio::spawn(async move {
                    let mut replaces = 1;
                    for _ in 0..500 {
                        let mut body = report_body("56260", "2020-04-01", [task, 0, 0, 0, 0]);
                        body["replaces_version"] = json!(replaces);
                        body["reason"] = json!(format!("tâche {task}"));
                        let answer = app
                            .post_json("/api/v1/reports", Some(&code), &body, &[])
                            .await;
                        match answer.status {
                            StatusCode::CREATED => {
                                return (task, answer.json()["version"].as_u64().unwrap_or(0))
                            }
                            StatusCode::CONFLICT => {
                                replaces = answer.json()["current"]["version"].as_u64().unwrap_or(1)
                            }
                            other => panic!("task {task}: unexpected {other}: {}", answer.text),
                        }
                    }
                    panic!("task {task} never won a version");
                })
            })
            .collect();
        let mut wins = Vec::new();
        for task in tasks {
            wins.push(task.await.expect("task"));
        }
        let mut versions: Vec<u64> = wins.iter().map(|(_, v)| *v).collect();
        versions.sort_unstable();
        assert_eq!(
            versions,
            (2..=51).collect::<Vec<u64>>(),
            "each version won exactly once"
        );
        let history = app
            .get("/api/v1/reports/56260/2020-04-01/history", Some(&code))
            .await
            .json();
        let listed: Vec<u64> = history["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v["version"].as_u64().unwrap_or(0))
            .collect();
        assert_eq!(listed, (1..=51).collect::<Vec<u64>>(), "history has no gap");
        let last_winner = wins
            .iter()
            .find(|(_, v)| *v == 51)
            .map(|(task, _)| u64::from(*task));
        let current = app
            .get("/api/v1/reports?commune=56260", Some(&code))
            .await
            .json();
        assert_eq!(current["reports"][0]["version"], 51);
        assert_eq!(
            current["reports"][0]["counts"]["hopital"].as_u64(),
            last_winner
        );
    }
}

mod fault {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use decompte_core::{CommuneCode, Role};
    use decompte_store::prelude::*;
    use decompte_store::ReportQuery;
    use decompte_tests::dynamodb_local::DynamoLocal;
    use decompte_tests::{report_body, TestApp};
    use reqwest::StatusCode;

    /// Declares request `i` of the run: its own commune, its own idempotency key.
    async fn send(
        app: &TestApp,
        code: &str,
        communes: &[String],
        i: usize,
    ) -> decompte_tests::Answer {
        let body = report_body(&communes[i], "2020-04-01", [1, 0, 0, 0, 0]);
        let key = format!("fault-{i}");
        app.post_json(
            "/api/v1/reports",
            Some(code),
            &body,
            &[("Idempotency-Key", &key)],
        )
        .await
    }

    /// DynamoDB Local, on disk, is stopped in the middle of a run of writes and
    /// started again: every write answered 2xx is there, every other one got 503,
    /// and retrying those with their idempotency key creates no duplicate.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_outage_loses_nothing_and_duplicates_nothing() {
        let disk = tempfile::tempdir().expect("database folder");
        let local = DynamoLocal::start(Some(disk.path()), None);
        let port = local.port;
        let store = local.store("decompte-fault", &["56"]).await;
        let app = Arc::new(TestApp::start_on(Arc::new(store.clone())).await);
        let code = app.issue(Role::Prefecture, None).await;
        let communes: Vec<String> = app
            .app
            .state
            .config
            .scope
            .communes()
            .take(60)
            .map(|c| c.code.to_string())
            .collect();

        // Twenty writes, then the store goes away while ten more are in flight.
        let mut answers: BTreeMap<usize, StatusCode> = BTreeMap::new();
        for i in 0..20 {
            answers.insert(i, send(&app, &code, &communes, i).await.status);
        }
        let in_flight: Vec<_> = (20..30)
            .map(|i| {
                let app = Arc::clone(&app);
                let code = code.clone();
                let communes = communes.clone();
                tokio::spawn(async move { (i, send(&app, &code, &communes, i).await) })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        local.stop();
        for task in in_flight {
            let (i, answer) = task.await.expect("request task");
            answers.insert(i, answer.status);
        }
        // While it is down, every request is refused with a French 503.
        for i in 30..33 {
            let answer = send(&app, &code, &communes, i).await;
            assert_eq!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{}",
                answer.text
            );
            assert_eq!(answer.json()["error"], "unavailable");
            assert!(answer.json()["message"]
                .as_str()
                .unwrap_or_default()
                .contains("rien n'a été enregistré"));
            answers.insert(i, answer.status);
        }
        for (i, status) in &answers {
            assert!(
                status.is_success() || *status == StatusCode::SERVICE_UNAVAILABLE,
                "request {i}: {status}"
            );
        }

        // Back up on the same files: nothing answered 2xx was lost.
        let local = DynamoLocal::start(Some(disk.path()), Some(port));
        let current = store
            .current_reports(&ReportQuery::default())
            .await
            .expect("read after restart");
        for (i, status) in &answers {
            if status.is_success() {
                let commune = CommuneCode::parse(&communes[*i]).expect("code");
                assert!(
                    current.iter().any(|r| r.commune == commune),
                    "request {i} answered {status} but is missing"
                );
            }
        }
        // Retrying every request with its key leaves exactly one version of each.
        for i in 0..33 {
            let answer = send(&app, &code, &communes, i).await;
            assert!(
                matches!(answer.status, StatusCode::OK | StatusCode::CREATED),
                "retry {i}: {}",
                answer.text
            );
            if answers[&i].is_success() {
                assert_eq!(
                    answer.status,
                    StatusCode::OK,
                    "request {i} was accepted before: its retry is a replay"
                );
            }
        }
        let versions = store
            .versions(&ReportQuery::default())
            .await
            .expect("versions");
        assert_eq!(versions.len(), 33, "one version per request, no duplicate");
        assert!(versions.iter().all(|r| r.version == 1));
        let refused = answers
            .values()
            .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
            .count();
        assert!(refused >= 3, "the outage was seen");
        local.stop();
    }
}
