//! Rendering the whole site in memory: pages, charts, open data and assets.
//! Nothing here depends on the clock except through `today`, so the same
//! reports always give the same bytes (which makes publication incremental).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use decompte_core::aggregate::{per_100k, DayRow};
use decompte_core::time::{fr_date, fr_datetime};
use decompte_core::{Aggregates, CommuneCode, Completeness, Report, Scope, Settings};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::charts::{self, Caption};
use crate::opendata;

/// What a deployment publishes about itself.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// "Préfecture du Morbihan".
    pub publisher: String,
    /// "Covid-19".
    pub crisis: String,
    pub scope: Scope,
    pub settings: Settings,
}

impl SiteConfig {
    /// The site's configuration from the process options.
    pub fn from_settings(
        settings: &decompte_config::Options,
    ) -> Result<Self, decompte_config::ConfigError> {
        Ok(Self {
            publisher: settings.publisher.clone(),
            crisis: settings.crisis.clone(),
            scope: settings.scope()?,
            settings: settings.rules()?.settings,
        })
    }
}

/// A rendered site: every file by path, and the data watermark.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedSite {
    pub files: BTreeMap<String, Vec<u8>>,
    /// The latest `recorded_at` among the reports shown.
    pub watermark: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template {0}: {1}")]
    Template(String, minijinja::Error),
    #[error("chart: {0}")]
    Chart(#[from] crate::charts::ChartError),
    #[error("open data: {0}")]
    Data(String),
}

/// Reports written by `decompte serve --demo` carry this author; their presence
/// puts the demonstration banner on every page.
pub const DEMO_AUTHOR: &str = "demonstration";

/// Renders the whole site: every page, chart, open data file and asset.
pub fn render(
    reports: &[Report],
    config: &SiteConfig,
    today: NaiveDate,
) -> Result<RenderedSite, RenderError> {
    let pages = Pages::new(reports, config, today);
    let mut files = BTreeMap::new();
    files.insert(
        pages.stylesheet_path.clone(),
        decompte_templates::STYLESHEET.as_bytes().to_vec(),
    );
    files.insert("index.html".into(), pages.overview()?);
    pages.communes(&mut files)?;
    pages.settings(&mut files)?;
    files.insert(
        "methodologie.html".into(),
        pages.page("site/methodologie.html", pages.base(""))?,
    );
    // Served for any missing address, at any depth: its links start at the site's root.
    files.insert(
        "404.html".into(),
        pages.page("site/404.html", pages.base("/"))?,
    );
    open_data(reports, config, &mut files)?;
    Ok(RenderedSite {
        files,
        watermark: pages.watermark,
    })
}

/// What every page is rendered from: the templates, the configuration, the
/// reports in scope and their aggregates.
struct Pages<'a> {
    env: minijinja::Environment<'static>,
    config: &'a SiteConfig,
    in_scope: Vec<&'a Report>,
    aggregates: Aggregates,
    today: NaiveDate,
    watermark: Option<DateTime<Utc>>,
    demo: bool,
    colors: Vec<&'static str>,
    settings_list: Vec<Value>,
    stylesheet_path: String,
}

impl<'a> Pages<'a> {
    fn new(reports: &'a [Report], config: &'a SiteConfig, today: NaiveDate) -> Self {
        let settings = &config.settings;
        let scope = &config.scope;
        let in_scope: Vec<&Report> = reports
            .iter()
            .filter(|r| scope.contains(&r.commune))
            .collect();
        let aggregates = Aggregates::compute(reports, scope, settings);
        let watermark = in_scope.iter().map(|r| r.recorded_at).max();
        let demo = in_scope.iter().any(|r| r.recorded_by == DEMO_AUTHOR);
        Self {
            env: decompte_templates::environment(),
            config,
            in_scope,
            aggregates,
            today,
            watermark,
            demo,
            colors: (0..settings.len()).map(charts::color).collect(),
            settings_list: settings
                .iter()
                .map(|s| json!({"key": s.key, "label": s.label}))
                .collect(),
            stylesheet_path: format!(
                "assets/style.{}.css",
                &hex::encode(Sha256::digest(decompte_templates::STYLESHEET))[..12]
            ),
        }
    }

