//! The prefecture's and the ministry's second factor (TOTP), and the life of
//! their codes: who issued them, when they end, and revocation of what a
//! revoked code issued (issue « Hardening », item 5).

use chrono::{Duration, Utc};
use decompte_app::auth::issue_credential;
use decompte_app::second_factor::{code_at, recovery_hash};
use decompte_core::issuance::Issue;
use decompte_core::Role;
use decompte_tests::{csrf_of, Browser, TestApp};
use reqwest::StatusCode;

/// A prefecture code without a second factor yet; returns (id, code).
async fn fresh_prefecture(app: &TestApp) -> (String, String) {
    let (credential, code) = issue_credential(
        app.store().as_ref(),
        Issue::new(Role::Prefecture, None, "Cellule de crise"),
        None,
        Utc::now(),
    )
    .await
    .expect("issue");
    (credential.id, code.display_grouped())
}

async fn secret_of(app: &TestApp, id: &str) -> String {
    app.store()
        .credential(id)
        .await
        .expect("read")
        .and_then(|c| c.second_factor)
        .expect("an enrolment begun")
        .secret
}

/// Posts the code typed on the second-factor page the browser is on.
async fn give(browser: &mut Browser, page: &str, code: &str) -> decompte_tests::Answer {
    let csrf = csrf_of(page);
    browser
        .post_form(
            "/connexion/verification",
            &[("csrf", &csrf), ("code", code)],
        )
        .await
}

/// Issues a code from the codes page; returns the page that shows it.
async fn issue(browser: &mut Browser, fields: &[(&str, &str)]) -> String {
    let page = browser.get("/prefecture/codes").await;
    let csrf = csrf_of(&page.text);
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    form.extend_from_slice(fields);
    let answer = browser.post_form("/prefecture/codes", &form).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    answer.text
}

async fn api_me(app: &TestApp, code: &str, totp: Option<&str>) -> decompte_tests::Answer {
    let mut request = app.client.get(app.url("/api/v1/me")).bearer_auth(code);
    if let Some(totp) = totp {
        request = request.header("x-totp", totp);
    }
    let response = request.send().await.expect("GET /api/v1/me");
    let status = response.status();
    let headers = response.headers().clone();
    decompte_tests::Answer {
        status,
        headers,
        text: response.text().await.expect("body"),
    }
}

