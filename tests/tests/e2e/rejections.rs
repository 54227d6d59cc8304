//! Every bad input gets a clear French answer and changes nothing in the store.

use chrono::{Duration, Utc};
use decompte_core::time::paris_today;
use decompte_core::Role;
use decompte_tests::{csrf_of, report_body, Answer, Browser, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Asserts the status, the error code, a fragment of the French message (or of
/// a field's message), and that the store did not change.
async fn assert_refused(
    app: &TestApp,
    answer: Answer,
    before: &decompte_tests::ReportsSnapshot,
    status: StatusCode,
    code: &str,
    fragment: &str,
) {
    assert_eq!(answer.status, status, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["error"], code, "{body}");
    let mut messages = vec![body["message"].as_str().unwrap_or_default().to_owned()];
    for field in body["fields"].as_array().into_iter().flatten() {
        messages.push(field["message"].as_str().unwrap_or_default().to_owned());
    }
    assert!(
        messages.iter().any(|m| m.contains(fragment)),
        "no « {fragment} » in {messages:?}"
    );
    assert_eq!(&app.snapshot().await, before, "the store changed");
}

fn field_of(answer: &Answer) -> Vec<String> {
    answer.json()["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["field"].as_str().map(str::to_owned))
        .collect()
}

on_every_store!(invalid_reports_are_refused_with_french_messages);
async fn invalid_reports_are_refused_with_french_messages(app: TestApp) {
    let prefecture = app.issue(Role::Prefecture, None).await;
    let first = app
        .post_json(
            "/api/v1/reports",
            Some(&prefecture),
            &report_body("56001", "2020-04-01", [1, 1, 0, 0, 0]),
            &[],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let before = app.snapshot().await;
    let tomorrow = (paris_today(Utc::now()) + Duration::days(1)).to_string();

    let mut cases: Vec<(Value, &str, &str)> = vec![
        (
            report_body("56999", "2020-04-02", [0; 5]),
            "commune",
            "n'existe pas ou n'est pas dans le périmètre",
        ),
        (
            report_body("29019", "2020-04-02", [0; 5]),
            "commune",
            "n'existe pas ou n'est pas dans le périmètre",
        ),
        (
            report_body("5600", "2020-04-02", [0; 5]),
            "commune",
            "n'est pas un code commune INSEE",
        ),
        (
            report_body("56001", "2020-02-30", [0; 5]),
            "date",
            "n'est pas une date valide",
        ),
        (
            report_body("56001", "avril", [0; 5]),
            "date",
            "n'est pas une date valide",
        ),
        (
            report_body("56001", &tomorrow, [0; 5]),
            "date",
            "est dans le futur",
        ),
        (
            report_body("56001", "2019-12-31", [0; 5]),
            "date",
            "antérieur au début",
        ),
        (
            report_body("56001", "2020-04-02", [0, 1001, 0, 0, 0]),
            "counts.ehpad",
            "dépasse le maximum de 1000",
        ),
    ];
    let mut negative = report_body("56001", "2020-04-02", [0; 5]);
    negative["counts"]["ehpad"] = json!(-1);
    cases.push((negative, "counts.ehpad", "ne peut pas être négatif"));
    let mut fractional = report_body("56001", "2020-04-02", [0; 5]);
    fractional["counts"]["ehpad"] = json!(1.5);
    cases.push((fractional, "counts.ehpad", "nombre entier"));
    let mut quoted = report_body("56001", "2020-04-02", [0; 5]);
    quoted["counts"]["ehpad"] = json!("2");
    cases.push((quoted, "counts.ehpad", "sans guillemets"));
    let mut missing = report_body("56001", "2020-04-02", [0; 5]);
    missing["counts"]
        .as_object_mut()
        .map(|c| c.remove("domicile"));
    cases.push((
        missing,
        "counts.domicile",
        "Indiquez un nombre pour « Domicile »",
    ));
    let mut unknown = report_body("56001", "2020-04-02", [0; 5]);
    unknown["counts"]["cimetiere"] = json!(1);
    cases.push((
        unknown,
        "counts.cimetiere",
        "Le lieu « cimetiere » n'existe pas",
    ));
    let mut typo = report_body("56001", "2020-04-02", [0; 5]);
    typo["replace_version"] = json!(1);
    cases.push((
        typo,
        "replace_version",
        "Le champ « replace_version » est inconnu",
    ));
    let mut lower = report_body("56001", "2020-04-01", [0, 1, 0, 0, 0]);
    lower["replaces_version"] = json!(1);
    cases.push((lower, "reason", "indiquez le motif"));

    for (body, field, fragment) in cases {
        let answer = app
            .post_json("/api/v1/reports", Some(&prefecture), &body, &[])
            .await;
        assert_eq!(field_of(&answer), [field], "{body}");
        assert_refused(
            &app,
            answer,
            &before,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            fragment,
        )
        .await;
    }
    let malformed = app
        .post_raw(
            "/api/v1/reports",
            Some(&prefecture),
            "application/json",
            b"{\"commune\": ".to_vec(),
        )
        .await;
    assert_refused(
        &app,
        malformed,
        &before,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        "n'est pas un JSON valide",
    )
    .await;
}

on_every_store!(stale_or_missing_versions_conflict_with_the_current_report);
async fn stale_or_missing_versions_conflict_with_the_current_report(app: TestApp) {
    let mayor = app.issue(Role::Commune, Some("56001")).await;
    app.post_json(
        "/api/v1/reports",
        Some(&mayor),
        &report_body("56001", "2020-04-01", [1, 0, 0, 0, 0]),
        &[],
    )
    .await;
    let mut second = report_body("56001", "2020-04-01", [2, 0, 0, 0, 0]);
    second["replaces_version"] = json!(1);
    assert_eq!(
        app.post_json("/api/v1/reports", Some(&mayor), &second, &[])
            .await
            .status,
        StatusCode::CREATED
    );
    let before = app.snapshot().await;

    let stale = app
        .post_json("/api/v1/reports", Some(&mayor), &second, &[])
        .await;
    assert_eq!(stale.json()["current"]["version"], 2);
    assert_eq!(stale.json()["current"]["counts"]["hopital"], 2);
    assert_refused(
        &app,
        stale,
        &before,
        StatusCode::CONFLICT,
        "version_conflict",
        "la version actuelle est la 2",
    )
    .await;

    let missing = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &report_body("56001", "2020-04-01", [5, 0, 0, 0, 0]),
            &[],
        )
        .await;
    assert_eq!(missing.json()["current"]["version"], 2);
    assert_refused(
        &app,
        missing,
        &before,
        StatusCode::CONFLICT,
        "version_conflict",
        "Une déclaration existe déjà",
    )
    .await;

    let mut phantom = report_body("56001", "2020-04-05", [5, 0, 0, 0, 0]);
    phantom["replaces_version"] = json!(1);
    let phantom = app
        .post_json("/api/v1/reports", Some(&mayor), &phantom, &[])
        .await;
    assert!(phantom.json()["current"].is_null());
    assert_refused(
        &app,
        phantom,
        &before,
        StatusCode::CONFLICT,
        "version_conflict",
        "Aucune déclaration n'existe encore",
    )
    .await;
}

on_every_store!(transport_errors_size_type_and_credentials);
async fn transport_errors_size_type_and_credentials(app: TestApp) {
    let mayor = app.issue(Role::Commune, Some("56001")).await;
    let revoked = app.issue(Role::Commune, Some("56002")).await;
    let revoked_id = app
        .store()
        .credentials()
        .await
        .expect("list")
        .into_iter()
        .find(|c| c.commune.as_ref().map(|c| c.as_str()) == Some("56002"))
        .map(|c| c.id)
        .expect("id");
    app.store()
        .revoke_credential(&revoked_id, Utc::now())
        .await
        .expect("revoke");
    let before = app.snapshot().await;
    let body = report_body("56001", "2020-04-01", [0; 5]);

    let mut huge = body.clone();
    huge["reason"] = json!("x".repeat(20_000));
    let answer = app
        .post_json("/api/v1/reports", Some(&mayor), &huge, &[])
        .await;
    assert_refused(
        &app,
        answer,
        &before,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "taille maximale",
    )
    .await;

    let answer = app
        .post_raw(
            "/api/v1/reports",
            Some(&mayor),
            "text/plain",
            body.to_string().into_bytes(),
        )
        .await;
    assert_refused(
        &app,
        answer,
        &before,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Content-Type: application/json",
    )
    .await;

    for code in [
        None,
        Some("56001-0000-0000-0000-0000-0000-0000-0000"),
        Some("pas un code"),
        Some(revoked.as_str()),
    ] {
        let answer = app.post_json("/api/v1/reports", code, &body, &[]).await;
        assert!(answer.headers.contains_key("www-authenticate"));
        assert_refused(
            &app,
            answer,
            &before,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Code d'accès absent, inconnu ou révoqué",
        )
        .await;
    }

    let other = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &report_body("56002", "2020-04-01", [0; 5]),
            &[],
        )
        .await;
    assert_refused(
        &app,
        other,
        &before,
        StatusCode::FORBIDDEN,
        "forbidden",
        "que pour la commune 56001",
    )
    .await;
    let completeness = app.get("/api/v1/completeness", Some(&mayor)).await;
    assert_refused(
        &app,
        completeness,
        &before,
        StatusCode::FORBIDDEN,
        "forbidden",
        "réservée à la préfecture",
    )
    .await;
    let publication = app
        .post_json("/api/v1/publications", Some(&mayor), &json!({}), &[])
        .await;
    assert_refused(
        &app,
        publication,
        &before,
        StatusCode::FORBIDDEN,
        "forbidden",
        "réservée à la préfecture",
    )
    .await;
    let history = app
        .get("/api/v1/reports/56002/2020-04-01/history", Some(&mayor))
        .await;
    assert_refused(
        &app,
        history,
        &before,
        StatusCode::FORBIDDEN,
        "forbidden",
        "votre commune",
    )
    .await;

    // A commune browser cannot open the prefecture page.
    let mut browser = Browser::new(&app);
    browser.login(&mayor).await;
    let page = browser.get("/prefecture").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.text.contains("réservée à la préfecture"),
        "{}",
        page.text
    );
}

on_every_store!(repeated_failed_logins_are_throttled_per_client);
async fn repeated_failed_logins_are_throttled_per_client(app: TestApp) {
    let mayor = app.issue(Role::Commune, Some("56001")).await;
    let mut browser = Browser::new(&app);
    for attempt in 1..=10 {
        let answer = browser.login("AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert!(
            answer.text.contains("inconnu ou révoqué"),
            "{}",
            answer.text
        );
    }
    // Past ten failures a wrong code is answered 429 at once…
    let throttled = browser.login("AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA").await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        throttled.text.contains("Trop de tentatives"),
        "{}",
        throttled.text
    );
    assert!(throttled.headers.contains_key("retry-after"));
    let api = app
        .get(
            "/api/v1/me",
            Some("PREF-0000-0000-0000-0000-0000-0000-0000"),
        )
        .await;
    assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(api.json()["error"], "too_many_requests");
    // …while a right code from the same address still passes at once (a
    // communauté de communes behind one address is never locked out).
    let mut neighbour = Browser::new(&app);
    let right = neighbour.login(&mayor).await;
    assert_eq!(right.status, StatusCode::SEE_OTHER, "{}", right.text);
    assert_eq!(right.location(), "/saisie");
    assert_eq!(
        app.get("/api/v1/me", Some(&mayor)).await.status,
        StatusCode::OK
    );
}

