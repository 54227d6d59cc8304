//! A real browser: headless Chromium through ChromeDriver. A mayor declares with
//! JavaScript turned off; axe-core finds no accessibility violation on the
//! published site and the app, on a 360-pixel phone and on a 1280-pixel
//! screen; on the phone no page is wider than the screen and no chart's text
//! is smaller than 12 pixels. Screenshots of the phone are left in
//! `target/screenshots/` for a reviewer.

use decompte_core::{CommuneCode, Role};
use decompte_tests::webdriver::{ChromeDriver, Session};
use decompte_tests::{report_body, TestApp};
use serde_json::json;

/// Types `code` into the field of the form on the page and submits it.
async fn submit_code(browser: &Session, code: &str) {
    let field = browser.find("#code").await;
    browser.type_into(&field, code).await;
    let submit = browser.find("form.stack button[type=submit]").await;
    browser.click(&submit).await;
}

/// On the enrolment page of credential `id`: types the code its phone
/// would show, and waits for the recovery codes.
async fn complete_enrolment(browser: &Session, app: &TestApp, id: &str) {
    let secret = app
        .store()
        .credential(id)
        .await
        .expect("read")
        .and_then(|c| c.second_factor)
        .expect("an enrolment")
        .secret;
    let totp = decompte_app::second_factor::code_at(&secret, chrono::Utc::now()).expect("a code");
    submit_code(browser, &totp).await;
    browser.wait_for_text("Vos codes de secours").await;
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

/// Types `counts` (hopital, ehpad, esms, domicile, autre) into the form.
async fn type_counts(browser: &Session, counts: [&str; 5]) {
    for (key, value) in ["hopital", "ehpad", "esms", "domicile", "autre"]
        .into_iter()
        .zip(counts)
    {
        let input = browser.find(&format!("#n-{key}")).await;
        browser.clear(&input).await;
        browser.type_into(&input, value).await;
    }
}

/// Cuts the page's network, or gives it back (the DevTools protocol).
async fn network(browser: &Session, online: bool) {
    browser.devtools("Network.enable", json!({})).await;
    browser
        .devtools(
            "Network.emulateNetworkConditions",
            json!({"offline": !online, "latency": 0,
                   "downloadThroughput": -1, "uploadThroughput": -1}),
        )
        .await;
}

/// How many versions Vannes' 1 April has, by the API.
async fn versions_of_1_april(app: &TestApp, code: &str) -> usize {
    let answer = app
        .get("/api/v1/reports/56260/2020-04-01/history", Some(code))
        .await;
    if answer.status == reqwest::StatusCode::NOT_FOUND {
        return 0;
    }
    answer.json()["versions"].as_array().map_or(0, Vec::len)
}

/// A phone that reaches the app through a relay the test cuts, logged in
/// with `code` on the form of 1 April, its service worker running and its
/// copy of the form kept.
async fn phone_on_the_form(
    app: &TestApp,
    code: &str,
) -> (decompte_tests::cut::Relay, ChromeDriver, Session) {
    let relay = decompte_tests::cut::Relay::start(
        app.base
            .trim_start_matches("http://")
            .parse()
            .expect("the app's address"),
    )
    .await;
    let driver = ChromeDriver::start().await;
    let browser = driver.session(true).await;
    browser.goto(&relay.url("/connexion")).await;
    submit_code(&browser, code).await;
    browser.wait_for_text("Se déconnecter").await;
    browser.goto(&relay.url("/saisie?date=2020-04-01")).await;
    let kept = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const check = (n) => navigator.serviceWorker.ready
               .then(() => caches.open('decompte-formulaire-v1'))
               .then((c) => c.match('/saisie'))
               .then((page) => page && navigator.serviceWorker.controller
                 ? done(true)
                 : n > 0 ? setTimeout(() => check(n - 1), 100) : done(false));
             check(100);",
        )
        .await;
    assert_eq!(
        kept,
        json!(true),
        "no service worker, or no copy of the form"
    );
    (relay, driver, browser)
}

