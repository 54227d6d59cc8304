//! The daily work of a mairie in the fewest steps (issue « Le travail
//! quotidien »): a day without deaths in one click, and a form sent twice
//! saved once; for the crisis cell, a cluster signalled.

use decompte_core::Role;
use decompte_tests::{csrf_of, hidden_field, issue_labelled_code, report_body, Browser, TestApp};
use reqwest::StatusCode;

/// The fields of the form as a mayor fills it in.
fn filled(page: &str, counts: [&str; 5]) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("csrf", csrf_of(page)),
        ("submission", hidden_field(page, "submission")),
        ("commune", "56260".to_owned()),
        ("date", "2020-04-01".to_owned()),
    ];
    for (key, count) in ["n_hopital", "n_ehpad", "n_esms", "n_domicile", "n_autre"]
        .into_iter()
        .zip(counts)
    {
        fields.push((key, count.to_owned()));
    }
    fields.push(("reason", String::new()));
    fields
}

fn borrowed<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn versions(app: &TestApp) -> Vec<u32> {
    let code = decompte_core::CommuneCode::parse("56260").expect("code");
    let day = chrono::NaiveDate::from_ymd_opt(2020, 4, 1).expect("day");
    app.store()
        .history(&code, day)
        .await
        .expect("history")
        .iter()
        .map(|r| r.version)
        .collect()
}

/// A double tap, or a retry after the answer was lost: the same form sent
/// again shows the same confirmation and writes nothing more — in sequence
/// and at the same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_sent_twice_is_saved_once() {
    let app = TestApp::start().await;
    let code = app.issue(Role::Commune, Some("56260")).await;
    let mut mayor = Browser::new(&app);
    mayor.login(&code).await;
    let page = mayor.get("/saisie?date=2020-04-01").await.text;
    let fields = filled(&page, ["1", "0", "0", "2", "0"]);
    let first = mayor.post_form("/saisie", &borrowed(&fields)).await;
    let again = mayor.post_form("/saisie", &borrowed(&fields)).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.text);
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.text);
    assert_eq!(again.location(), first.location());
    assert_eq!(versions(&app).await, [1]);
    let shown = mayor.get(&again.location()).await;
    assert!(
        shown.text.contains("Déclaration enregistrée"),
        "{}",
        shown.text
    );

    // A correction typed on the confirmation page, sent twice at once.
    let page = mayor.get("/saisie?date=2020-04-01").await.text;
    let mut fields = filled(&page, ["2", "0", "0", "2", "0"]);
    fields.push(("replaces_version", "1".to_owned()));
    let mut twin = Browser::at(app.client.clone(), app.url(""));
    twin.cookies = mayor.cookies.clone();
    let form = borrowed(&fields);
    let (one, two) = tokio::join!(
        mayor.post_form("/saisie", &form),
        twin.post_form("/saisie", &form)
    );
    assert_eq!(one.status, StatusCode::SEE_OTHER, "{}", one.text);
    assert_eq!(two.status, StatusCode::SEE_OTHER, "{}", two.text);
    assert_eq!(one.location(), two.location());
    assert_eq!(versions(&app).await, [1, 2]);
}

