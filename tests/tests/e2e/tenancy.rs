//! One instance, several prefectures: each sees, corrects, issues codes and
//! exports only in its own départements; the ministry reads everything and
//! writes no report. Every prefecture route and API call is tried across
//! the border, on a deployment of three départements (one overseas).

use chrono::{Duration, Utc};
use decompte_core::time::local_today;
use decompte_core::Role;
use decompte_tests::{csrf_of, report_body, Browser, TestApp};
use reqwest::StatusCode;

const BREST: &str = "29019";
const VANNES: &str = "56260";
const SAINT_DENIS: &str = "97411";

on_every_store!(
    each_prefecture_stays_in_its_departements,
    ["29", "56", "974"]
);

async fn each_prefecture_stays_in_its_departements(app: TestApp) {
    let brittany = app.issue_prefecture_of(&["56", "29"]).await;
    let reunion = app.issue_prefecture_of(&["974"]).await;
    let ministry = app.issue(Role::National, None).await;
    let vannes = app.issue(Role::Commune, Some(VANNES)).await;
    let reunion_today = local_today("974", Utc::now()).to_string();

    // Writes: a prefecture declares for its own communes only.
    let post = |code: &str, commune: &str| {
        let body = report_body(commune, "2020-04-01", [1, 0, 0, 0, 0]);
        let code = code.to_owned();
        let app = &app;
        async move {
            app.post_json("/api/v1/reports", Some(&code), &body, &[])
                .await
        }
    };
    assert_eq!(post(&brittany, VANNES).await.status, StatusCode::CREATED);
    assert_eq!(post(&brittany, BREST).await.status, StatusCode::CREATED);
    assert_eq!(
        post(&reunion, SAINT_DENIS).await.status,
        StatusCode::CREATED
    );
    let across = post(&brittany, SAINT_DENIS).await;
    assert_eq!(across.status, StatusCode::FORBIDDEN, "{}", across.text);
    assert!(
        across.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("départements 29, 56") && m.contains("974")),
        "{}",
        across.text
    );
    let ministry_writes = post(&ministry, VANNES).await;
    assert_eq!(ministry_writes.status, StatusCode::FORBIDDEN);
    assert!(ministry_writes.text.contains("permet de consulter"));
    let before = app.snapshot().await;
    assert_eq!(before.versions.len(), 3, "refused writes changed nothing");

    // Réunion's own day: today there is accepted, tomorrow there is not.
    let today = report_body(SAINT_DENIS, &reunion_today, [0, 0, 0, 0, 0]);
    let accepted = app
        .post_json("/api/v1/reports", Some(&reunion), &today, &[])
        .await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.text);
    let tomorrow = (local_today("974", Utc::now()) + Duration::days(1)).to_string();
    let future = report_body(SAINT_DENIS, &tomorrow, [0, 0, 0, 0, 0]);
    let refused = app
        .post_json("/api/v1/reports", Some(&reunion), &future, &[])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Reads: the list, a commune, a history, completeness, who am I.
    let communes_listed = |answer: &decompte_tests::Answer| -> Vec<String> {
        let mut communes: Vec<String> = answer.json()["reports"]
            .as_array()
            .expect("reports")
            .iter()
            .filter_map(|r| r["commune"].as_str().map(str::to_owned))
            .collect();
        communes.sort();
        communes.dedup();
        communes
    };
    let listed = app.get("/api/v1/reports", Some(&brittany)).await;
    assert_eq!(communes_listed(&listed), [BREST, VANNES]);
    let listed = app.get("/api/v1/reports", Some(&ministry)).await;
    assert_eq!(communes_listed(&listed), [BREST, VANNES, SAINT_DENIS]);
    let listed = app.get("/api/v1/reports", Some(&vannes)).await;
    assert_eq!(communes_listed(&listed), [VANNES]);
    for path in [
        format!("/api/v1/reports?commune={SAINT_DENIS}"),
        format!("/api/v1/reports/{SAINT_DENIS}/2020-04-01/history"),
        "/api/v1/completeness?departement=974".to_owned(),
    ] {
        let answer = app.get(&path, Some(&brittany)).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.text
        );
    }
    let history = app
        .get(
            &format!("/api/v1/reports/{SAINT_DENIS}/2020-04-01/history"),
            Some(&ministry),
        )
        .await;
    assert_eq!(history.status, StatusCode::OK);

    let completeness = app
        .get("/api/v1/completeness?date=2020-04-01", Some(&brittany))
        .await
        .json();
    let departements: Vec<&str> = completeness["departements"]
        .as_array()
        .expect("départements")
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert_eq!(departements, ["29", "56"]);
    assert_eq!(completeness["reported"], 2);
    let national = app
        .get("/api/v1/completeness?date=2020-04-01", Some(&ministry))
        .await
        .json();
    assert_eq!(national["departements"].as_array().map(Vec::len), Some(3));
    assert_eq!(national["reported"], 3);
    let reunion_only = app
        .get(
            "/api/v1/completeness?date=2020-04-01&departement=974",
            Some(&ministry),
        )
        .await
        .json();
    assert_eq!(reunion_only["expected"], 24);

    let me = |code: &str| {
        let code = code.to_owned();
        let app = &app;
        async move {
            let me = app.get("/api/v1/me", Some(&code)).await.json();
            me["departements"]
                .as_array()
                .expect("départements")
                .iter()
                .filter_map(|d| d["code"].as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(me(&brittany).await, ["29", "56"]);
    assert_eq!(me(&ministry).await, ["29", "56", "974"]);
    assert_eq!(me(&vannes).await, ["56"]);

    // Publications are the whole site's: any prefecture may ask for one.
    let reunion = decompte_tests::issue_labelled_code(
        app.store().as_ref(),
        Role::Prefecture,
        None,
        &["974"],
        "Cellule Réunion — Camille",
    )
    .await;
    let asked = app
        .post_json(
            "/api/v1/publications",
            Some(&reunion),
            &serde_json::json!({"reason": "Erratum de Saint-Pierre, voir le courriel du préfet"}),
            &[],
        )
        .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED);
    let id = asked.json()["id"].as_str().expect("an id").to_owned();
    // Who asked and why stay with the requester's prefecture and the
    // national level: to another prefecture, the publication is not there.
    let path = format!("/api/v1/publications/{id}");
    assert_eq!(app.get(&path, Some(&reunion)).await.status, StatusCode::OK);
    assert_eq!(app.get(&path, Some(&ministry)).await.status, StatusCode::OK);
    let other = app.get(&path, Some(&brittany)).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.text);
    // On the prefecture page, Brittany sees that it happened, not who nor why.
    let mut cell = Browser::new(&app);
    cell.login(&brittany).await;
    let page = cell.get("/prefecture").await.text;
    assert!(page.contains("Une autre préfecture"), "{page}");
    assert!(!page.contains("Erratum de Saint-Pierre"), "{page}");
    assert!(!page.contains("Cellule Réunion"), "{page}");
    let mut reunion_cell = Browser::new(&app);
    reunion_cell.login(&reunion).await;
    let page = reunion_cell.get("/prefecture").await.text;
    assert!(page.contains("Erratum de Saint-Pierre"), "{page}");
    assert!(page.contains("Cellule Réunion — Camille"), "{page}");
}