/// Cuts the network, types `counts` and saves: the declaration waits.
async fn declare_offline(
    browser: &Session,
    relay: &decompte_tests::cut::Relay,
    counts: [&str; 5],
) -> String {
    relay.set_up(false);
    network(browser, false).await;
    type_counts(browser, counts).await;
    let save = browser
        .find("form[action='/saisie'][method=post] button[type=submit]")
        .await;
    browser.click(&save).await;
    browser.wait_for_text("En attente d'envoi (1)").await
}

/// A mayor in a basement: the form typed without network is kept on the
/// phone « en attente d'envoi », survives a reload without network (the
/// service worker's copy of the form), and is sent when the network comes
/// back, with the idempotency key chosen when it was typed: sent again, it
/// is saved once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declaration_typed_offline_is_sent_when_the_network_is_back() {
    let app = TestApp::start().await;
    let code = app.issue(Role::Commune, Some("56260")).await;
    // The phone reaches the app through a relay the test cuts.
    let (relay, _driver, browser) = phone_on_the_form(&app, &code).await;
    let page = declare_offline(&browser, &relay, ["1", "0", "0", "1", "0"]).await;
    assert!(page.contains("jour du 01/04/2020"), "{page}");
    assert_eq!(versions_of_1_april(&app, &code).await, 0);

    // A reload without network: the phone's copy, the declaration still waiting.
    browser.goto(&relay.url("/saisie?date=2020-04-01")).await;
    browser
        .wait_for_text("ce formulaire est la copie gardée sur ce téléphone")
        .await;
    browser.wait_for_text("En attente d'envoi (1)").await;
    let waiting = browser
        .execute_async(
            "arguments[arguments.length - 1](localStorage.getItem('decompte.en-attente'))",
        )
        .await;
    let waiting = waiting.as_str().unwrap_or_default().to_owned();
    assert!(waiting.contains("\"submission\""), "{waiting}");

    // The network is back: sent, confirmed, saved once.
    relay.set_up(true);
    network(&browser, true).await;
    browser.wait_for_text("Déclaration enregistrée").await;
    assert!(browser.url().await.contains("enregistre=1"));
    assert_eq!(versions_of_1_april(&app, &code).await, 1);

    // The same typed declaration sent a second time (a retry whose answer
    // was lost): the same confirmation, still one version.
    let script = format!(
        "localStorage.setItem('decompte.en-attente', {});
         window.dispatchEvent(new Event('online'));
         arguments[arguments.length - 1](true);",
        serde_json::to_string(&waiting).expect("json")
    );
    browser.execute_async(&script).await;
    browser.wait_for_text("Déclaration enregistrée").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(versions_of_1_april(&app, &code).await, 1);
    let left = browser
        .execute_async(
            "arguments[arguments.length - 1](localStorage.getItem('decompte.en-attente'))",
        )
        .await;
    assert_eq!(left, json!("[]"), "nothing left waiting");
    browser.quit().await;
}