/// « Aucun décès ce jour »: one button declares zero in every setting, as a
/// declaration with history; on a day with deaths, a correction that asks
/// for its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_death_today_is_one_click() {
    let app = TestApp::start().await;
    let code = app.issue(Role::Commune, Some("56260")).await;
    let mut mayor = Browser::new(&app);
    mayor.login(&code).await;
    let page = mayor.get("/saisie?date=2020-04-01").await.text;
    assert!(page.contains("Aucun décès ce jour"), "{page}");
    let mut fields = filled(&page, ["", "", "", "", ""]);
    // Empty fields saved with the main button are still an error.
    let refused = mayor.post_form("/saisie", &borrowed(&fields)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    fields.retain(|(name, _)| *name != "submission");
    let page = refused.text;
    fields.push(("submission", hidden_field(&page, "submission")));
    fields.push(("aucun", "1".to_owned()));
    let saved = mayor.post_form("/saisie", &borrowed(&fields)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let report = app
        .store()
        .current_report(
            &decompte_core::CommuneCode::parse("56260").expect("code"),
            chrono::NaiveDate::from_ymd_opt(2020, 4, 1).expect("day"),
        )
        .await
        .expect("read")
        .expect("a declaration");
    assert_eq!(report.total(), 0);
    assert!(report.counts.values().all(|n| *n == 0), "{report:?}");

    // On a day declared with deaths, the same button is a correction: it
    // lowers counts, so it asks for a reason, then saves with it.
    let day = "2020-04-02";
    let page = mayor.get(&format!("/saisie?date={day}")).await.text;
    let mut fields = filled(&page, ["3", "0", "0", "0", "0"]);
    fields.iter_mut().for_each(|(k, v)| {
        if *k == "date" {
            *v = day.to_owned()
        }
    });
    assert_eq!(
        mayor.post_form("/saisie", &borrowed(&fields)).await.status,
        StatusCode::SEE_OTHER
    );
    let page = mayor.get(&format!("/saisie?date={day}")).await.text;
    let mut fields = filled(&page, ["3", "0", "0", "0", "0"]);
    fields.iter_mut().for_each(|(k, v)| {
        if *k == "date" {
            *v = day.to_owned()
        }
    });
    fields.push(("replaces_version", "1".to_owned()));
    fields.push(("aucun", "1".to_owned()));
    let asked = mayor.post_form("/saisie", &borrowed(&fields)).await;
    assert_eq!(
        asked.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        asked.text
    );
    assert!(asked.text.contains("motif"), "{}", asked.text);
    fields.retain(|(k, _)| !matches!(*k, "reason" | "submission"));
    fields.push(("submission", hidden_field(&asked.text, "submission")));
    fields.push(("reason", "Décès enregistré par erreur".to_owned()));
    let corrected = mayor.post_form("/saisie", &borrowed(&fields)).await;
    assert_eq!(
        corrected.status,
        StatusCode::SEE_OTHER,
        "{}",
        corrected.text
    );
}

/// Who did something is named as people know them — « Mairie de Vannes —
/// secrétariat », « Cellule de crise — poste 2 » — not by an internal id:
/// in a conflict, a day's history, the publications and the export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_are_named_not_identified() {
    let app = TestApp::start().await;
    let store = app.store();
    let secretariat = "Mairie de Vannes — secrétariat";
    let cell = "Cellule de crise — poste 2";
    let mayor = issue_labelled_code(
        store.as_ref(),
        Role::Commune,
        Some("56260"),
        &[],
        secretariat,
    )
    .await;
    let prefecture = issue_labelled_code(store.as_ref(), Role::Prefecture, None, &[], cell).await;
    let ids: Vec<String> = store
        .credentials()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    let declared = app
        .post_json(
            "/api/v1/reports",
            Some(&mayor),
            &report_body("56260", "2020-04-01", [1, 0, 0, 1, 0]),
            &[],
        )
        .await;
    assert_eq!(declared.status, StatusCode::CREATED, "{}", declared.text);
    // The prefecture sends a first declaration for a day already declared.
    let conflict = app
        .post_json(
            "/api/v1/reports",
            Some(&prefecture),
            &report_body("56260", "2020-04-01", [2, 0, 0, 1, 0]),
            &[],
        )
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert!(conflict.text.contains(secretariat), "{}", conflict.text);
    let asked = app
        .post_json(
            "/api/v1/publications",
            Some(&prefecture),
            &serde_json::json!({"reason": "noms"}),
            &[],
        )
        .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.text);
    let mut agent = Browser::new(&app);
    agent.login(&prefecture).await;
    let pages = [
        agent
            .get("/saisie?commune=56260&date=2020-04-01")
            .await
            .text,
        agent.get("/prefecture").await.text,
        agent.get("/prefecture/export.csv").await.text,
    ];
    assert!(pages[0].contains(secretariat), "history: {}", pages[0]);
    assert!(pages[1].contains(cell), "publications: {}", pages[1]);
    assert!(pages[2].contains(secretariat), "export: {}", pages[2]);
    for page in &pages {
        for id in &ids {
            assert!(!page.contains(id.as_str()), "{id} shown: {page}");
        }
    }
    // The message names the mairie (the API's `current.recorded_by` stays
    // the id, for programs).
    let message = conflict.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for id in &ids {
        assert!(!message.contains(id.as_str()), "{id} in {message}");
    }
}

/// A help page in plain French, for anyone (the access letter links to it),
/// linked from the login page, the form and every page's footer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_is_one_link_away() {
    let app = TestApp::start().await;
    let help = app.get("/aide", None).await;
    assert_eq!(help.status, StatusCode::OK);
    for text in [
        "Ce qu'il faut déclarer",
        "Quand déclarer",
        "Aucun décès ce jour",
        "Corriger une déclaration",
        "EHPAD",
        "Préfecture du Morbihan",
    ] {
        assert!(help.text.contains(text), "no « {text} » in the help");
    }
    let code = app.issue(Role::Commune, Some("56260")).await;
    let mut mayor = Browser::new(&app);
    assert!(mayor
        .get("/connexion")
        .await
        .text
        .contains("href=\"/aide\""));
    mayor.login(&code).await;
    assert!(mayor.get("/saisie").await.text.contains("href=\"/aide\""));
}