/// First login: the QR code, a first code, ten recovery codes. Then every
/// login asks for the six digits (once each) or a recovery code (once each);
/// the API asks for them in `X-TOTP`; a mairie still logs in with its code alone.
async fn the_prefecture_enrols_and_gives_its_second_factor_at_every_login(app: TestApp) {
    let (id, code) = fresh_prefecture(&app).await;

    // The access code alone opens nothing, through the pages or the API.
    let mut cell = Browser::new(&app);
    let page = cell.login_code_only(&code).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains("Double authentification"),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("<svg role=\"img\""),
        "a QR code: {}",
        page.text
    );
    assert!(!cell.cookies.contains_key("decompte_session"));
    let pending = cell
        .cookies
        .get("decompte_verification")
        .cloned()
        .expect("a pending login");
    assert_eq!(cell.get("/prefecture").await.location(), "/connexion");
    // Nor is the pending login's id a session id.
    let mut forger = Browser::new(&app);
    forger.cookies.insert("decompte_session".into(), pending);
    assert_eq!(forger.get("/prefecture").await.location(), "/connexion");
    let refused = api_me(&app, &code, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert!(
        refused.text.contains("second_factor_required"),
        "{}",
        refused.text
    );

    // A wrong first code enrols nothing; the right one does.
    let secret = secret_of(&app, &id).await;
    assert!(page
        .text
        .contains(&decompte_app::second_factor::grouped(&secret)));
    let wrong = give(&mut cell, &page.text, "000000").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text);
    assert!(
        wrong.text.contains("Ce code ne correspond pas"),
        "{}",
        wrong.text
    );
    let now = Utc::now();
    let first = code_at(&secret, now).expect("a code");
    let enrolled = give(&mut cell, &wrong.text, &first).await;
    assert_eq!(enrolled.status, StatusCode::OK, "{}", enrolled.text);
    assert!(
        enrolled.text.contains("Vos codes de secours"),
        "{}",
        enrolled.text
    );
    let recovery: Vec<String> = enrolled
        .text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("<li>")?
                .strip_suffix("</li>")
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(recovery.len(), 10, "{}", enrolled.text);
    assert_eq!(cell.get("/prefecture").await.status, StatusCode::OK);
    let stored = app
        .store()
        .credential(&id)
        .await
        .expect("read")
        .expect("credential");
    let factor = stored.second_factor.expect("a second factor");
    assert!(factor.confirmed_at.is_some());
    assert_eq!(
        factor.recovery_hashes.len(),
        10,
        "only the hashes of the recovery codes are kept"
    );
    assert!(!factor.recovery_hashes.iter().any(|h| recovery.contains(h)));

    // The next login: the same code again is refused (seen once), a recovery
    // code works once.
    let mut again = Browser::new(&app);
    let page = again.login_code_only(&code).await;
    assert!(
        !page.text.contains("<svg role=\"img\""),
        "no QR code once enrolled"
    );
    let replay = give(&mut again, &page.text, &first).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text);
    assert!(replay.text.contains("déjà utilisé"), "{}", replay.text);
    let sloppy = recovery[3].to_lowercase().replace('-', " ");
    let recovered = give(&mut again, &replay.text, &sloppy).await;
    assert_eq!(
        recovered.status,
        StatusCode::SEE_OTHER,
        "{}",
        recovered.text
    );
    assert_eq!(recovered.location(), "/prefecture");
    let mut thief = Browser::new(&app);
    let page = thief.login_code_only(&code).await;
    let reused = give(&mut thief, &page.text, &recovery[3]).await;
    assert_eq!(
        reused.status,
        StatusCode::UNAUTHORIZED,
        "a recovery code is good once"
    );
    let left = app
        .store()
        .credential(&id)
        .await
        .expect("read")
        .expect("credential");
    assert_eq!(left.second_factor.map(|f| f.recovery_left()), Some(9));
    assert!(recovery_hash(&recovery[3]).is_some());

    // The API: the six digits in X-TOTP, good through their 30 seconds.
    let now_code = code_at(&secret, Utc::now()).expect("a code");
    let me = api_me(&app, &code, Some(&now_code)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(
        api_me(&app, &code, Some(&now_code)).await.status,
        StatusCode::OK
    );
    let wrong = api_me(&app, &code, Some("123 456")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text);
    assert!(wrong.text.contains("X-TOTP"), "{}", wrong.text);

    // A mairie: one code, one step.
    let mayor = app.issue(Role::Commune, Some("56260")).await;
    let mut mairie = Browser::new(&app);
    let answer = mairie.login(&mayor).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/saisie");
}

on_every_store!(the_prefecture_enrols_and_gives_its_second_factor_at_every_login);

/// Six digits are a million guesses: wrong ones are counted per code and,
/// past ten in the window, answered 429 (the right code too, then: the
/// holder waits; nobody else is slowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_second_factor_codes_are_throttled() {
    let app = TestApp::start().await;
    let code = app.issue(Role::Prefecture, None).await;
    let mut browser = Browser::new(&app);
    let mut page = browser.login_code_only(&code).await;
    let mut statuses = Vec::new();
    for guess in 0..12 {
        let answer = give(&mut browser, &page.text, &format!("{:06}", 100_000 + guess)).await;
        statuses.push(answer.status.as_u16());
        if answer.status == StatusCode::UNAUTHORIZED {
            page = answer;
        }
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429; 2], "{statuses:?}");
    // During the lockout no code is checked: the right one opens nothing,
    // neither on the page nor through the API.
    let right = decompte_tests::second_factor_now(&code, 0).expect("a supervisor's code");
    let answer = give(&mut browser, &page.text, &right).await;
    assert_eq!(
        answer.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        answer.text
    );
    assert!(answer.headers.contains_key("retry-after"));
    assert_eq!(
        browser.get("/prefecture").await.status,
        StatusCode::SEE_OTHER,
        "the right code during the lockout opened a session"
    );
    let api = api_me(&app, &code, Some(&right)).await;
    assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS, "{}", api.text);
    assert!(api.headers.contains_key("retry-after"));
    let api = api_me(&app, &code, Some("000000")).await;
    assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS, "{}", api.text);
}

