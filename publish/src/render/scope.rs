//! The pages made of the départements' summaries: the overview (or the
//! scope's level), the setting pages, the methodology and the other fixed
//! pages, the site map, the schema and the Data Package.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use decompte_core::aggregate::per_100k;
use decompte_core::completeness::percent;
use decompte_core::time::{fr_date, fr_datetime};
use decompte_core::Commune;
use rayon::prelude::*;
use serde_json::{json, Value};

use crate::charts::{self, Caption};
use crate::map::{self, Area};
use crate::model::{add_days, DaySummary, Summary};
use crate::opendata;
use crate::paths;

use super::format::*;
use super::{Files, RenderError, Renderer};

impl Renderer<'_> {
    /// The pages and files made of the summaries: the overview, the setting
    /// pages, the methodology, the 404 page, the schema and the Data Package
    /// (the stylesheet is [`Renderer::stylesheet`]).
    pub fn scope_pages(&self, summaries: &[Summary]) -> Result<Files, RenderError> {
        // The overview and the setting pages on every core.
        let (overview, settings_pages) = rayon::join(
            || self.overview(summaries),
            || self.setting_pages(summaries),
        );
        let mut files = vec![
            (paths::OVERVIEW.into(), overview?),
            (
                paths::METHODOLOGY.into(),
                self.page("site/methodologie.html", self.base(""))?,
            ),
            (
                paths::ACCESSIBILITY.into(),
                self.page("site/accessibilite.html", {
                    let mut context = self.base("");
                    context["audit"] = json!(decompte_templates::rgaa::audit());
                    context
                })?,
            ),
            (
                paths::LEGAL.into(),
                self.page("site/mentions-legales.html", self.base(""))?,
            ),
            (
                paths::PERSONAL_DATA.into(),
                self.page("site/donnees-personnelles.html", self.base(""))?,
            ),
            (paths::SITE_MAP.into(), self.site_map()?),
            // Served for any missing address, at any depth: its links start at the site's root.
            (
                paths::NOT_FOUND.into(),
                self.page("site/404.html", self.base("/"))?,
            ),
        ];
        files.extend(settings_pages?);
        let settings = &self.config.settings;
        let scope = &self.config.scope;
        files.push((
            paths::SCHEMA.into(),
            pretty(&match self.config.small_counts {
                None => opendata::schema(settings),
                Some(k) => opendata::protected_schema(settings, k),
            })?,
        ));
        let title = format!(
            "Décès {} par commune et lieu de décès, {}",
            self.config.crisis,
            scope.label()
        );
        let mut resources = vec![opendata::CsvResource {
            name: "deces".into(),
            title: format!("Toutes les communes, {}", scope.label()),
            path: "deces.csv".into(),
        }];
        if self.multi() {
            resources.extend(
                scope
                    .departements()
                    .map(|(code, name)| opendata::CsvResource {
                        name: format!("deces-{}", code.to_ascii_lowercase()),
                        title: format!("{name} ({code})"),
                        path: format!("departements/{code}/deces.csv"),
                    }),
            );
        }
        files.push((
            paths::DATAPACKAGE.into(),
            pretty(&opendata::datapackage(
                &title,
                &resources,
                !self.config.commune_figures(),
            ))?,
        ));
        Ok(files)
    }

    /// `plan-du-site.html`: every kind of page, and each département's.
    pub(super) fn site_map(&self) -> Result<Vec<u8>, RenderError> {
        let mut context = self.base("");
        if self.multi() {
            let departements: Vec<Value> = self
                .config
                .scope
                .departements()
                .map(|(code, name)| json!({"code": code, "name": name}))
                .collect();
            merge(&mut context, json!({ "departements": departements }));
        }
        self.page("site/plan-du-site.html", context)
    }

    /// The seven days of the completeness table: up to today; when reporting
    /// stopped more than a week ago (a crisis that ended, demonstration
    /// data), the seven days up to the last report.
    pub(super) fn recent_days(&self, days: &[DaySummary]) -> Vec<NaiveDate> {
        let today = self.today;
        let window_end = match days.last().map(|d| d.date) {
            Some(last) if last < today - Duration::days(7) => last,
            _ => today,
        };
        (0..7)
            .map(|back| window_end - Duration::days(back))
            .collect()
    }

    pub(super) fn completeness(&self, days: &[DaySummary], expected: usize) -> Vec<Value> {
        let reporting: BTreeMap<NaiveDate, u32> =
            days.iter().map(|d| (d.date, d.reporting)).collect();
        self.recent_days(days)
            .into_iter()
            .map(|date| {
                let reported = reporting.get(&date).copied().unwrap_or(0) as usize;
                json!({
                    "date_fr": fr_date(date),
                    "reported": reported,
                    "expected": expected,
                    "percent": percent(reported, expected),
                })
            })
            .collect()
    }

    pub(super) fn totals(&self, by_setting: &[u64], link: bool) -> Vec<Value> {
        self.config
            .settings
            .iter()
            .zip(by_setting)
            .enumerate()
            .map(|(i, (s, total))| {
                json!({"key": s.key, "label": s.label, "total": total, "color": self.colors[i],
                       "link": link})
            })
            .collect()
    }

    /// The context of a level made of summaries (the scope, or a département).
    pub(super) fn level(
        &self,
        root: &str,
        summaries: &[&Summary],
        label: &str,
        population: u64,
        expected: usize,
        chart_id: &str,
    ) -> Result<Value, RenderError> {
        let width = self.config.settings.len();
        let days = filled(&add_days(summaries.iter().copied(), width), width);
        let by_setting = sum_settings(days.iter().map(|d| &d.by_setting), width);
        let total: u64 = by_setting.iter().sum();
        let mut context = self.base(root);
        merge(
            &mut context,
            json!({
                "updated_fr": summaries.iter().filter_map(|s| s.watermark).max().map(fr_datetime),
                "first_fr": days.first().map(|d| fr_date(d.date)),
                "last_fr": days.last().map(|d| fr_date(d.date)),
                "total": total,
                "per_100k": per_100k(total, population),
                "settings_totals": self.totals(&by_setting, true),
                "days": day_lines(&days, expected),
                "chart_daily": stacked_chart(
                    &days, &self.colors, &format!("{chart_id}-daily"),
                    &format!("Décès par jour et par lieu, {label}"),
                )?,
                "chart_cumulative": cumulative_chart(
                    &days, &format!("{chart_id}-cumulative"),
                    &format!("Décès cumulés, {label}"),
                )?,
                "completeness": self.completeness(&add_days(summaries.iter().copied(), width),
                    expected),
                "level_label": label,
                "level_expected": expected,
                "withheld": days.iter().filter(|d| d.withheld).count(),
            }),
        );
        Ok(context)
    }

    /// The communes of a summary, for a table: name, total, rate, days reported.
    pub(super) fn commune_rows(&self, summary: &Summary) -> Vec<Value> {
        let scope = &self.config.scope;
        summary
            .communes
            .iter()
            .filter_map(|c| scope.get(&c.code).map(|commune| (commune, c)))
            .map(|(commune, c)| {
                let total: u64 = c.by_setting.iter().sum();
                // Under the rule of small counts, a commune has no figure.
                let shown = self.config.commune_figures();
                json!({
                    "code": commune.code,
                    "name": commune.name,
                    "population": commune.population,
                    "total": shown.then_some(total),
                    "per_100k": per_100k(total, commune.population).filter(|_| shown),
                    "days_reported": c.days_reported,
                    "last_fr": c.last_date.map(fr_date),
                })
            })
            .collect()
    }

    /// The population of a département's communes in scope.
    pub(super) fn population_of(&self, departement: &str) -> u64 {
        self.config
            .scope
            .communes_of(departement)
            .map(|c| c.population)
            .sum()
    }

    /// The map of the communes of `summaries`, each linked from `root`, the
    /// communes that did not declare the last day hatched.
    pub(super) fn commune_map(
        &self,
        summaries: &[&Summary],
        label: &str,
        root: &str,
    ) -> Option<map::Map> {
        let scope = &self.config.scope;
        let width = self.config.settings.len();
        let last = add_days(summaries.iter().copied(), width)
            .last()
            .map(|d| d.date);
        let last_fr = last.map(fr_date);
        let areas: Vec<Area<'_>> = summaries
            .iter()
            .flat_map(|s| &s.communes)
            .filter_map(|c| scope.get(&c.code).map(|commune| (commune, c)))
            .map(|(commune, c)| {
                let total = c.by_setting.iter().sum();
                Area {
                    code: commune.code.as_str(),
                    departement: &commune.departement,
                    name: &commune.name,
                    href: format!("{root}communes/{}.html", commune.code),
                    total,
                    rate: per_100k(total, commune.population),
                    hatched: last.is_some_and(|day| c.last_date != Some(day)),
                    shown: self.config.commune_figures(),
                }
            })
            .collect();
        map::choropleth(
            &areas,
            map::communes(),
            &format!("Carte des communes, {label}"),
            &format!("pas de déclaration le {}", last_fr.unwrap_or_default()),
        )
    }

    /// `index.html`: the scope's totals, charts and completeness, and its
    /// communes (one département) or its départements (several).
    pub(super) fn overview(&self, summaries: &[Summary]) -> Result<Vec<u8>, RenderError> {
        let scope = &self.config.scope;
        let all: Vec<&Summary> = summaries.iter().collect();
        let mut context = self.level(
            "",
            &all,
            &scope.label(),
            scope.population(),
            scope.len(),
            "overview",
        )?;
        if self.multi() {
            let last = add_days(summaries, self.config.settings.len())
                .last()
                .map(|d| d.date);
            let departements: Vec<Value> = summaries
                .iter()
                .map(|s| {
                    let communes = scope.communes_of(&s.code);
                    let (count, population) =
                        communes.fold((0usize, 0u64), |(n, p), c| (n + 1, p + c.population));
                    let total = s.total();
                    let reported_last = last
                        .and_then(|date| s.days.iter().find(|d| d.date == date))
                        .map_or(0, |d| d.reporting as usize);
                    json!({
                        "code": s.code,
                        "name": scope.departement_name(&s.code).unwrap_or(&s.code),
                        "total": total,
                        "per_100k": per_100k(total, population),
                        "population": population,
                        "communes": count,
                        "percent_last": percent(reported_last, count),
                    })
                })
                .collect();
            let areas: Vec<Area<'_>> = summaries
                .iter()
                .map(|s| {
                    let population = self.population_of(&s.code);
                    let total = s.total();
                    Area {
                        code: &s.code,
                        departement: &s.code,
                        name: scope.departement_name(&s.code).unwrap_or(&s.code),
                        href: paths::departement(&s.code),
                        total,
                        rate: per_100k(total, population),
                        hatched: false,
                        shown: true,
                    }
                })
                .collect();
            let map = map::choropleth(
                &areas,
                map::departements(),
                &format!("Carte des départements, {}", scope.label()),
                "",
            );
            merge(
                &mut context,
                json!({
                    "departements": departements,
                    "last_day_fr": last.map(fr_date),
                    "map": map,
                    "map_of": "départements",
                }),
            );
        } else {
            let communes: Vec<Value> = summaries
                .iter()
                .flat_map(|s| self.commune_rows(s))
                .collect();
            let map = self.commune_map(&all, &scope.label(), "");
            merge(
                &mut context,
                json!({"communes": communes, "map": map, "map_of": "communes"}),
            );
        }
        self.page("site/index.html", context)
    }

    /// `lieux/{key}.html`: one page per setting, by day, and by commune (one
    /// département) or by département (several).
    pub(super) fn setting_pages(&self, summaries: &[Summary]) -> Result<Files, RenderError> {
        let settings = &self.config.settings;
        let scope = &self.config.scope;
        let width = settings.len();
        let days = filled(&add_days(summaries, width), width);
        let settings_list: Vec<(usize, &decompte_core::Setting)> =
            settings.iter().enumerate().collect();
        settings_list
            .par_iter()
            .map(|(index, setting)| {
                let (index, setting) = (*index, *setting);
                let mut cumulative = 0;
                let day_lines: Vec<Value> = days
                    .iter()
                    .map(|d| {
                        cumulative += d.by_setting[index];
                        json!({"date_fr": fr_date(d.date), "count": d.by_setting[index],
                           "cumulative": cumulative})
                    })
                    .collect();
                let total = cumulative;
                let places: Vec<Value> = if self.multi() {
                    let mut rows: Vec<(&Summary, u64, u64)> = summaries
                        .iter()
                        .map(|s| (s, s.by_setting(width)[index], self.population_of(&s.code)))
                        .filter(|(_, n, _)| *n > 0)
                        .collect();
                    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.code.cmp(&b.0.code)));
                    rows.into_iter()
                        .map(|(s, n, population)| {
                            json!({"href": format!("../departements/{}.html", s.code),
                               "code": s.code,
                               "name": scope.departement_name(&s.code).unwrap_or(&s.code),
                               "count": n, "per_100k": per_100k(n, population)})
                        })
                        .collect()
                } else if !self.config.commune_figures() {
                    Vec::new()
                } else {
                    let mut rows: Vec<(&Commune, u64)> = summaries
                        .iter()
                        .flat_map(|s| &s.communes)
                        .filter_map(|c| scope.get(&c.code).map(|m| (m, c.by_setting[index])))
                        .filter(|(_, n)| *n > 0)
                        .collect();
                    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.code.cmp(&b.0.code)));
                    rows.into_iter()
                        .map(|(c, n)| {
                            json!({"href": format!("../communes/{}.html", c.code), "code": c.code,
                               "name": c.name, "count": n,
                               "per_100k": per_100k(n, c.population)})
                        })
                        .collect()
                };
                let chart = match days.first() {
                    None => Value::Null,
                    Some(first) => {
                        let series = vec![days.iter().map(|d| d.by_setting[index]).collect()];
                        let title = format!("Décès par jour · {}", setting.label);
                        let description = describe_days(&days, |d| d.by_setting[index]);
                        both_layouts(&format!("lieu-{}", setting.key), |id, layout| {
                            charts::stacked_bars(
                                first.date,
                                &series,
                                &[self.colors[index]],
                                &Caption {
                                    id,
                                    title: &title,
                                    description: &description,
                                },
                                layout,
                            )
                        })?
                    }
                };
                let mut context = self.base("../");
                merge(
                    &mut context,
                    json!({
                        "setting": {"key": setting.key, "label": setting.label},
                        "color": self.colors[index],
                        "total": total,
                        "days": if days.is_empty() { Value::Null } else { json!(day_lines) },
                        "chart_daily": chart,
                        "places": places,
                    }),
                );
                Ok((
                    paths::setting(&setting.key),
                    self.page("site/lieu.html", context)?,
                ))
            })
            .collect()
    }
}