/// Warnings before saving: 80 deaths at home in a small commune, a jump
/// against the week before, a day long past. Nothing is saved until the
/// author confirms — on the form with a second button, on the API with
/// `"confirm": true` — and the warnings confirmed are kept with the version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlikely_figures_are_confirmed_before_they_are_saved() {
    // Warnings for old days on, as in a deployment during its crisis.
    let app = TestApp::start_with(|options| options.old_day_after = 30).await;
    // Billio (56019): a village of 335 inhabitants.
    let code = app.issue(Role::Commune, Some("56019")).await;
    let mut mayor = Browser::new(&app);
    mayor.login(&code).await;
    let today = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
    let day = today.to_string();
    let page = mayor
        .get(&format!("/saisie?commune=56019&date={day}"))
        .await
        .text;
    let mut fields = filled(&page, ["0", "0", "0", "80", "0"]);
    for (name, value) in fields.iter_mut() {
        match *name {
            "commune" => *value = "56019".to_owned(),
            "date" => *value = day.clone(),
            _ => {}
        }
    }
    let warned = mayor.post_form("/saisie", &borrowed(&fields)).await;
    assert_eq!(
        warned.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        warned.text
    );
    assert!(
        warned.text.contains("exceptionnel pour une commune de"),
        "{}",
        warned.text
    );
    assert!(
        warned.text.contains("Confirmer et enregistrer"),
        "{}",
        warned.text
    );
    assert!(
        warned.text.contains("value=\"80\""),
        "what was typed is kept"
    );
    let commune = decompte_core::CommuneCode::parse("56019").expect("code");
    let read = || async {
        app.store()
            .current_report(&commune, today)
            .await
            .expect("read")
    };
    assert_eq!(read().await, None, "nothing saved before the confirmation");
    fields.retain(|(name, _)| *name != "submission");
    fields.push(("submission", hidden_field(&warned.text, "submission")));
    fields.push(("confirmer", "1".to_owned()));
    let saved = mayor.post_form("/saisie", &borrowed(&fields)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let report = read().await.expect("saved once confirmed");
    assert_eq!(report.count("domicile"), 80);
    assert_eq!(report.warnings, ["implausible"]);
    let history = mayor
        .get(&format!("/saisie?commune=56019&date={day}"))
        .await
        .text;
    assert!(
        history.contains("nombre exceptionnel confirmé"),
        "{history}"
    );

    // The API: the same warnings in a 422, then saved with `"confirm": true`.
    let old = "2020-04-01";
    let body = serde_json::json!({
        "commune": "56019", "date": old,
        "counts": {"hopital": 0, "ehpad": 1, "esms": 0, "domicile": 0, "autre": 0},
    });
    let asked = app
        .post_json("/api/v1/reports", Some(&code), &body, &[])
        .await;
    assert_eq!(
        asked.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        asked.text
    );
    let answer = asked.json();
    assert_eq!(answer["error"], "confirmation_required");
    assert_eq!(answer["warnings"][0]["code"], "old_day", "{answer}");
    let mut confirmed = body.clone();
    confirmed["confirm"] = serde_json::json!(true);
    let stored = app
        .post_json("/api/v1/reports", Some(&code), &confirmed, &[])
        .await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);
    assert_eq!(stored.json()["warnings"], serde_json::json!(["old_day"]));

    // A usual day needs no confirmation.
    let usual = serde_json::json!({
        "commune": "56019", "date": (today - chrono::Duration::days(1)).to_string(),
        "counts": {"hopital": 0, "ehpad": 1, "esms": 0, "domicile": 0, "autre": 0},
    });
    let plain = app
        .post_json("/api/v1/reports", Some(&code), &usual, &[])
        .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.text);
    assert!(plain.json().get("warnings").is_none(), "{}", plain.text);
}

