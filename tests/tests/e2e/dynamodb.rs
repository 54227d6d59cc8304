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
