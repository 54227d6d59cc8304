//! Defects an attacker found in the running server, each fixed and kept fixed
//! (issue « Hardening »): crafted dates, cross-site drafts, login throttling.

use decompte_core::Role;
use decompte_tests::{csrf_of, report_body, Browser, TestApp};
use reqwest::StatusCode;

/// `/prefecture?date=-262143-01-01` used to overflow a date computation and
/// drop the connection. Every date taken from a query or a form is now bounded
/// to the crisis window first, and a bad one gets a French answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_dates_get_a_french_answer_not_a_dropped_connection() {
    let app = TestApp::start().await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    let mayor = app.issue(Role::Commune, Some("56260")).await;
    let mut cell = Browser::new(&app);
    cell.login(&prefecture).await;
    let mut mairie = Browser::new(&app);
    mairie.login(&mayor).await;

    for (date, says) in [
        ("-262143-01-01", "pas une date valide"),
        ("%2B262142-12-31", "pas une date valide"),
        ("262142-12-31", "pas une date valide"),
        ("1000-01-01", "au début de la période suivie"),
        ("2999-12-31", "dans le futur"),
    ] {
        for (browser, page) in [(&mut cell, "/prefecture"), (&mut mairie, "/saisie")] {
            let answer = browser.get(&format!("{page}?date={date}")).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{page} {date}");
            assert!(answer.text.contains(says), "{page} {date}: {}", answer.text);
            assert!(answer.text.contains("lang=\"fr\""), "{}", answer.text);
        }
        let completeness = app
            .get(
                &format!("/api/v1/completeness?date={date}"),
                Some(&prefecture),
            )
            .await;
        assert_eq!(
            completeness.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{date}"
        );
        assert_eq!(completeness.json()["fields"][0]["field"], "date");
    }
    for path in [
        "/api/v1/reports?from=-262143-01-01",
        "/api/v1/reports?to=%2B262142-12-31",
        "/api/v1/reports/56260/-262143-01-01/history",
    ] {
        let answer = app.get(path, Some(&prefecture)).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(answer.json()["message"].as_str().is_some(), "{path}");
    }
    let posted = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &report_body("56260", "-262143-01-01", [0; 5]),
            &[],
        )
        .await;
    assert_eq!(posted.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(posted.json()["fields"][0]["field"], "date");
    // The server is still there, and a good day still works.
    let fine = cell.get("/prefecture?date=2020-04-01").await;
    assert_eq!(fine.status, StatusCode::OK);
    assert!(app.snapshot().await.current.is_empty());
}

/// A page on another site used to post figures into `/saisie` without the
/// session cookie: the login page carried them, and after a genuine login the
/// form showed them as "the figures you had typed". Only a same-origin request
/// keeps a draft now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_site_cannot_fill_the_form() {
    let app = TestApp::start().await;
    let mayor = app.issue(Role::Commune, Some("56260")).await;
    let forged = [
        ("commune", "56260"),
        ("date", "2020-04-01"),
        ("n_hopital", "97"),
        ("n_ehpad", "0"),
        ("n_esms", "0"),
        ("n_domicile", "0"),
        ("n_autre", "0"),
        ("reason", "Correction demandée par la préfecture"),
    ];
    for cross_site in [
        vec![
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://attaquant.example"),
        ],
        vec![("origin", "https://attaquant.example")],
        vec![("referer", "https://attaquant.example/piege.html")],
        vec![],
    ] {
        let mut victim = Browser::new(&app);
        let mut fields = vec![("csrf", "x")];
        fields.extend(forged);
        let answer = victim.post_form_with("/saisie", &fields, &cross_site).await;
        // Sent to the login page, with nothing of what the other site posted.
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "{cross_site:?}: {}",
            answer.text
        );
        assert_eq!(answer.location(), "/connexion");
        assert!(!answer.text.contains("draft_"), "{}", answer.text);
        let login_page = victim.get("/connexion").await;
        assert!(!login_page.text.contains("draft_"), "{}", login_page.text);
        // A login posted from another site carries no draft either.
        let token = csrf_of(&login_page.text);
        let mut login = vec![("csrf", token.as_str()), ("code", mayor.as_str())];
        let drafts: Vec<(String, &str)> = forged
            .iter()
            .map(|(k, v)| (format!("draft_{k}"), *v))
            .collect();
        login.extend(drafts.iter().map(|(k, v)| (k.as_str(), *v)));
        let after = victim
            .post_form_with("/connexion", &login, &cross_site)
            .await;
        assert_eq!(
            after.status,
            StatusCode::SEE_OTHER,
            "{cross_site:?}: {}",
            after.text
        );
        assert_eq!(after.location(), "/saisie");
        let form = victim.get("/saisie?date=2020-04-01").await;
        assert!(!form.text.contains("value=\"97\""), "{}", form.text);
        assert!(!form.text.contains("conservés"), "{}", form.text);
    }
    assert!(app.snapshot().await.current.is_empty());
}
