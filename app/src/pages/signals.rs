//! Signals for decisions: for a day and a département, the communes whose
//! deaths of the last seven days in one setting are out of the ordinary for
//! their population (`decompte_core::signals`), ranked, with a map.

use decompte_core::aggregate::per_100k;
use decompte_core::signals::{self, Signal};
use decompte_publish::map::{self, Area};

use super::*;

/// How many ranked rows the page lists (the flagged ones always).
const SHOWN: usize = 30;

pub(super) async fn signals_page(
    State(state): State<AppState>,
    PrefectureUser(session): PrefectureUser,
    RawQuery(query): RawQuery,
) -> Response {
    let (date, departement, communes) = match page_day(&state, &session, query, None) {
        Ok(found) => found,
        Err(page) => return page,
    };
    // One département, four weeks: what a signal reads, whatever the country's size.
    let reports = match state
        .store
        .current_reports(&ReportQuery {
            commune: None,
            departements: vec![departement.clone()],
            from: Some(signals::first_day_read(date)),
            to: Some(date),
        })
        .await
    {
        Ok(reports) => reports,
        Err(error) => return error_page(&state, Some(&session), &error.into()),
    };
    let scope = session.caller.scope(&state.config.scope);
    let settings = &state.config.rules.settings;
    let found = signals::signals(date, &departement, &scope, settings, &reports);
    let flagged: Vec<&Signal> = found.iter().filter(|s| s.flagged).collect();
    let name_of = |code: &CommuneCode| scope.get(code).map_or("", |c| c.name.as_str());
    let rows: Vec<Value> = found
        .iter()
        .take(SHOWN.max(flagged.len()))
        .map(|s| {
            let population = scope.get(&s.commune).map_or(0, |c| c.population);
            json!({
                "code": s.commune,
                "name": name_of(&s.commune),
                "population": population,
                "setting": settings.iter().nth(s.setting).map(|x| x.label.clone()),
                "deaths": s.deaths,
                "expected": s.expected,
                "previous_weekly": s.previous_weekly,
                "p_value": p_value_fr(s.p_value),
                "flagged": s.flagged,
                "rising": s.deaths as f64 > 2.0 * s.previous_weekly,
            })
        })
        .collect();
    // The map: deaths of the seven days per 100,000, flagged communes hatched.
    let mut week: BTreeMap<&CommuneCode, u64> = BTreeMap::new();
    for s in &found {
        *week.entry(&s.commune).or_default() += s.deaths;
    }
    let hrefs: Vec<String> = communes
        .iter()
        .map(|c| format!("/saisie?commune={}&date={date}", c.code))
        .collect();
    let areas: Vec<Area<'_>> = communes
        .iter()
        .zip(&hrefs)
        .map(|(c, href)| {
            let total = week.get(&c.code).copied().unwrap_or(0);
            Area {
                code: c.code.as_str(),
                departement: &c.departement,
                name: &c.name,
                href: href.clone(),
                total,
                rate: per_100k(total, c.population),
                hatched: flagged.iter().any(|s| s.commune == c.code),
                // The prefecture sees every figure.
                shown: true,
            }
        })
        .collect();
    let departement_name = scope.departement_name(&departement).unwrap_or(&departement);
    let carte = map::choropleth(
        &areas,
        map::communes(),
        &format!("Carte des communes, {departement_name}"),
        "signal",
    );
    let mut context = base_context(&state, Some(&session), &session.csrf);
    merge(&mut context, departement_picker(&scope, &departement));
    merge(
        &mut context,
        json!({
            "date": date.to_string(),
            "date_fr": fr_date(date),
            "from_fr": fr_date(date - Duration::days(signals::WINDOW_DAYS - 1)),
            "departement_name": departement_name,
            "rows": rows,
            "flagged": flagged.len(),
            "flagged_list": flagged.iter().map(|s| format!("{} ({}, {} décès)",
                name_of(&s.commune),
                settings.iter().nth(s.setting).map_or("", |x| x.label.as_str()),
                s.deaths)).collect::<Vec<_>>().join(", "),
            "ranked": found.len(),
            "map": carte,
            "threshold": "1 sur 10 000",
            "min_deaths": signals::MIN_DEATHS,
        }),
    );
    render(&state, StatusCode::OK, "app/signals.html", context)
}

/// « < 0,0001 », « 0,03 »: how unlikely a count is, to two significant digits.
fn p_value_fr(p: f64) -> String {
    if p < 1e-4 {
        "< 0,0001".to_owned()
    } else {
        let places = (-p.log10().floor()) as usize + 1;
        decompte_templates::format_decimal(p, places.min(4))
    }
}