/// A mairie's shared computer: a declaration kept offline belongs to the
/// code that typed it. « Se déconnecter » says it is waiting and offers to
/// send or discard it; another code logged in next never sends it (it is
/// listed as another code's); the code that typed it sends it when it logs
/// in again; and the phone's copy of the form goes at logout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_code_typed_offline_is_sent_by_that_code_only() {
    let app = TestApp::start().await;
    let vannes = app.issue(Role::Commune, Some("56260")).await;
    let lorient = app.issue(Role::Commune, Some("56121")).await;
    let (relay, _driver, browser) = phone_on_the_form(&app, &vannes).await;
    declare_offline(&browser, &relay, ["2", "0", "0", "0", "0"]).await;

    // « Se déconnecter » while it waits: said, and nothing else happens.
    let logout = browser
        .find("form[action='/deconnexion'] button[type=submit]")
        .await;
    browser.click(&logout).await;
    browser
        .wait_for_text("1 déclaration en attente d'envoi")
        .await;
    browser
        .wait_for_text("L'abandonner et me déconnecter")
        .await;
    assert!(browser.url().await.contains("/saisie"));

    // Vannes' session ends without a logout (the computer left as it is);
    // the network comes back; Lorient logs in on the same computer.
    browser
        .devtools("Network.clearBrowserCookies", json!({}))
        .await;
    relay.set_up(true);
    network(&browser, true).await;
    browser.goto(&relay.url("/connexion")).await;
    // The login page says it waits for the code that typed it, whoever logs in.
    browser
        .wait_for_text("quand le code d'accès qui l'a saisie se reconnectera ici")
        .await;
    submit_code(&browser, &lorient).await;
    // The login page says it too: wait for the form's page.
    browser.wait_for_path("/saisie").await;
    let page = browser
        .wait_for_text("avec un autre code d'accès attend le réseau")
        .await;
    assert!(!page.contains("En attente d'envoi (1)"), "{page}");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(
        versions_of_1_april(&app, &vannes).await,
        0,
        "sent under Lorient"
    );
    let lorient_days = app
        .get("/api/v1/reports/56121/2020-04-01/history", Some(&lorient))
        .await;
    if lorient_days.status != reqwest::StatusCode::NOT_FOUND {
        assert_eq!(
            lorient_days.json()["versions"]
                .as_array()
                .map_or(0, Vec::len),
            0,
            "Lorient saved something: {}",
            lorient_days.text
        );
    }

    // Lorient logs out (nothing of its own waits): the form's copy goes.
    let logout = browser
        .find("form[action='/deconnexion'] button[type=submit]")
        .await;
    browser.click(&logout).await;
    browser.wait_for_text("Code d'accès").await;
    let copy = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             caches.has('decompte-formulaire-v1').then(done);",
        )
        .await;
    assert_eq!(copy, json!(false), "the form's copy outlived the logout");

    // Vannes again: its declaration goes, under its own code, once.
    submit_code(&browser, &vannes).await;
    browser.wait_for_text("Déclaration enregistrée").await;
    assert_eq!(versions_of_1_april(&app, &vannes).await, 1);
    let left = browser
        .execute_async(
            "arguments[arguments.length - 1](localStorage.getItem('decompte.en-attente'))",
        )
        .await;
    assert_eq!(left, json!("[]"), "nothing left waiting");
    browser.quit().await;
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

/// What is wrong with the page on a phone: content wider than the screen
/// (the page scrolls sideways), a table wider than its box (its figures
/// behind a sideways scroll inside the table) or a cell wider than itself,
/// chart text drawn smaller than 12 pixels. Folded sections are opened
/// first, so that their tables are measured too.
async fn phone_problems(browser: &Session) -> Vec<String> {
    let found = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const problems = [];
             const root = document.documentElement;
             if (root.scrollWidth > root.clientWidth) {
               problems.push('the page is ' + root.scrollWidth + ' px wide on a screen of '
                 + root.clientWidth + ' px');
             }
             for (const folded of document.querySelectorAll('details')) folded.open = true;
             for (const table of document.querySelectorAll('table')) {
               const name = (table.caption ? table.caption.textContent : table.textContent)
                 .trim().slice(0, 60);
               const box = (table.closest('.table-wrap') || table.parentElement)
                 .getBoundingClientRect();
               const drawn = table.getBoundingClientRect();
               if (drawn.right > box.right + 1 || table.scrollWidth > table.clientWidth + 1) {
                 problems.push('table of ' + Math.round(Math.max(drawn.width, table.scrollWidth))
                   + ' px in a box of ' + Math.round(box.width) + ' px: ' + name);
               }
               for (const cell of table.querySelectorAll('td, th')) {
                 if (cell.getClientRects().length && cell.scrollWidth > cell.clientWidth + 1) {
                   problems.push('a cell of ' + cell.scrollWidth + ' px shown in '
                     + cell.clientWidth + ' px: ' + cell.textContent.trim().slice(0, 40));
                   break;
                 }
               }
             }
             for (const text of document.querySelectorAll('svg text')) {
               if (!text.getClientRects().length || !text.textContent.trim()) continue;
               const ctm = text.getScreenCTM();
               const scale = ctm ? Math.hypot(ctm.a, ctm.b) : 1;
               const size = parseFloat(getComputedStyle(text).fontSize) * scale;
               if (size < 11.95) {
                 problems.push('chart text of ' + size.toFixed(1) + ' px: ' + text.textContent);
               }
             }
             done(problems);",
        )
        .await;
    found
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Checks the page open in `browser` at its width; on a phone, also its width
/// and its charts' text.
async fn page_problems(browser: &Session, label: &str, phone: bool) -> Vec<String> {
    let mut problems = axe_violations(browser).await;
    if phone {
        problems.extend(phone_problems(browser).await);
    }
    problems
        .into_iter()
        .map(|p| format!("{label}: {p}"))
        .collect()
}