/// Declarations dictated over the phone: ten mairies in one screen, the
/// rows left empty skipped, a wrong row sent back with what was typed, the
/// same screen sent twice saved once, each row a declaration of the
/// prefecture with its history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crisis_cell_enters_ten_dictated_declarations_in_one_screen() {
    let app = TestApp::start().await;
    let prefecture = app.issue(Role::Prefecture, None).await;
    let mut agent = Browser::new(&app);
    agent.login(&prefecture).await;
    let day = "2020-04-01";
    let overview = agent.get(&format!("/prefecture?date={day}")).await.text;
    assert!(
        overview.contains("/prefecture/saisie-groupee?date="),
        "{overview}"
    );
    let page = agent
        .get(&format!("/prefecture/saisie-groupee?date={day}"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains("249 commune(s) sans déclaration"),
        "{}",
        page.text
    );
    let ten = [
        "56001", "56002", "56003", "56004", "56005", "56006", "56007", "56008", "56009", "56010",
    ];
    let mut fields: Vec<(String, String)> = vec![
        ("csrf".into(), csrf_of(&page.text)),
        ("submission".into(), hidden_field(&page.text, "submission")),
        ("date".into(), day.into()),
        ("departement".into(), "56".into()),
    ];
    for (i, code) in ten.iter().enumerate() {
        for (j, key) in ["hopital", "ehpad", "esms", "domicile", "autre"]
            .iter()
            .enumerate()
        {
            let value = if j == 1 {
                (i % 2).to_string()
            } else {
                "0".into()
            };
            fields.push((format!("n_{code}_{key}"), value));
        }
    }
    // An eleventh row, half typed: sent back, the others saved.
    fields.push(("n_56011_hopital".into(), "1".into()));
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let answer = agent.post_form("/prefecture/saisie-groupee", &form).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    assert!(
        answer.text.contains("10 déclaration(s) enregistrée(s)"),
        "{}",
        answer.text
    );
    assert!(answer.text.contains("name=\"n_56011_hopital\" type=\"number\" inputmode=\"numeric\" min=\"0\" max=\"1000\" step=\"1\" value=\"1\""), "what was typed is kept");
    // The same screen sent again: nothing more written.
    let again = agent.post_form("/prefecture/saisie-groupee", &form).await;
    assert!(
        again.text.contains("10 déclaration(s) enregistrée(s)"),
        "{}",
        again.text
    );
    let date = chrono::NaiveDate::from_ymd_opt(2020, 4, 1).expect("day");
    for code in ten {
        let commune = decompte_core::CommuneCode::parse(code).expect("code");
        let history = app.store().history(&commune, date).await.expect("history");
        assert_eq!(history.len(), 1, "{code}: one version");
        assert_eq!(history[0].source, decompte_core::Source::Prefecture);
    }
    // A mairie cannot use it.
    let mayor = app.issue(Role::Commune, Some("56260")).await;
    let mut mairie = Browser::new(&app);
    mairie.login(&mayor).await;
    assert_eq!(
        mairie.get("/prefecture/saisie-groupee").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_cluster_in_an_ehpad_is_signalled_on_its_third_day() {
    let app = TestApp::start().await;
    let start = chrono::NaiveDate::from_ymd_opt(2020, 3, 15).expect("date");
    let cluster = chrono::NaiveDate::from_ymd_opt(2020, 4, 5).expect("date");
    // A month of the usual: Vannes and Lorient at hospital and in EHPAD.
    for day in 0..28 {
        let date = start + chrono::Duration::days(day);
        let odd = u32::from(day % 2 == 1);
        decompte_tests::write_counts(&app, "56260", date, [2, odd, 0, 0, 0]).await;
        decompte_tests::write_counts(&app, "56121", date, [1, 1 - odd, 0, 0, 0]).await;
    }
    // From 5 April, one EHPAD death a day in Brandérion (1,494 inhabitants).
    for day in 0..4 {
        let date = cluster + chrono::Duration::days(day);
        decompte_tests::write_counts(&app, "56021", date, [0, 1, 0, 0, 0]).await;
    }
    let mut browser = Browser::new(&app);
    browser
        .login(&app.issue(Role::Prefecture, None).await)
        .await;
    let prefecture = browser.get("/prefecture?date=2020-04-05").await;
    assert!(prefecture
        .text
        .contains("/prefecture/signaux?date=2020-04-05"));
    let mut first_flagged = None;
    for day in 0..4 {
        let date = cluster + chrono::Duration::days(day);
        let page = browser
            .get(&format!("/prefecture/signaux?date={date}"))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let flagged = page.text.contains("signal</strong> sur les sept jours");
        if flagged && first_flagged.is_none() {
            first_flagged = Some(date);
            assert!(
                page.text.contains("Brandérion (EHPAD, 3 décès)"),
                "{}",
                page.text
            );
            // Hatched on the map, Vannes's usual deaths not signalled.
            assert!(page
                .text
                .contains("Brandérion : 3 décès, 200,8 pour 100 000 habitants ; signal"));
            assert!(!page.text.contains("Vannes (Hôpital"), "{}", page.text);
        }
    }
    assert_eq!(
        first_flagged,
        chrono::NaiveDate::from_ymd_opt(2020, 4, 7),
        "the third death in three days is the signal"
    );
    // A commune's code reads no signal: the page is the prefecture's.
    let mut mayor = Browser::new(&app);
    mayor
        .login(&app.issue(Role::Commune, Some("56260")).await)
        .await;
    let refused = mayor.get("/prefecture/signaux").await;
    assert_ne!(refused.status, StatusCode::OK);
}