    /// The context every page shares; `root` leads from the page to the site's root.
    fn base(&self, root: &str) -> Value {
        let scope = &self.config.scope;
        json!({
            "root": root,
            "stylesheet": self.stylesheet_path,
            "crisis": self.config.crisis,
            "territory": scope.label(),
            "publisher": self.config.publisher,
            "demo": self.demo,
            "settings": self.settings_list,
            "colors": self.colors,
            "expected": scope.len(),
        })
    }

    fn page(&self, name: &str, context: Value) -> Result<Vec<u8>, RenderError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(context))
            .map(String::into_bytes)
            .map_err(|e| RenderError::Template(name.into(), e))
    }

    /// `index.html`: totals, charts, completeness of the last days, every commune.
    fn overview(&self) -> Result<Vec<u8>, RenderError> {
        let (settings, scope, aggregates, colors, in_scope, today, watermark) = (
            &self.config.settings,
            &self.config.scope,
            &self.aggregates,
            &self.colors,
            &self.in_scope,
            self.today,
            self.watermark,
        );
        let base = |root: &str| self.base(root);
        let mut context = base("");
        let totals: Vec<Value> = settings
            .iter()
            .zip(&aggregates.by_setting)
            .enumerate()
            .map(|(i, (s, total))| {
                json!({
                    "key": s.key,
                    "label": s.label,
                    "total": total,
                    "color": colors[i],
                })
            })
            .collect();
        // The seven days up to today; when reporting stopped more than a week ago
        // (a crisis that ended, demonstration data), the seven days up to the last report.
        let last_reported = in_scope.iter().map(|r| r.date).max();
        let window_end = match last_reported {
            Some(last) if last < today - Duration::days(7) => last,
            _ => today,
        };
        let completeness: Vec<Value> = (0..7)
            .map(|back| window_end - Duration::days(back))
            .map(|date| {
                let reported = in_scope
                    .iter()
                    .filter(|r| r.date == date)
                    .map(|r| r.commune.clone())
                    .collect();
                let c = Completeness::compute(date, scope, &reported);
                json!({
                    "date_fr": fr_date(date),
                    "reported": c.reported.len(),
                    "expected": c.expected,
                    "percent": c.percent(),
                })
            })
            .collect();
        let communes: Vec<Value> = aggregates
            .communes
            .iter()
            .map(|c| {
                json!({
                    "code": c.commune.code,
                    "name": c.commune.name,
                    "population": c.commune.population,
                    "total": c.total,
                    "per_100k": c.per_100k,
                    "days_reported": c.days_reported,
                })
            })
            .collect();
        merge(
            &mut context,
            json!({
                "updated_fr": watermark.map(fr_datetime),
                "first_fr": aggregates.days.first().map(|d| fr_date(d.date)),
                "last_fr": aggregates.days.last().map(|d| fr_date(d.date)),
                "total": aggregates.total,
                "per_100k": aggregates.per_100k,
                "settings_totals": totals,
                "days": day_rows(&aggregates.days),
                "chart_daily": stacked_chart(
                    &aggregates.days,
                    colors,
                    "overview-daily",
                    &format!("Décès par jour et par lieu, {}", scope.label()),
                )?,
                "chart_cumulative": cumulative_chart(
                    &aggregates.days,
                    "overview-cumulative",
                    &format!("Décès cumulés, {}", scope.label()),
                )?,
                "completeness": completeness,
                "communes": communes,
            }),
        );
        self.page("site/index.html", context)
    }

    /// `communes/{code}.html`: one page per commune in scope.
    fn communes(&self, files: &mut BTreeMap<String, Vec<u8>>) -> Result<(), RenderError> {
        let (settings, aggregates, colors, in_scope) = (
            &self.config.settings,
            &self.aggregates,
            &self.colors,
            &self.in_scope,
        );
        let base = |root: &str| self.base(root);
        let page = |name: &str, context: Value| self.page(name, context);
        let mut last_recorded: BTreeMap<&CommuneCode, DateTime<Utc>> = BTreeMap::new();
        for report in in_scope.iter() {
            let latest = last_recorded
                .entry(&report.commune)
                .or_insert(report.recorded_at);
            *latest = (*latest).max(report.recorded_at);
        }
        for row in &aggregates.communes {
            let code = &row.commune.code;
            let days = aggregates
                .commune_days
                .get(code)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let updated = last_recorded.get(code).copied();
            let mut context = base("../");
            let totals: Vec<Value> = settings
                .iter()
                .zip(&row.by_setting)
                .enumerate()
                .map(
                    |(i, (s, total))| json!({"label": s.label, "total": total, "color": colors[i]}),
                )
                .collect();
            let chart = if days.is_empty() {
                Value::Null
            } else {
                // Communes report sparsely: the chart covers their own first to last day.
                let filled = fill_days(days, settings.len());
                json!(stacked_chart(
                    &filled,
                    colors,
                    &format!("commune-{code}"),
                    &format!("Décès par jour et par lieu, {}", row.commune.name)
                )?)
            };
            merge(
                &mut context,
                json!({
                    "commune": {
                        "code": code,
                        "name": row.commune.name,
                        "population": row.commune.population,
                    },
                    "updated_fr": updated.map(fr_datetime),
                    "total": row.total,
                    "per_100k": row.per_100k,
                    "settings_totals": totals,
                    "days": day_rows(days),
                    "chart_daily": chart,
                }),
            );
            files.insert(
                format!("communes/{code}.html"),
                page("site/commune.html", context)?,
            );
        }

        Ok(())
    }

    /// `lieux/{key}.html`: one page per setting.
    fn settings(&self, files: &mut BTreeMap<String, Vec<u8>>) -> Result<(), RenderError> {
        let (settings, aggregates, colors) =
            (&self.config.settings, &self.aggregates, &self.colors);
        let base = |root: &str| self.base(root);
        let page = |name: &str, context: Value| self.page(name, context);
        for (index, setting) in settings.iter().enumerate() {
            let days: Vec<Value> = {
                let mut cumulative = 0;
                aggregates
                    .days
                    .iter()
                    .map(|d| {
                        cumulative += d.by_setting[index];
                        json!({
                            "date_fr": fr_date(d.date),
                            "count": d.by_setting[index],
                            "cumulative": cumulative,
                        })
                    })
                    .collect()
            };
            let mut communes: Vec<(&decompte_core::Commune, u64)> = aggregates
                .communes
                .iter()
                .map(|c| (&c.commune, c.by_setting[index]))
                .filter(|(_, n)| *n > 0)
                .collect();
            communes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.code.cmp(&b.0.code)));
            let communes: Vec<Value> = communes
                .into_iter()
                .map(|(c, n)| {
                    json!({
                        "code": c.code,
                        "name": c.name,
                        "count": n,
                        "per_100k": per_100k(n, c.population),
                    })
                })
                .collect();
            let total = aggregates.by_setting[index];
            let chart = match aggregates.days.first() {
                None => Value::Null,
                Some(first) => {
                    let series = vec![aggregates
                        .days
                        .iter()
                        .map(|d| d.by_setting[index])
                        .collect()];
                    let title = format!("Décès par jour · {}", setting.label);
                    json!(charts::stacked_bars(
                        first.date,
                        &series,
                        &[colors[index]],
                        &Caption {
                            id: &format!("lieu-{}", setting.key),
                            title: &title,
                            description: &describe_days(&aggregates.days, |d| d.by_setting[index]),
                        }
                    )
                    .map_err(RenderError::Chart)?)
                }
            };
            let mut context = base("../");
            merge(
                &mut context,
                json!({
                    "setting": {"key": setting.key, "label": setting.label},
                    "color": colors[index],
                    "total": total,
                        "days": if aggregates.days.is_empty() { Value::Null } else { json!(days) },
                    "chart_daily": chart,
                    "communes": communes,
                }),
            );
            files.insert(
                format!("lieux/{}.html", setting.key),
                page("site/lieu.html", context)?,
            );
        }

        Ok(())
    }
}