/// The narrowest screen the RGAA asks for (criterion 10.11), and 640 pixels
/// at a zoom of 200 % (10.4).
const NARROWEST: u32 = 320;
const PHONE: u32 = 360;
const SCREEN: u32 = 1280;

/// Keeps a screenshot of the page for a reviewer, in `target/screenshots/`.
async fn keep_screenshot(browser: &Session, name: &str) {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&folder).expect("screenshot folder");
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    std::fs::write(folder.join(format!("{name}.png")), png).expect("write screenshot");
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
    // Ten weeks of Vannes, a day in three missing: its page has recent
    // weeks, older months and days without a declaration.
    let start = chrono::NaiveDate::from_ymd_opt(2020, 3, 1).expect("date");
    for day in (0..70).filter(|d| d % 3 != 1) {
        let date = start + chrono::Duration::days(day);
        if date == chrono::NaiveDate::from_ymd_opt(2020, 4, 1).expect("date") {
            continue;
        }
        decompte_tests::write_day(&app, "56260", date, u32::try_from(day % 4).unwrap_or(0)).await;
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
    for width in [NARROWEST, PHONE, SCREEN] {
        browser.viewport(width, 900).await;
        for path in public {
            browser.goto(&app.url(path)).await;
            let label = format!("{path} at {width} px");
            problems.extend(page_problems(&browser, &label, width <= PHONE).await);
            if width == PHONE && ["/index.html", "/communes/56260.html"].contains(&path) {
                let name = if path == "/index.html" {
                    "vue-d-ensemble"
                } else {
                    "commune"
                };
                keep_screenshot(&browser, &format!("{name}-{PHONE}")).await;
            }
        }
    }
    browser.viewport(PHONE, 900).await;
    // The first login of a prefecture code: the enrolment of its second
    // factor (QR code), then the recovery codes.
    let (credential, fresh) = decompte_app::auth::issue_credential(
        app.store().as_ref(),
        decompte_core::issuance::Issue::new(Role::Prefecture, None, "Cellule de crise"),
        None,
        chrono::Utc::now(),
    )
    .await
    .expect("issue");
    browser.goto(&app.url("/connexion")).await;
    submit_code(&browser, &fresh.display_grouped()).await;
    browser.wait_for_text("code QR").await;
    problems.extend(page_problems(&browser, "enrolment", true).await);
    complete_enrolment(&browser, &app, &credential.id).await;
    problems.extend(page_problems(&browser, "recovery codes", true).await);
    for width in [NARROWEST, PHONE, SCREEN] {
        browser.viewport(width, 900).await;
        for path in [
            "/prefecture?date=2020-04-01",
            "/saisie?commune=56260&date=2020-04-01",
            "/prefecture/codes",
            "/prefecture/saisie-groupee?date=2020-04-03",
            "/prefecture/signaux?date=2020-04-10",
            "/prefecture/spf",
            "/prefecture/point?date=2020-04-10",
            "/prefecture/contacts",
            "/prefecture/signaux?date=2020-04-10",
            "/plan",
        ] {
            browser.goto(&app.url(path)).await;
            let label = format!("{path} at {width} px");
            problems.extend(page_problems(&browser, &label, width <= PHONE).await);
            let kept = [
                ("/saisie?", "formulaire"),
                ("/prefecture?", "prefecture"),
                ("/prefecture/codes", "codes"),
                ("/prefecture/saisie-groupee", "saisie-groupee"),
            ];
            if let Some((_, name)) = kept.iter().find(|(p, _)| path.starts_with(p)) {
                if width == PHONE {
                    keep_screenshot(&browser, &format!("{name}-{PHONE}")).await;
                }
            }
        }
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
    // So can the phone's: a page wider than the screen, text of 8 pixels, a
    // table that does not fit its box.
    browser.viewport(PHONE, 900).await;
    browser
        .goto(
            "data:text/html,<!doctype html><html lang=fr><meta name=viewport \
        content='width=device-width'><title>t</title><main><div style='width:500px'>x</div><svg viewBox='0 0 100 10' width='100'><text y='9' \
        font-size='8'>petit</text></svg><div style='width:300px;overflow:auto'><table><caption>large</caption><tr><td \
        style='white-space:nowrap'>un tableau plus large que sa boite sur une seule ligne</td></tr></table></div></main></html>",
        )
        .await;
    let caught = phone_problems(&browser).await;
    assert_eq!(caught.len(), 3, "{caught:?}");
    assert!(
        caught
            .iter()
            .any(|p| p.starts_with("table of ") && p.ends_with(": large")),
        "{caught:?}"
    );
    browser.quit().await;
    assert!(
        problems.is_empty(),
        "accessibility violations:\n{}",
        problems.join("\n")
    );
}

/// What the page open in `browser` cost to load: bytes over the network for
/// the page and everything it fetched (compressed as sent, headers
/// included; 0 for what came from the cache), and the fonts fetched.
async fn transferred(browser: &Session) -> (u64, Vec<String>) {
    let found = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             // Once the fonts the page uses are loaded.
             document.fonts.ready.then(() => {
               const entries = performance.getEntriesByType('navigation')
                 .concat(performance.getEntriesByType('resource'));
               done([entries.reduce((n, e) => n + e.transferSize, 0),
                     entries.map(e => e.name).filter(n => n.endsWith('.woff2'))]);
             });",
        )
        .await;
    let bytes = found[0].as_u64().expect("a byte count");
    let fonts = found[1]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    (bytes, fonts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commune_page_is_light_on_a_first_visit_and_lighter_after() {
    let app = TestApp::start().await;
    let start = chrono::NaiveDate::from_ymd_opt(2020, 3, 1).expect("date");
    for commune in ["56260", "56121"] {
        for day in 0..60 {
            let date = start + chrono::Duration::days(day);
            decompte_tests::write_day(&app, commune, date, u32::try_from(day % 3).unwrap_or(0))
                .await;
        }
    }
    app.publish().await;
    let driver = ChromeDriver::start().await;
    let browser = driver.session(false).await;
    browser.viewport(PHONE, 900).await;
    browser.goto(&app.url("/communes/56260.html")).await;
    let (first, fonts) = transferred(&browser).await;
    browser.goto(&app.url("/communes/56121.html")).await;
    let (second, _) = transferred(&browser).await;
    browser.quit().await;
    println!(
        "a commune page at {PHONE} px: first visit {first} bytes ({} fonts: {fonts:?}), \
         next page {second} bytes",
        fonts.len()
    );
    assert!(
        fonts.iter().any(|f| f.contains("Marianne")),
        "the State's typeface is served by the site: {fonts:?}"
    );
    assert!(first < 300_000, "a first visit of {first} bytes");
    assert!(second < 20_000, "a second page of {second} bytes");

    // A deployment that is not a State service: the same layout, without
    // the brand or the typeface.
    let neutral = TestApp::start_with(|options| options.theme = "neutre".into()).await;
    neutral.publish().await;
    let page = neutral.site_file("index.html");
    assert!(
        !page.contains("fr-logo"),
        "the State's brand on a neutral site"
    );
    assert!(page.contains("class=\"neutre\""));
    let browser = driver.session(false).await;
    browser.goto(&neutral.url("/index.html")).await;
    let (_, fonts) = transferred(&browser).await;
    assert!(fonts.is_empty(), "a neutral site fetched {fonts:?}");
    browser.quit().await;
}

/// The session's idle limit is announced before it ends, with a button that
/// keeps it, and its end is said (RGAA 13.1). The limit is shortened in the
/// page (its data-idle-seconds, read again when the page gets the focus) so
/// that the test does not wait two hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_an_idle_session_is_announced_and_can_be_put_off() {
    let app = TestApp::start().await;
    let mayor = app.issue(Role::Commune, Some("56260")).await;
    let driver = ChromeDriver::start().await;
    let browser = driver.session(true).await;
    log_in(&browser, &app, &mayor).await;
    browser.goto(&app.url("/saisie")).await;
    browser.wait_for_text("Nombre de décès").await;
    let idle = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             done(document.documentElement.getAttribute('data-idle-seconds'));",
        )
        .await;
    assert_eq!(idle, serde_json::json!("7200"), "a mairie's idle limit");
    // Two seconds before the warning, six before the end.
    let shorten = |idle: u32, warn: u32| {
        format!(
            "const done = arguments[arguments.length - 1];
             const root = document.documentElement;
             root.setAttribute('data-idle-seconds', String(Math.ceil(performance.now() / 1000) + {idle}));
             root.setAttribute('data-warn-seconds', '{warn}');
             window.dispatchEvent(new Event('focus'));
             done(true);"
        )
    };
    browser.execute_async(&shorten(6, 4)).await;
    browser
        .wait_for_text("votre session se terminera dans")
        .await;
    let stay = browser.find(".session-alert button").await;
    browser.click(&stay).await;
    let gone = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const start = Date.now();
             (function look() {
               if (!document.querySelector('.session-alert')) return done(true);
               if (Date.now() - start > 5000) return done(false);
               setTimeout(look, 50);
             })();",
        )
        .await;
    assert_eq!(
        gone,
        serde_json::json!(true),
        "the warning stays after « Rester connecté »"
    );
    // Kept by the server: the page still opens.
    browser.goto(&app.url("/saisie")).await;
    browser.wait_for_text("Nombre de décès").await;
    browser.execute_async(&shorten(1, 1)).await;
    browser
        .wait_for_text("Votre session s'est terminée faute d'activité.")
        .await;
    browser.quit().await;
}

