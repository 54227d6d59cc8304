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

/// Slowloris: hundreds of connections that trickle their headers do not stop
/// a mairie from declaring, and each is cut off once its headers are late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_do_not_stop_a_declaration() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::start().await;
    let mayor = app.issue(Role::Commune, Some("56260")).await;
    // The same app behind `serve_with`, with a header timeout short enough for a test.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let limits = decompte::ServeLimits {
        header_timeout: std::time::Duration::from_secs(1),
        ..decompte::ServeLimits::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(decompte::serve_with(
        listener,
        app.app.router(),
        limits,
        async {
            let _ = stopped.await;
        },
    ));

    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        stream
            .write_all(b"POST /api/v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Lent: ")
            .await
            .expect("write");
        slow.push(stream);
    }
    let started = std::time::Instant::now();
    let answer = app
        .client
        .post(format!("http://{address}/api/v1/reports"))
        .bearer_auth(&mayor)
        .header("content-type", "application/json")
        .body(report_body("56260", "2020-04-01", [1, 0, 0, 0, 0]).to_string())
        .send()
        .await
        .expect("declare");
    assert_eq!(answer.status(), StatusCode::CREATED);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Each slow connection is closed by the server once its headers are late.
    for stream in &mut slow {
        let mut buffer = [0u8; 256];
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buffer))
                .await
                .expect("the server cuts a slow client off");
        assert!(
            matches!(read, Ok(0) | Err(_))
                || String::from_utf8_lossy(&buffer).starts_with("HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&buffer)
        );
    }
    let _ = stop.send(());
}

/// A session ends after inactivity: 30 minutes for the prefecture, two hours
/// for a mairie, besides its absolute eight hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_end_sooner_for_the_prefecture() {
    let app = TestApp::start().await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    let mayor = app.issue(Role::Commune, Some("56260")).await;
    let idle_for = |browser: &Browser, minutes: i64| {
        let id = browser
            .cookies
            .get("decompte_session")
            .expect("a session cookie")
            .clone();
        let store = app.store();
        async move {
            let hash = decompte_core::auth::hash_secret("session", &id);
            store
                .touch_session(
                    &hash,
                    chrono::Utc::now() - chrono::Duration::minutes(minutes),
                )
                .await
                .expect("touch");
        }
    };
    let mut cell = Browser::new(&app);
    cell.login(&prefecture).await;
    idle_for(&cell, 29).await;
    assert_eq!(cell.get("/prefecture").await.status, StatusCode::OK);
    idle_for(&cell, 31).await;
    let after = cell.get("/prefecture").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location(), "/connexion");

    let mut mairie = Browser::new(&app);
    mairie.login(&mayor).await;
    idle_for(&mairie, 31).await;
    assert_eq!(mairie.get("/saisie").await.status, StatusCode::OK);
    // What session.js asks when its reader wants to stay: the session is
    // kept while it lives, and said to have ended after.
    let kept = mairie.get("/connexion/session").await;
    assert_eq!(kept.status, StatusCode::NO_CONTENT);
    assert_eq!(
        kept.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    idle_for(&mairie, 121).await;
    assert_eq!(
        mairie.get("/connexion/session").await.status,
        StatusCode::UNAUTHORIZED
    );
    let after = mairie.get("/saisie").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location(), "/connexion");
}

/// The site is served with the headers defined once in
/// `decompte_publish::headers`; the app adds HSTS whenever its cookies are
/// Secure (an https public address).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_and_the_app_send_their_security_headers() {
    let app = TestApp::start().await;
    app.publish().await;
    let site = app.get("/index.html", None).await;
    assert_eq!(site.status, StatusCode::OK);
    for (name, value) in decompte_publish::headers::SECURITY {
        assert_eq!(
            site.headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name}"
        );
    }
    let login = app.get("/connexion", None).await;
    for name in [
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
    ] {
        assert!(login.headers.contains_key(name), "{name}");
    }
    // The app runs its own scripts only (the form's offline script and its
    // service worker), never an inline one.
    let csp = login.headers["content-security-policy"]
        .to_str()
        .unwrap_or_default();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("worker-src 'self';"), "{csp}");
    assert!(!csp.contains("script-src 'self' 'unsafe"), "{csp}");
    assert!(
        !login.headers.contains_key("strict-transport-security"),
        "no HSTS over plain-http loopback"
    );
    let behind_https = TestApp::start_with(|options| {
        options.public_url = Some("https://declarer.example.fr".into());
    })
    .await;
    let login = behind_https.get("/connexion", None).await;
    assert_eq!(
        login
            .headers
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000; includeSubDomains")
    );
}
