//! The whole product, as a mayor's browser, an API client and a reader of the site see it.

use decompte_core::Role;
use decompte_tests::{csrf_of, report_body, Browser, TestApp};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mayor_declares_the_api_corrects_and_the_site_shows_it() {
    whole_flow(TestApp::start().await).await;
}

#[cfg(feature = "components")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_dynamodb_local() {
    let store = decompte_tests::dynamodb_local::DynamoLocal::shared()
        .fresh_store(&["56"])
        .await;
    whole_flow(TestApp::start_on(std::sync::Arc::new(store)).await).await;
}

async fn whole_flow(app: TestApp) {
    let mayor_code = app.issue(Role::Commune, Some("56260")).await;
    let prefecture_code = app.issue(Role::Prefecture, None).await;

    // The browser: login page, code, form, submit with CSRF token and session cookie.
    let mut browser = Browser::new(&app);
    let login = browser.login(&mayor_code.to_lowercase()).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.text);
    assert_eq!(login.location(), "/saisie");
    let session_cookie = login
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("decompte_session="))
        .expect("session cookie");
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Strict"),
        "{session_cookie}"
    );

    let form = browser.get("/saisie?date=2020-04-01").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.text.contains("Vannes") && form.text.contains("Hôpital ou clinique"),
        "{}",
        form.text
    );
    let csrf = csrf_of(&form.text);
    let saved = browser
        .declare(&csrf, "56260", "2020-04-01", [3, 2, 0, 1, 0])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let confirmation = browser.get(&saved.location()).await;
    assert!(
        confirmation.text.contains("Déclaration enregistrée"),
        "{}",
        confirmation.text
    );
    assert!(
        confirmation.text.contains("total 6"),
        "{}",
        confirmation.text
    );

    // A form without the CSRF token is refused and writes nothing.
    let before = app.snapshot().await;
    let forged = browser
        .post_form(
            "/saisie",
            &[
                ("commune", "56260"),
                ("date", "2020-04-02"),
                ("n_hopital", "1"),
                ("n_ehpad", "0"),
                ("n_esms", "0"),
                ("n_domicile", "0"),
                ("n_autre", "0"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.snapshot().await, before);

    // The API: another day, then a correction of the form's day by the prefecture.
    let created = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor_code),
            &report_body("56260", "2020-04-02", [1, 0, 0, 0, 0]),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json()["version"], 1);
    assert_eq!(created.json()["source"], "api");
    let mut correction = report_body("56260", "2020-04-01", [4, 2, 0, 1, 0]);
    correction["replaces_version"] = 1.into();
    let corrected = app
        .post_json("/api/v1/reports", Some(&prefecture_code), &correction, &[])
        .await;
    assert_eq!(corrected.status, StatusCode::CREATED, "{}", corrected.text);
    assert_eq!(corrected.json()["total"], 7);
    assert_eq!(corrected.json()["source"], "prefecture");
    let history = app
        .get(
            "/api/v1/reports/56260/2020-04-01/history",
            Some(&mayor_code),
        )
        .await;
    let versions = history.json()["versions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        versions
            .iter()
            .map(|v| v["total"].as_u64())
            .collect::<Vec<_>>(),
        [Some(6), Some(7)]
    );
    assert_eq!(versions[0]["source"], "form");
    assert_eq!(
        versions[1],
        corrected.json(),
        "the answer is exactly what is stored"
    );

    // The prefecture sees who has not reported.
    let completeness = app
        .get(
            "/api/v1/completeness?date=2020-04-01",
            Some(&prefecture_code),
        )
        .await;
    assert_eq!(completeness.json()["expected"], 249);
    assert_eq!(completeness.json()["reported"], 1);
    assert_eq!(
        completeness.json()["missing"].as_array().map(Vec::len),
        Some(248)
    );

    // A publication through the API, followed to its end.
    let queued = app
        .post_json(
            "/api/v1/publications",
            Some(&prefecture_code),
            &serde_json::json!({"reason": "test"}),
            &[],
        )
        .await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.text);
    let id = queued.json()["id"].as_str().unwrap_or_default().to_owned();
    let mut status = String::new();
    for _ in 0..200 {
        let publication = app
            .get(
                &format!("/api/v1/publications/{id}"),
                Some(&prefecture_code),
            )
            .await;
        status = publication.json()["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status == "succeeded" || status == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "succeeded");

    // The figures are on the site, as files and over HTTP.
    let index = app.get("/index.html", None).await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(
        index
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("public, max-age=60")
    );
    assert_eq!(
        index
            .headers
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );
    assert_eq!(
        app.get("/", None).await.text,
        index.text,
        "the site root serves the overview"
    );
    assert!(
        index
            .text
            .contains("<span class=\"n\">8</span> décès au total"),
        "{}",
        index.text
    );
    let commune = app.site_file("communes/56260.html");
    assert!(commune.contains("<h1>Vannes"), "{commune}");
    assert!(
        commune.contains("<th scope=\"row\">01/04/2020</th><td>4</td><td>2</td>"),
        "{commune}"
    );
    let csv = app.get("/donnees/deces.csv", None).await.text;
    assert!(
        csv.starts_with("date,code_commune,nom_commune,hopital,ehpad,esms,domicile,autre,total\n"),
        "{csv}"
    );
    assert!(csv.contains("\n2020-04-01,56260,Vannes,4,"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 2);

    // The prefecture page lists the publication; logout ends the session on the server.
    let mut prefecture = Browser::new(&app);
    assert_eq!(
        prefecture.login(&prefecture_code).await.location(),
        "/prefecture"
    );
    let page = prefecture.get("/prefecture?date=2020-04-01").await;
    assert!(
        page.text.contains("1 communes sur 249 ont déclaré"),
        "{}",
        page.text
    );
    assert!(page.text.contains("réussie"), "{}", page.text);
    let csrf = csrf_of(&page.text);
    let session = prefecture
        .cookies
        .get("decompte_session")
        .cloned()
        .unwrap_or_default();
    let logout = prefecture
        .post_form("/deconnexion", &[("csrf", &csrf)])
        .await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    prefecture
        .cookies
        .insert("decompte_session".into(), session);
    assert_eq!(
        prefecture.get("/prefecture").await.location(),
        "/connexion",
        "the old session id no longer works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_api() {
    let app = TestApp::start().await;
    let doc = app.get("/api/v1/openapi.json", None).await.json();
    for path in [
        "/api/v1/reports",
        "/api/v1/reports/{commune}/{date}/history",
        "/api/v1/completeness",
        "/api/v1/publications",
        "/api/v1/publications/{id}",
        "/api/v1/me",
    ] {
        assert!(doc["paths"][path].is_object(), "missing {path}");
    }
    assert!(doc["components"]["schemas"]["ReportBody"].is_object());
    assert_eq!(app.get("/healthz", None).await.text, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_typed_survives_an_expired_session() {
    let app = TestApp::start().await;
    let code = app.issue(Role::Commune, Some("56260")).await;
    let mut browser = Browser::new(&app);
    browser.login(&code).await;
    let csrf = csrf_of(&browser.get("/saisie?date=2020-04-01").await.text);
    // The session ends on the server while the mayor is typing.
    let id = app.store().credentials().await.expect("list")[0].id.clone();
    app.store().delete_sessions_of(&id).await.expect("expire");

    let typed = [
        ("commune", "56260"),
        ("date", "2020-04-01"),
        ("n_hopital", "4"),
        ("n_ehpad", "1"),
        ("n_esms", "0"),
        ("n_domicile", "2"),
        ("n_autre", "0"),
        ("reason", ""),
    ];
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend(typed);
    let expired = browser.post_form("/saisie", &fields).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(
        expired.text.contains("Votre session a expiré"),
        "{}",
        expired.text
    );
    assert!(
        expired
            .text
            .contains("name=\"draft_n_hopital\" value=\"4\""),
        "{}",
        expired.text
    );
    assert!(
        app.snapshot().await.current.is_empty(),
        "nothing is written without a session"
    );

    // Logging in again brings the form back with the typed figures, unsaved.
    let login_csrf = csrf_of(&expired.text);
    let mut login = vec![
        ("csrf".to_owned(), login_csrf),
        ("code".to_owned(), code.clone()),
    ];
    login.extend(
        typed
            .iter()
            .map(|(k, v)| (format!("draft_{k}"), (*v).to_owned())),
    );
    let login: Vec<(&str, &str)> = login
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let resumed = browser.post_form("/connexion", &login).await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.text);
    assert!(
        resumed
            .text
            .contains("les chiffres que vous aviez saisis sont conservés"),
        "{}",
        resumed.text
    );
    assert!(
        resumed.text.contains(
            "name=\"n_hopital\" type=\"number\" inputmode=\"numeric\" \
        min=\"0\" max=\"1000\" step=\"1\" value=\"4\""
        ),
        "{}",
        resumed.text
    );
    assert!(app.snapshot().await.current.is_empty());

    let csrf = csrf_of(&resumed.text);
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend(typed);
    let saved = browser.post_form("/saisie", &fields).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    assert_eq!(app.snapshot().await.current[0].total(), 7);
}