/// Lighthouse's mobile profile (a mid-range phone on a slow 4G, simulated)
/// on a commune page, the overview and the form a mairie fills: performance
/// at least 0.95 (nothing render-blocking that a first visit does not need,
/// no layout shift from the fonts or the map) and accessibility 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lighthouse_finds_the_pages_light_and_accessible() {
    const ENOUGH: f64 = 0.95;
    let app = TestApp::start().await;
    let start = chrono::NaiveDate::from_ymd_opt(2020, 3, 1).expect("date");
    for commune in ["56260", "56121", "56178"] {
        for day in 0..45 {
            let date = start + chrono::Duration::days(day);
            decompte_tests::write_day(&app, commune, date, u32::try_from(day % 4).unwrap_or(0))
                .await;
        }
    }
    app.publish().await;
    let mayor = app.issue(Role::Commune, Some("56260")).await;
    let mut signed_in = decompte_tests::Browser::new(&app);
    let answer = signed_in.login(&mayor).await;
    assert!(answer.status.is_success() || answer.status.is_redirection());
    let cookie = signed_in.cookie_header();
    let pages = [
        ("/communes/56260.html", None),
        ("/index.html", None),
        (
            "/saisie?commune=56260&date=2020-04-01",
            Some(cookie.as_str()),
        ),
    ];
    let mut short = Vec::new();
    for (path, cookie) in pages {
        let url = app.url(path);
        let cookie = cookie.map(str::to_owned);
        let audit = tokio::task::spawn_blocking(move || {
            decompte_tests::lighthouse::audit_median(&url, cookie.as_deref(), ENOUGH)
        })
        .await
        .expect("Lighthouse's thread");
        println!(
            "Lighthouse {path}: performance {}, accessibility {} ({})",
            audit.performance, audit.accessibility, audit.figures
        );
        if audit.performance < ENOUGH || audit.accessibility < 1.0 {
            short.push(format!(
                "{path}: performance {}, accessibility {} {:?} ({})",
                audit.performance, audit.accessibility, audit.failed, audit.figures
            ));
        }
    }
    assert!(short.is_empty(), "Lighthouse:\n{}", short.join("\n"));
}

