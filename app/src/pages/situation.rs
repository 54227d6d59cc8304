//! The morning situation report (« point de situation »): for a day of a
//! département, one printable page — the day's and the week's deaths by
//! setting, the trend against the week before, the communes flagged by the
//! signals, the communes that did not declare, and the gap with Santé
//! publique France. Any past day can be shown again: the report is made
//! from the store, as it stands.

use decompte_core::signals::{self, Signal};

use super::*;

pub(super) async fn situation_page(
    State(state): State<AppState>,
    PrefectureUser(session): PrefectureUser,
    RawQuery(query): RawQuery,
) -> Response {
    let scope = session.caller.scope(&state.config.scope);
    // Yesterday by default: the morning's report is about the day before.
    let yesterday = scope.today(Utc::now()) - Duration::days(1);
    let (date, departement, communes) = match page_day(&state, &session, query, Some(yesterday)) {
        Ok(found) => found,
        Err(page) => return page,
    };
    // Four weeks of one département: the signals' reach, and the two weeks of the trend.
    let loaded = async {
        let reports = state
            .store
            .current_reports(&ReportQuery {
                commune: None,
                departements: vec![departement.clone()],
                from: Some(signals::first_day_read(date)),
                to: Some(date),
            })
            .await?;
        let reference = state.store.reference(&departement).await?;
        Ok::<_, decompte_store::StoreError>((reports, reference))
    }
    .await;
    let (reports, reference) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(&state, Some(&session), &error.into()),
    };
    let settings = &state.config.rules.settings;
    let in_scope: Vec<&Report> = reports
        .iter()
        .filter(|r| scope.contains(&r.commune))
        .collect();
    let sums = |from: NaiveDate, to: NaiveDate| -> Vec<u64> {
        settings
            .keys()
            .map(|key| {
                in_scope
                    .iter()
                    .filter(|r| r.date >= from && r.date <= to)
                    .map(|r| u64::from(r.count(key)))
                    .sum()
            })
            .collect()
    };
    let week_start = date - Duration::days(6);
    let (day, week, before) = (
        sums(date, date),
        sums(week_start, date),
        sums(
            week_start - Duration::days(7),
            week_start - Duration::days(1),
        ),
    );
    let rows: Vec<Value> = settings
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"label": s.label, "day": day[i], "week": week[i], "before": before[i],
                   "trend": trend(week[i], before[i])})
        })
        .collect();
    let (day_total, week_total, before_total): (u64, u64, u64) =
        (day.iter().sum(), week.iter().sum(), before.iter().sum());
    // Who declared the day.
    let declared: std::collections::BTreeSet<&CommuneCode> = in_scope
        .iter()
        .filter(|r| r.date == date)
        .map(|r| &r.commune)
        .collect();
    let missing: Vec<&str> = communes
        .iter()
        .filter(|c| !declared.contains(&c.code))
        .map(|c| c.name.as_str())
        .collect();
    let found = signals::signals(date, &departement, &scope, settings, &reports);
    let flagged: Vec<Value> = found
        .iter()
        .filter(|s: &&Signal| s.flagged)
        .map(|s| {
            json!({
                "name": scope.get(&s.commune).map_or("", |c| c.name.as_str()),
                "setting": settings.iter().nth(s.setting).map(|x| x.label.clone()),
                "deaths": s.deaths,
                "expected": s.expected,
            })
        })
        .collect();
    // Santé publique France, over the same week.
    let spf = reference.as_ref().and_then(|series| {
        let hospital = settings.position(super::spf::HOSPITAL)?;
        let spf_day = u64::from(series.days.get(&date).copied().unwrap_or(0));
        let spf_week: u64 = series
            .days
            .range(week_start..=date)
            .map(|(_, n)| u64::from(*n))
            .sum();
        Some(json!({
            "day": spf_day, "week": spf_week,
            "ours_day": day[hospital], "ours_week": week[hospital],
            "gap_day": signed(day[hospital] as i64 - spf_day as i64),
            "gap_week": signed(week[hospital] as i64 - spf_week as i64),
            "known": series.days.contains_key(&date),
        }))
    });
    let departement_name = scope.departement_name(&departement).unwrap_or(&departement);
    let mut context = base_context(&state, Some(&session), &session.csrf);
    merge(
        &mut context,
        json!({
            "date": date.to_string(),
            "date_fr": fr_date(date),
            "week_from_fr": fr_date(week_start),
            "made_at_fr": fr_datetime(Utc::now()),
            "departement": departement,
            "departement_name": departement_name,
            "several_departements": scope.departement_codes().nth(1).is_some(),
            "departements": scope.departements()
                .map(|(code, name)| json!({"code": code, "name": name})).collect::<Vec<_>>(),
            "rows": rows,
            "day_total": day_total,
            "week_total": week_total,
            "before_total": before_total,
            "trend": trend(week_total, before_total),
            "expected": communes.len(),
            "declared": communes.len() - missing.len(),
            "missing": missing,
            "flagged": flagged,
            "spf": spf,
        }),
    );
    render(&state, StatusCode::OK, "app/situation.html", context)
}

/// The week against the one before: « +25 % », « −10 % », « stable », or
/// « nouveau » when the week before had none.
fn trend(week: u64, before: u64) -> String {
    match (week, before) {
        (0, 0) => "—".to_owned(),
        (_, 0) => "nouveau".to_owned(),
        (w, b) if w == b => "stable".to_owned(),
        (w, b) => {
            let change = (w as f64 - b as f64) * 100.0 / b as f64;
            let rounded = change.round() as i64;
            if rounded > 0 {
                format!("+{rounded} %")
            } else {
                format!("−{} %", rounded.unsigned_abs())
            }
        }
    }
}

/// « +3 », « −2 », « 0 ».
pub(super) fn signed(n: i64) -> String {
    match n {
        0 => "0".to_owned(),
        n if n > 0 => format!("+{n}"),
        n => format!("−{}", n.unsigned_abs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trend_reads_as_a_person_would_say_it() {
        assert_eq!(trend(0, 0), "—");
        assert_eq!(trend(3, 0), "nouveau");
        assert_eq!(trend(4, 4), "stable");
        assert_eq!(trend(5, 4), "+25 %");
        assert_eq!(trend(3, 4), "−25 %");
        assert_eq!(signed(-2), "−2");
    }
}