/// `donnees/`: the CSV, the JSON, the Table Schema and the Data Package.
fn open_data(
    reports: &[Report],
    config: &SiteConfig,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), RenderError> {
    let (settings, scope) = (&config.settings, &config.scope);
    let rows = opendata::rows(reports, scope, settings);
    files.insert(
        "donnees/deces.csv".into(),
        opendata::csv(&rows).map_err(|e| RenderError::Data(e.to_string()))?,
    );
    files.insert(
        "donnees/deces.json".into(),
        opendata::json(&rows).map_err(|e| RenderError::Data(e.to_string()))?,
    );
    files.insert(
        "donnees/schema.json".into(),
        pretty(&opendata::schema(settings))?,
    );
    let title = format!(
        "Décès {} par commune et lieu de décès, {}",
        config.crisis,
        scope.label()
    );
    files.insert(
        "donnees/datapackage.json".into(),
        pretty(&opendata::datapackage(&title))?,
    );

    Ok(())
}

fn pretty(value: &Value) -> Result<Vec<u8>, RenderError> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| RenderError::Data(e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

fn day_rows(days: &[DayRow]) -> Vec<Value> {
    days.iter()
        .map(|d| {
            json!({"date_fr": fr_date(d.date), "by_setting": d.by_setting, "total": d.total,
                   "cumulative": d.cumulative, "reporting": d.reporting})
        })
        .collect()
}

/// Fills the gaps between a commune's reported days with zero days, for its chart.
fn fill_days(days: &[DayRow], width: usize) -> Vec<DayRow> {
    let mut out: Vec<DayRow> = Vec::with_capacity(days.len());
    for day in days {
        if let Some(last) = out.last() {
            let mut next = last.date + Duration::days(1);
            let cumulative = last.cumulative;
            while next < day.date {
                out.push(DayRow {
                    date: next,
                    by_setting: vec![0; width],
                    total: 0,
                    cumulative,
                    reporting: 0,
                });
                next += Duration::days(1);
            }
        }
        out.push(day.clone());
    }
    out
}

fn describe_days(days: &[DayRow], value: impl Fn(&DayRow) -> u64) -> String {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return "Aucune donnée.".into();
    };
    let total: u64 = days.iter().map(&value).sum();
    let peak = days
        .iter()
        .max_by_key(|d| (value(d), std::cmp::Reverse(d.date)));
    let peak = peak.map_or(String::new(), |d| {
        format!(" Maximum : {} décès le {}.", value(d), fr_date(d.date))
    });
    format!(
        "Du {} au {}, {} jours, {} décès au total.{}",
        fr_date(first.date),
        fr_date(last.date),
        days.len(),
        total,
        peak
    )
}