/// The failure count is incremented atomically and compared after: a burst
/// of parallel wrong codes gets no more than the limit past `401`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_burst_of_wrong_codes_gets_no_more_than_the_limit() {
    let app = TestApp::start().await;
    let attempts = (0..40).map(|_| {
        let request = app
            .client
            .get(app.url("/api/v1/me"))
            // A code without a commune: only the client's count applies.
            .bearer_auth("PREF-0000-0000-0000-0000-0000-0000-0000");
        async move { request.send().await.expect("GET").status() }
    });
    let statuses = futures_join_all(attempts).await;
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((unauthorized, throttled), (10, 30), "{statuses:?}");
}

/// Runs every future at once, on the runtime's threads.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

on_every_store!(idempotency_keys_replay_and_refuse_reuse);
async fn idempotency_keys_replay_and_refuse_reuse(app: TestApp) {
    let mayor = app.issue(Role::Commune, Some("56001")).await;
    let body = report_body("56001", "2020-04-01", [1, 0, 0, 0, 0]);
    let first = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &body,
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &body,
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.json(), first.json());
    let before = app.snapshot().await;
    assert_eq!(before.versions.len(), 1);
    let other = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &report_body("56001", "2020-04-02", [1, 0, 0, 0, 0]),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_refused(
        &app,
        other,
        &before,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "a déjà servi",
    )
    .await;
    // A refused request keeps no record: fixed, it can be retried with its key.
    let mut bad = report_body("56001", "2020-04-03", [1, 0, 0, 0, 0]);
    bad["counts"]["ehpad"] = json!(-1);
    let refused = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &bad,
            &[("Idempotency-Key", "k-2")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let retried = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &report_body("56001", "2020-04-03", [1, 0, 0, 0, 0]),
            &[("Idempotency-Key", "k-2")],
        )
        .await;
    assert_eq!(retried.status, StatusCode::CREATED);
}

