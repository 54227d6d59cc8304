//! A real browser: headless Chromium through ChromeDriver. A mayor declares with
//! JavaScript turned off, and axe-core finds no accessibility violation on the
//! published site and the app.

use decompte_core::Role;
use decompte_tests::webdriver::{ChromeDriver, Session};
use decompte_tests::{report_body, TestApp};

/// Types `code` into the field of the form on the page and submits it.
async fn submit_code(browser: &Session, code: &str) {
    let field = browser.find("#code").await;
    browser.type_into(&field, code).await;
    let submit = browser.find("form.stack button[type=submit]").await;
    browser.click(&submit).await;
}

/// Logs in with `code`, and with its test second factor for a prefecture.
async fn log_in(browser: &Session, app: &TestApp, code: &str) {
    browser.goto(&app.url("/connexion")).await;
    submit_code(browser, code).await;
    if let Some(totp) = decompte_tests::second_factor_now(code, 0) {
        browser.wait_for_text("Double authentification").await;
        submit_code(browser, &totp).await;
    }
    browser.wait_for_text("Se déconnecter").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mayor_declares_without_javascript() {
    let app = TestApp::start().await;
    let code = app.issue(Role::Commune, Some("56260")).await;
    let driver = ChromeDriver::start().await;
    let browser = driver.session(false).await;

    log_in(&browser, &app, &code.to_lowercase().replace('-', " ")).await;
    assert!(
        browser.url().await.ends_with("/saisie"),
        "{}",
        browser.url().await
    );
    browser.goto(&app.url("/saisie?date=2020-04-01")).await;
    for (key, value) in [
        ("hopital", "2"),
        ("ehpad", "1"),
        ("esms", "0"),
        ("domicile", "0"),
        ("autre", "0"),
    ] {
        let input = browser.find(&format!("#n-{key}")).await;
        browser.clear(&input).await;
        browser.type_into(&input, value).await;
    }
    let save = browser
        .find("form[action='/saisie'][method=post] button[type=submit]")
        .await;
    browser.click(&save).await;
    browser.wait_for_text("Déclaration enregistrée").await;
    assert!(browser.url().await.contains("enregistre=1"));

    // A correction that lowers a count without a reason is explained, and the typed figures stay.
    for (key, value) in [("hopital", "1")] {
        let input = browser.find(&format!("#n-{key}")).await;
        browser.clear(&input).await;
        browser.type_into(&input, value).await;
    }
    let save = browser
        .find("form[action='/saisie'][method=post] button[type=submit]")
        .await;
    browser.click(&save).await;
    browser
        .wait_for_text("indiquez le motif de la correction")
        .await;
    let reason = browser.find("#reason").await;
    browser.type_into(&reason, "Décès compté deux fois").await;
    let save = browser
        .find("form[action='/saisie'][method=post] button[type=submit]")
        .await;
    browser.click(&save).await;
    browser.wait_for_text("(version 2)").await;
    browser.quit().await;

    let history = app
        .get("/api/v1/reports/56260/2020-04-01/history", Some(&code))
        .await
        .json();
    assert_eq!(history["versions"][1]["reason"], "Décès compté deux fois");
    assert_eq!(history["versions"][1]["source"], "form");
}

/// Runs axe-core (WCAG 2 A and AA rules) on the page and returns its violations.
async fn axe_violations(browser: &Session) -> Vec<String> {
    let axe = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/browser/node_modules/axe-core/axe.min.js"
    ))
    .unwrap_or_else(|e| {
        panic!("axe-core is missing ({e}): run ./scripts/test.sh, which installs it with npm")
    });
    let script = format!(
        "{axe}\n;const done = arguments[arguments.length - 1];\
         axe.run(document, {{runOnly: {{type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', \
             'wcag21aa']}}}})\
         .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + ', ' + v.nodes.length + \
             ' fois) : ' + v.help + ' — ' + v.nodes.slice(0, 3).map(n => n.target.join(' \
                 ')).join(' | '))))\
         .catch(e => done(['axe failed: ' + e]));"
    );
    let result = browser.execute_async(&script).await;
    result
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_have_no_accessibility_violations() {
    let app = TestApp::start().await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    for (commune, date, counts) in [
        ("56260", "2020-04-01", [3, 1, 0, 1, 0]),
        ("56121", "2020-04-02", [1, 2, 1, 0, 1]),
    ] {
        app.post_json(
            "/api/v1/reports",
            Some(&prefecture),
            &report_body(commune, date, counts),
            &[],
        )
        .await;
    }
    app.publish().await;
    let driver = ChromeDriver::start().await;
    let browser = driver.session(true).await;
    let mut problems = Vec::new();
    let public = [
        "/index.html",
        "/communes/56260.html",
        "/communes/56001.html",
        "/lieux/ehpad.html",
        "/methodologie.html",
        "/connexion",
        "/aide",
    ];
    for path in public {
        browser.goto(&app.url(path)).await;
        problems.extend(
            axe_violations(&browser)
                .await
                .into_iter()
                .map(|v| format!("{path}: {v}")),
        );
    }
    // The first login of a prefecture code: the enrolment of its second
    // factor (QR code), then the recovery codes.
    let (credential, fresh) = decompte_app::auth::issue_credential(
        app.store().as_ref(),
        decompte_app::auth::NewCredential::new(Role::Prefecture, None, "Cellule de crise"),
        chrono::Utc::now(),
    )
    .await
    .expect("issue");
    browser.goto(&app.url("/connexion")).await;
    submit_code(&browser, &fresh.display_grouped()).await;
    browser.wait_for_text("code QR").await;
    problems.extend(
        axe_violations(&browser)
            .await
            .into_iter()
            .map(|v| format!("enrolment: {v}")),
    );
    let secret = app
        .store()
        .credential(&credential.id)
        .await
        .expect("read")
        .and_then(|c| c.second_factor)
        .expect("an enrolment")
        .secret;
    let totp = decompte_app::second_factor::code_at(&secret, chrono::Utc::now()).expect("a code");
    submit_code(&browser, &totp).await;
    browser.wait_for_text("Vos codes de secours").await;
    problems.extend(
        axe_violations(&browser)
            .await
            .into_iter()
            .map(|v| format!("recovery codes: {v}")),
    );
    for path in [
        "/prefecture?date=2020-04-01",
        "/saisie?commune=56260&date=2020-04-01",
        "/prefecture/codes",
        "/prefecture/saisie-groupee?date=2020-04-03",
    ] {
        browser.goto(&app.url(path)).await;
        problems.extend(
            axe_violations(&browser)
                .await
                .into_iter()
                .map(|v| format!("{path}: {v}")),
        );
    }
    // The check can fail: a page with an image without text alternative is caught.
    browser
        .goto(
            "data:text/html,<!doctype html><html lang=fr><title>t</title><main><img \
        src=x.png></main></html>",
        )
        .await;
    let caught = axe_violations(&browser).await;
    assert!(
        caught.iter().any(|v| v.starts_with("image-alt")),
        "{caught:?}"
    );
    browser.quit().await;
    assert!(
        problems.is_empty(),
        "accessibility violations:\n{}",
        problems.join("\n")
    );
}