fn stacked_chart(
    days: &[DayRow],
    colors: &[&str],
    id: &str,
    title: &str,
) -> Result<Value, RenderError> {
    let Some(first) = days.first() else {
        return Ok(Value::Null);
    };
    let width = first.by_setting.len();
    let series: Vec<Vec<u64>> = (0..width)
        .map(|i| days.iter().map(|d| d.by_setting[i]).collect())
        .collect();
    let svg = charts::stacked_bars(
        first.date,
        &series,
        colors,
        &Caption {
            id,
            title,
            description: &describe_days(days, |d| d.total),
        },
    )
    .map_err(RenderError::Chart)?;
    Ok(json!(svg))
}

fn cumulative_chart(days: &[DayRow], id: &str, title: &str) -> Result<Value, RenderError> {
    let Some(first) = days.first() else {
        return Ok(Value::Null);
    };
    let values: Vec<u64> = days.iter().map(|d| d.cumulative).collect();
    let description = format!(
        "Du {} au {}, le cumul passe de {} à {} décès.",
        fr_date(first.date),
        days.last().map_or(String::new(), |d| fr_date(d.date)),
        first.cumulative,
        values.last().copied().unwrap_or(0)
    );
    let svg = charts::line(
        first.date,
        &values,
        "#1b1b1b",
        &Caption {
            id,
            title,
            description: &description,
        },
    )
    .map_err(RenderError::Chart)?;
    Ok(json!(svg))
}