on_every_store!(the_form_keeps_what_was_typed_and_explains_in_french);
async fn the_form_keeps_what_was_typed_and_explains_in_french(app: TestApp) {
    let mayor = app.issue(Role::Commune, Some("56001")).await;
    let mut browser = Browser::new(&app);
    browser.login(&mayor).await;
    let csrf = csrf_of(&browser.get("/saisie").await.text);
    let before = app.snapshot().await;
    let invalid = browser
        .post_form(
            "/saisie",
            &[
                ("csrf", &csrf),
                ("commune", "56001"),
                ("date", "2020-04-01"),
                ("n_hopital", "2"),
                ("n_ehpad", "-3"),
                ("n_esms", "deux"),
                ("n_domicile", "1"),
                ("n_autre", ""),
                ("reason", "mon motif"),
            ],
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    for expected in [
        "La déclaration n'a pas été enregistrée",
        "ne peut pas être négatif",
        "nombre entier",
        "Indiquez un nombre pour « Autre lieu »",
        "value=\"-3\"",
        "value=\"deux\"",
        "mon motif",
        "aria-invalid=\"true\"",
    ] {
        assert!(
            invalid.text.contains(expected),
            "no « {expected} » in the form"
        );
    }
    assert_eq!(app.snapshot().await, before);

    // Someone else corrects the day meanwhile: the form shows both figures.
    let prefecture = app.issue(Role::Prefecture, None).await;
    app.post_json(
        "/api/v1/reports",
        Some(&prefecture),
        &report_body("56001", "2020-04-01", [7, 0, 0, 0, 0]),
        &[],
    )
    .await;
    let before = app.snapshot().await;
    let conflict = browser
        .post_form(
            "/saisie",
            &[
                ("csrf", &csrf),
                ("commune", "56001"),
                ("date", "2020-04-01"),
                ("n_hopital", "2"),
                ("n_ehpad", "0"),
                ("n_esms", "0"),
                ("n_domicile", "1"),
                ("n_autre", "0"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert!(
        conflict.text.contains("Une déclaration existe déjà"),
        "{}",
        conflict.text
    );
    assert!(
        conflict.text.contains("Valeur actuelle : 7"),
        "{}",
        conflict.text
    );
    assert!(
        conflict.text.contains(
            "id=\"n-hopital\" name=\"n_hopital\" type=\"number\" \
        inputmode=\"numeric\" min=\"0\" max=\"1000\" step=\"1\" value=\"2\""
        ),
        "the user's value is kept"
    );
    assert!(conflict
        .text
        .contains("name=\"replaces_version\" value=\"1\""));
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_for_one_commune_are_throttled_without_locking_it_out() {
    // The app sits behind a reverse proxy on loopback, which adds the client's
    // address to X-Forwarded-For.
    let app =
        TestApp::start_with(|settings| settings.trusted_proxies = vec!["127.0.0.1".into()]).await;
    let mayor = app.issue(Role::Commune, Some("56001")).await;
    let wrong = "56001-0000-0000-0000-0000-0000-0000-0000";
    let attempt = |code: &str, client: String| {
        let request = app
            .client
            .get(app.url("/api/v1/me"))
            .bearer_auth(code)
            .header("x-forwarded-for", client);
        async move {
            let started = std::time::Instant::now();
            let answer = request.send().await.expect("GET");
            (answer.status(), answer.headers().clone(), started.elapsed())
        }
    };
    // Twenty failures from twenty clients: each answered 401.
    for i in 0..20 {
        let (status, _, _) = attempt(wrong, format!("198.51.100.{i}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Past that, a wrong code for this commune is answered 429 with
    // Retry-After, at once: nothing sleeps on the server…
    let (status, headers, elapsed) = attempt(wrong, "198.51.100.200".into()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key("retry-after"));
    assert!(elapsed < std::time::Duration::from_secs(1), "{elapsed:?}");
    // …while the mayor's own code still goes through.
    let (status, _, _) = attempt(&mayor, "198.51.100.201".into()).await;
    assert_eq!(status, StatusCode::OK);
    // Another commune is not affected.
    let (status, _, _) = attempt(
        "56002-0000-0000-0000-0000-0000-0000-0000",
        "198.51.100.202".into(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Without trusted proxies, X-Forwarded-For is ignored: a client cannot
/// choose the address its failures are counted under.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_forwarded_address_changes_nothing_without_trusted_proxies() {
    let app = TestApp::start().await;
    for i in 0..11 {
        let status = app
            .client
            .get(app.url("/api/v1/me"))
            .bearer_auth("PREF-0000-0000-0000-0000-0000-0000-0000")
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .send()
            .await
            .expect("GET")
            .status();
        let expected = if i < 10 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(status, expected, "attempt {i}");
    }
}