on_every_store!(the_pages_follow_the_same_borders, ["29", "56", "974"]);

async fn the_pages_follow_the_same_borders(app: TestApp) {
    let brittany_code = app.issue_prefecture_of(&["56", "29"]).await;
    let reunion_code = app.issue_prefecture_of(&["974"]).await;
    let reunion_credential = app
        .store()
        .credentials()
        .await
        .expect("list")
        .into_iter()
        .find(|c| c.departements == ["974"])
        .expect("Réunion's code");
    let mut reunion = Browser::new(&app);
    reunion.login(&reunion_code).await;
    let form = reunion
        .get(&format!("/saisie?commune={SAINT_DENIS}&date=2020-04-01"))
        .await;
    let declared = reunion
        .declare(
            &csrf_of(&form.text),
            SAINT_DENIS,
            "2020-04-01",
            [2, 0, 0, 0, 0],
        )
        .await;
    assert_eq!(declared.status, StatusCode::SEE_OTHER, "{}", declared.text);

    let mut brittany = Browser::new(&app);
    assert_eq!(
        brittany.login(&brittany_code).await.location(),
        "/prefecture"
    );
    let page = brittany.get("/prefecture?date=2020-04-01").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Finistère (29)") && page.text.contains("Morbihan (56)"));
    // (Not the bare code: a Morbihan mairie's telephone, 02 97 41 1…, holds its digits.)
    assert!(
        !page.text.contains(&format!("commune={SAINT_DENIS}")),
        "no commune of Réunion"
    );
    let form = brittany
        .get(&format!("/saisie?commune={SAINT_DENIS}&date=2020-04-01"))
        .await;
    assert_eq!(form.status, StatusCode::FORBIDDEN);
    let form = brittany
        .get(&format!("/saisie?commune={VANNES}&date=2020-04-01"))
        .await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = csrf_of(&form.text);
    let crossing = brittany
        .post_form(
            "/saisie",
            &[
                ("csrf", &csrf),
                ("commune", SAINT_DENIS),
                ("date", "2020-04-01"),
                ("n_hopital", "9"),
                ("n_ehpad", "0"),
                ("n_esms", "0"),
                ("n_domicile", "0"),
                ("n_autre", "0"),
                ("replaces_version", "1"),
            ],
        )
        .await;
    assert_eq!(crossing.status, StatusCode::FORBIDDEN, "{}", crossing.text);
    assert_eq!(app.snapshot().await.versions.len(), 1, "nothing written");

    let export = brittany.get("/prefecture/export.csv").await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(!export.text.contains(SAINT_DENIS), "{}", export.text);

    // Codes: Brittany issues for its communes and départements only, and
    // neither sees nor revokes Réunion's.
    let codes = brittany.get("/prefecture/codes").await;
    assert!(!codes.text.contains(&reunion_credential.id));
    let csrf = csrf_of(&codes.text);
    for fields in [
        [
            ("role", "commune"),
            ("commune", SAINT_DENIS),
            ("departements", ""),
        ],
        [
            ("role", "prefecture"),
            ("commune", ""),
            ("departements", "974"),
        ],
        [("role", "national"), ("commune", ""), ("departements", "")],
    ] {
        let mut form = vec![("csrf", csrf.as_str()), ("label", "")];
        form.extend(fields);
        let refused = brittany.post_form("/prefecture/codes", &form).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields:?}"
        );
    }
    // The form shows both fields: a commune left typed in the other one
    // does not stand in the way of a prefecture's code.
    let issued = brittany
        .post_form(
            "/prefecture/codes",
            &[
                ("csrf", &csrf),
                ("role", "prefecture"),
                ("commune", "29019"),
                ("departements", "29"),
                ("label", ""),
            ],
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED);
    assert!(issued.text.contains("Préfecture (29)"));
    let revoke = brittany
        .post_form(
            &format!("/prefecture/codes/{}/revocation", reunion_credential.id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NOT_FOUND);
    let still = app
        .store()
        .credential(&reunion_credential.id)
        .await
        .expect("read")
        .expect("kept");
    assert!(
        still.is_active(Utc::now()),
        "Réunion's code was not revoked"
    );

    // The ministry: every département, prefecture codes, no declaration.
    let ministry_code = app.issue(Role::National, None).await;
    let mut ministry = Browser::new(&app);
    assert_eq!(
        ministry.login(&ministry_code).await.location(),
        "/prefecture"
    );
    let page = ministry.get("/prefecture?date=2020-04-01").await;
    assert!(page.text.contains("La Réunion (974)"), "{}", page.text);
    let form = ministry
        .get(&format!("/saisie?commune={SAINT_DENIS}&date=2020-04-01"))
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.text.contains("permet de consulter"));
    assert!(!form.text.contains("Enregistrer la déclaration"));
    let codes = ministry.get("/prefecture/codes").await;
    assert!(codes.text.contains(&reunion_credential.id));
    let csrf = csrf_of(&codes.text);
    let refused = ministry
        .post_form(
            "/prefecture/codes",
            &[("csrf", &csrf), ("role", "commune"), ("commune", VANNES)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let issued = ministry
        .post_form(
            "/prefecture/codes",
            &[
                ("csrf", &csrf),
                ("role", "prefecture"),
                ("departements", "974"),
                ("label", ""),
            ],
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED);
    let revoked = ministry
        .post_form(
            &format!("/prefecture/codes/{}/revocation", reunion_credential.id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
}