/// Signs in at the OpenID provider's login page as `login` (its
/// development page: the login is the account, `sub|address` or the
/// address) with `password` (ending in `+otp`: a second factor shown),
/// consents when asked, and waits for `expected` back in decompte.
async fn sign_in_with_proconnect(
    browser: &Session,
    app: &TestApp,
    login: &str,
    password: &str,
    expected: &str,
) -> String {
    browser.goto(&app.url("/connexion")).await;
    let button = browser.find("a[href='/connexion/proconnect']").await;
    browser.click(&button).await;
    browser.wait_for_text("name=\"login\"").await;
    let field = browser.find("input[name=login]").await;
    browser.type_into(&field, login).await;
    let field = browser.find("input[name=password]").await;
    browser.type_into(&field, password).await;
    let submit = browser.find("button[type=submit]").await;
    browser.click(&submit).await;
    for _ in 0..100 {
        let page = browser.source().await;
        if page.contains(expected) {
            return page;
        }
        // The consent page: « Continue ».
        if page.contains("name=\"prompt\" value=\"consent\"") {
            let button = browser.find("button[type=submit]").await;
            browser.click(&button).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    browser.wait_for_text(expected).await
}

/// A State agent signs in with ProConnect (a real OpenID provider on
/// loopback: code flow with PKCE, state and nonce): the first time makes
/// its credential, a prefecture of the départements its domain reaches,
/// named by the provider's `sub`; a password alone at the provider means
/// decompte's own second factor, a second factor there goes straight in;
/// the reach follows the rules at every sign-in, and what the agent issued
/// beyond it is revoked; an address the provider did not verify, an agent
/// no rule names, a revoked agent are refused in French; logging out ends
/// the provider's session too; forged callbacks open nothing and are
/// throttled like logins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_agent_signs_in_with_proconnect() {
    use decompte_tests::oidc_provider::{OidcProvider, CLIENT_ID, CLIENT_SECRET};
    let port = OidcProvider::port();
    let issuer = format!("http://127.0.0.1:{port}");
    let app = TestApp::start_with(|options| {
        options.oidc_issuer = Some(issuer.clone());
        options.oidc_client_id = Some(CLIENT_ID.into());
        options.oidc_client_secret = CLIENT_SECRET.parse().ok();
        options.oidc_agents = vec!["morbihan.gouv.fr=56".into()];
    })
    .await;
    let _provider = OidcProvider::start(port, &app.url("/connexion/proconnect/retour"));
    let driver = ChromeDriver::start().await;
    let camille = "camille.agent@morbihan.gouv.fr";
    let camille_id = decompte_app::oidc::agent_id(&issuer, camille);

    // Before its first sign-in here, the agent's credential reached
    // Finistère too (a rule since narrowed), and issued a code there and
    // one in Morbihan.
    let now = chrono::Utc::now();
    let store = app.store();
    store
        .insert_credential(&decompte_store::Credential {
            id: camille_id.clone(),
            role: Role::Prefecture,
            commune: None,
            departements: vec!["29".into(), "56".into()],
            label: format!("Camille Agent ({camille}, ProConnect)"),
            code_hash: "nobody-knows".into(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
            issued_by: Some("ProConnect".into()),
            expires_at: None,
            second_factor: None,
        })
        .await
        .expect("agent");
    let mut issued = Vec::new();
    for commune in ["29019", "56260"] {
        let new = decompte_core::issuance::Issue::new(
            Role::Commune,
            Some(CommuneCode::parse(commune).expect("code")),
            commune,
        );
        let issued_by = Some(camille_id.as_str());
        let (credential, _) =
            decompte_app::auth::issue_credential(store.as_ref(), new, issued_by, now)
                .await
                .expect("issue");
        issued.push(credential.id);
    }

    // A password alone at the provider: decompte's own second factor.
    let browser = driver.session(false).await;
    sign_in_with_proconnect(&browser, &app, camille, "mot-de-passe", "code QR").await;
    complete_enrolment(&browser, &app, &camille_id).await;
    browser.goto(&app.url("/prefecture")).await;
    // The prefecture page (its heading; the list below it reads « en retard » after the cut-off hour).
    browser.wait_for_text("Suivi des déclarations").await;
    let agent = store
        .credential(&camille_id)
        .await
        .expect("read")
        .expect("the agent");
    assert_eq!(agent.departements, ["56"], "the reach follows the rules");
    assert_eq!(agent.role, Role::Prefecture);
    let finistere = store
        .credential(&issued[0])
        .await
        .expect("read")
        .expect("code");
    let morbihan = store
        .credential(&issued[1])
        .await
        .expect("read")
        .expect("code");
    assert!(
        finistere.revoked_at.is_some(),
        "a code beyond the agent's reach"
    );
    assert!(morbihan.revoked_at.is_none(), "a code within it");

    // « Se déconnecter » ends the provider's session too.
    let logout = browser.find("form[action='/deconnexion'] button").await;
    browser.click(&logout).await;
    for _ in 0..100 {
        if browser.url().await.starts_with(&issuer) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let at_provider = browser.url().await;
    assert!(
        at_provider.starts_with(&format!("{issuer}/session/end")),
        "{at_provider}"
    );
    browser.quit().await;

    // A second factor at the provider: straight in. Another account with
    // the same address (a mailbox given to someone else) is another agent.
    let other = driver.session(false).await;
    sign_in_with_proconnect(
        &other,
        &app,
        &format!("autre|{camille}"),
        "mot-de-passe+otp",
        "Se déconnecter",
    )
    .await;
    other.wait_for_text("Suivi des déclarations").await;
    let agents: Vec<decompte_store::Credential> = store
        .credentials()
        .await
        .expect("credentials")
        .into_iter()
        .filter(|c| c.id.starts_with("proconnect-"))
        .collect();
    assert_eq!(agents.len(), 2, "{agents:?}");
    let newcomer = agents
        .iter()
        .find(|c| c.id == decompte_app::oidc::agent_id(&issuer, &format!("autre|{camille}")))
        .expect("the other account's credential");
    assert_eq!(
        newcomer.label,
        format!("Camille Agent ({camille}, ProConnect)")
    );
    assert!(
        newcomer.second_factor.is_none(),
        "no second factor of ours asked"
    );
    other.quit().await;

    // Refused: an address the provider did not verify, another domain
    // (nothing made for either).
    for (login, refusal) in [
        ("nonverifie@morbihan.gouv.fr", "pas vérifié votre adresse"),
        ("x@exemple.fr", "x@exemple.fr n'a pas accès"),
    ] {
        let browser = driver.session(false).await;
        let page =
            sign_in_with_proconnect(&browser, &app, login, "mot-de-passe+otp", refusal).await;
        assert!(!page.contains("Se déconnecter"), "{page}");
        browser.quit().await;
    }
    assert_eq!(
        store
            .credentials()
            .await
            .expect("credentials")
            .iter()
            .filter(|c| c.id.starts_with("proconnect-"))
            .count(),
        2
    );

    // Revoked by the prefecture: refused at the next sign-in.
    store
        .revoke_credential(&camille_id, chrono::Utc::now())
        .await
        .expect("revoke");
    let again = driver.session(false).await;
    sign_in_with_proconnect(
        &again,
        &app,
        camille,
        "mot-de-passe+otp",
        "Votre accès a été retiré",
    )
    .await;
    again.quit().await;

    // A callback that did not start in this browser opens nothing; past
    // the login limit, the next is throttled before any request to the
    // provider.
    let forged = app
        .get("/connexion/proconnect/retour?code=abc&state=forged", None)
        .await;
    assert_eq!(forged.status, reqwest::StatusCode::BAD_REQUEST);
    assert!(
        forged.text.contains("Cette connexion a expiré"),
        "{}",
        forged.text
    );
    let mut last = forged.status;
    for _ in 0..decompte_config::defaults::LOGIN_FAILURES {
        last = app
            .get("/connexion/proconnect/retour?code=abc&state=forged", None)
            .await
            .status;
    }
    assert_eq!(last, reqwest::StatusCode::TOO_MANY_REQUESTS);
}