/// A prefecture code issued from the app records its issuer and ends after
/// the configured lifetime; revoking a code can take what it issued with
/// it, and then only that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_know_their_issuer_expire_and_are_revoked_with_what_they_issued() {
    let app = TestApp::start_with(|options| options.supervisor_code_days = 30).await;
    let ministry = app.issue(Role::National, None).await;
    let mut national = Browser::new(&app);
    assert_eq!(national.login(&ministry).await.location(), "/prefecture");
    let ministry_id = app
        .store()
        .credentials()
        .await
        .expect("list")
        .into_iter()
        .find(|c| c.role == Role::National)
        .expect("the ministry")
        .id;

    // The ministry issues a prefecture code, which issues another one and a mairie's.
    let page = issue(
        &mut national,
        &[("role", "prefecture"), ("label", "Cellule A")],
    )
    .await;
    assert!(page.contains("Il est valable jusqu'au"), "{page}");
    let listed = app.store().credentials().await.expect("list");
    let cell_a = listed
        .iter()
        .find(|c| c.label == "Cellule A")
        .expect("issued")
        .clone();
    assert_eq!(cell_a.issued_by.as_deref(), Some(ministry_id.as_str()));
    let lifetime = cell_a.expires_at.expect("an end") - cell_a.created_at;
    assert_eq!(lifetime, Duration::days(30));

    // Cellule A enrols (its code is in the page) and issues two codes.
    let code_a = page
        .split("<strong>")
        .find_map(|s| {
            s.split("</strong>")
                .next()
                .filter(|t| t.starts_with("PREF"))
        })
        .expect("the code shown once")
        .to_owned();
    let mut cell = Browser::new(&app);
    let enrol = cell.login_code_only(&code_a).await;
    let secret = secret_of(&app, &cell_a.id).await;
    let done = give(
        &mut cell,
        &enrol.text,
        &code_at(&secret, Utc::now()).expect("code"),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    issue(&mut cell, &[("role", "prefecture"), ("label", "Cellule B")]).await;
    issue(&mut cell, &[("role", "commune"), ("commune", "56260")]).await;
    let listed = app.store().credentials().await.expect("list");
    let issued_by_a: Vec<_> = listed
        .iter()
        .filter(|c| c.issued_by.as_deref() == Some(cell_a.id.as_str()))
        .collect();
    assert_eq!(issued_by_a.len(), 2);
    let mairie = issued_by_a
        .iter()
        .find(|c| c.role == Role::Commune)
        .expect("mairie");
    assert_eq!(mairie.expires_at, None, "a mairie's code does not expire");

    // Past its end a code opens nothing.
    let expired = Issue {
        expires_at: Some(Utc::now() - Duration::seconds(1)),
        ..Issue::new(
            Role::Commune,
            decompte_core::CommuneCode::parse("56121").ok(),
            "old",
        )
    };
    let (_, old) = issue_credential(
        app.store().as_ref(),
        expired,
        None,
        Utc::now() - Duration::days(1),
    )
    .await
    .expect("issue");
    let old = old.display_grouped();
    assert_eq!(
        Browser::new(&app).login(&old).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/me", Some(&old)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Revoked with cascade, from the ministry: A, B and the mairie's code.
    let codes_page = national.get("/prefecture/codes").await;
    assert!(
        codes_page.text.contains("et les 2 code(s) qu'il a créés"),
        "{}",
        codes_page.text
    );
    let csrf = csrf_of(&codes_page.text);
    let revoked = national
        .post_form(
            &format!("/prefecture/codes/{}/revocation", cell_a.id),
            &[("csrf", &csrf), ("cascade", "oui")],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.text);
    let after = app.store().credentials().await.expect("list");
    let revoked_labels: Vec<&str> = after
        .iter()
        .filter(|c| c.revoked_at.is_some())
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(revoked_labels.len(), 3, "{revoked_labels:?}");
    assert!(after
        .iter()
        .any(|c| c.role == Role::National && c.revoked_at.is_none()));
    assert_eq!(cell.get("/prefecture").await.location(), "/connexion");
}
