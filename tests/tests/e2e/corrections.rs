//! Corrections keep every version, and concurrent writers never lose one.

use decompte_core::Role;
use decompte_tests::{report_body, TestApp};
use reqwest::StatusCode;
use serde_json::json;

on_every_store!(every_correction_keeps_all_versions);
async fn every_correction_keeps_all_versions(app: TestApp) {
    let mayor = app.issue(Role::Commune, Some("56121")).await;
    let first = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &report_body("56121", "2020-04-10", [1, 1, 0, 0, 0]),
            &[],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    for (version, counts, reason) in [
        (1, [2, 1, 0, 0, 0], None),
        (2, [1, 1, 0, 0, 0], Some("doublon")),
        (3, [1, 1, 0, 1, 0], None),
    ] {
        let mut body = report_body("56121", "2020-04-10", counts);
        body["replaces_version"] = json!(version);
        if let Some(reason) = reason {
            body["reason"] = json!(reason);
        }
        let answer = app
            .post_json("/api/v1/reports", Some(&mayor), &body, &[])
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        assert_eq!(answer.json()["version"], version + 1);
    }
    let history = app
        .get("/api/v1/reports/56121/2020-04-10/history", Some(&mayor))
        .await
        .json();
    let versions = history["versions"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        versions
            .iter()
            .map(|v| v["version"].as_u64().unwrap_or(0))
            .collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(
        versions
            .iter()
            .map(|v| v["total"].as_u64().unwrap_or(0))
            .collect::<Vec<_>>(),
        [2, 3, 2, 3]
    );
    assert_eq!(versions[2]["reason"], "doublon");
    let current = app
        .get("/api/v1/reports?commune=56121", Some(&mayor))
        .await
        .json();
    assert_eq!(current["reports"][0]["version"], 4);
}

on_every_store!(of_twenty_concurrent_writers_exactly_one_wins);
async fn of_twenty_concurrent_writers_exactly_one_wins(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let mayor = app.issue(Role::Commune, Some("56121")).await;
    let first = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &report_body("56121", "2020-04-11", [1, 0, 0, 0, 0]),
            &[],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let writers: Vec<_> = (0..20u32)
        .map(|i| {
            let app = std::sync::Arc::clone(&app);
            let mayor = mayor.clone();
            tokio::spawn(async move {
                let mut body = report_body("56121", "2020-04-11", [2 + i, 0, 0, 0, 0]);
                body["replaces_version"] = json!(1);
                app.post_json("/api/v1/reports", Some(&mayor), &body, &[])
                    .await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    let mut winner = None;
    for writer in writers {
        let answer = writer.await.expect("writer task");
        if answer.status == StatusCode::CREATED {
            winner = answer.json()["counts"]["hopital"].as_u64();
        } else {
            assert_eq!(answer.json()["current"]["version"], 2, "{}", answer.text);
        }
        statuses.push(answer.status);
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        19,
        "{statuses:?}"
    );
    let history = app
        .get("/api/v1/reports/56121/2020-04-11/history", Some(&mayor))
        .await
        .json();
    let versions: Vec<u64> = history["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v["version"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(history["versions"][1]["counts"]["hopital"].as_u64(), winner);
}
