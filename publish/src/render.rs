//! Rendering: pages, charts and open data, by level. A commune page is made
//! of the commune's reports; a département's page, data files and commune
//! pages of the département's reports ([`DepartementReports`]); the
//! overview and the setting pages of the départements' [`Summary`]s only.
//! Nothing depends on the clock except through `today`, so the same
//! reports always give the same bytes (which makes publication incremental).
//!
//! With one département the site is its overview (`index.html`, listing its
//! communes); with several, `index.html` is the scope's level, listing its
//! départements, and each has `departements/{code}.html` listing its communes.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use decompte_core::aggregate::per_100k;
use decompte_core::completeness::percent;
use decompte_core::time::{fr_date, fr_datetime, fr_datetime_in, zone_label};
use decompte_core::{Commune, Report, Scope, Settings};
use rayon::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::charts::{self, Caption};
use crate::map::{self, Area};
use crate::model::{add_days, DayCounts, DaySummary, DepartementReports, Protection, Summary};
use crate::opendata;
use crate::paths;
use decompte_templates::format_int;

/// What a deployment publishes about itself.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// "Préfecture du Morbihan".
    pub publisher: String,
    /// "Covid-19".
    pub crisis: String,
    /// The « République française » brand and Marianne (`--theme etat`).
    pub state_brand: bool,
    pub scope: Scope,
    pub settings: Settings,
    /// The rule of small counts, `k` (`--small-counts`): see [`crate::model::Protection`].
    pub small_counts: Option<u32>,
}

impl SiteConfig {
    /// The site's configuration from the process options.
    pub fn from_options(
        options: &decompte_config::Options,
    ) -> Result<Self, decompte_config::ConfigError> {
        Ok(Self {
            publisher: options.publisher.clone(),
            crisis: options.crisis.clone(),
            state_brand: options.state_brand(),
            scope: options.scope()?,
            settings: options.rules()?.settings,
            small_counts: options.small_counts,
        })
    }

    /// The communes' own figures are published (the rule of small counts is off).
    pub fn commune_figures(&self) -> bool {
        self.small_counts.is_none()
    }

    /// The rule of small counts, if on.
    pub fn protection(&self) -> Option<Protection> {
        self.small_counts.map(|k| Protection { k })
    }

    /// What the renderer may read of a département: all of it, or under
    /// the rule of small counts its masked view ([`Protection`]). The one
    /// way to a [`Publishable`], and so to a page.
    pub fn publishable<'v, 'a>(
        &self,
        departement: &'v DepartementReports<'a>,
    ) -> Publishable<'v, 'a> {
        let mut summary = departement.summary(self.settings.len());
        let masked = self.protection().map(|protection| {
            protection.mask_summary(&mut summary);
            protection.mask(departement)
        });
        Publishable {
            summary,
            masked,
            whole: departement,
        }
    }

    /// Several départements: the site has a level per département.
    pub fn by_departement(&self) -> bool {
        self.scope.departement_codes().nth(1).is_some()
    }
}

/// A département as the site may show it: its summary and its reports,
/// masked under the rule of small counts. Only [`SiteConfig::publishable`]
/// makes one, and the renderer reads a département through nothing else,
/// so an unmasked figure cannot reach a page.
pub struct Publishable<'v, 'a> {
    summary: Summary,
    masked: Option<DepartementReports<'a>>,
    whole: &'v DepartementReports<'a>,
}

impl<'v, 'a> Publishable<'v, 'a> {
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The reports the pages may show.
    pub fn reports(&self) -> &DepartementReports<'a> {
        self.masked.as_ref().unwrap_or(self.whole)
    }

    /// Whether the rule of small counts masked it.
    pub fn is_masked(&self) -> bool {
        self.masked.is_some()
    }

    /// The summary, what the scope's pages are made of.
    pub fn into_summary(self) -> Summary {
        self.summary
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

/// Files by path.
pub type Files = Vec<(String, Vec<u8>)>;

/// Renders the whole site in memory: every page, chart, open data file and
/// asset. The publisher renders the same files département by département.
pub fn render(
    reports: &[Report],
    config: &SiteConfig,
    today: NaiveDate,
) -> Result<RenderedSite, RenderError> {
    let departements = DepartementReports::all(&config.scope, &config.settings, reports);
    let published: Vec<Publishable<'_, '_>> =
        departements.iter().map(|d| config.publishable(d)).collect();
    let renderer = Renderer::new(config, today, published.iter().any(|p| p.summary().demo));
    let mut files: BTreeMap<String, Vec<u8>> = renderer.stylesheet().into_iter().collect();
    let mut parts = Vec::new();
    for departement in &published {
        let rendered = renderer.departement(departement, None)?;
        files.extend(rendered.files);
        parts.push(rendered.data);
    }
    let summaries: Vec<Summary> = published
        .into_iter()
        .map(Publishable::into_summary)
        .collect();
    files.extend(renderer.scope_data(&parts));
    files.extend(renderer.scope_pages(&summaries)?);
    Ok(RenderedSite {
        files,
        watermark: summaries.iter().filter_map(|s| s.watermark).max(),
    })
}

/// What rendering a département gives: its files, and its part of the
/// whole-scope CSV (the rows without header, plain and gzipped).
pub struct RenderedDepartement {
    pub files: Files,
    pub data: DataPart,
}

/// A département's rows in the whole-scope CSV.
#[derive(Debug, Clone, Default)]
pub struct DataPart {
    pub code: String,
    pub csv: Vec<u8>,
    pub gz: Vec<u8>,
}

/// Everything pages share: the templates, the configuration, today and the
/// demonstration flag.
pub struct Renderer<'a> {
    env: minijinja::Environment<'static>,
    config: &'a SiteConfig,
    today: NaiveDate,
    demo: bool,
    colors: Vec<&'static str>,
    settings_list: Vec<Value>,
    stylesheet_path: String,
    header: String,
    header_gz: Vec<u8>,
}

impl<'a> Renderer<'a> {
    pub fn new(config: &'a SiteConfig, today: NaiveDate, demo: bool) -> Self {
        let settings = &config.settings;
        let header = match config.small_counts {
            None => opendata::header(settings),
            Some(_) => opendata::protected_header(settings),
        };
        Self {
            env: decompte_templates::environment(),
            config,
            today,
            demo,
            colors: (0..settings.len()).map(charts::color).collect(),
            settings_list: settings
                .iter()
                .map(|s| json!({"key": s.key, "label": s.label}))
                .collect(),
            stylesheet_path: paths::stylesheet(
                &hex::encode(Sha256::digest(decompte_templates::STYLESHEET))[..12],
            ),
            header_gz: opendata::gzip(header.as_bytes()),
            header,
        }
    }

    fn multi(&self) -> bool {
        self.config.by_departement()
    }

    /// The fingerprinted stylesheet and the DSFR's files (under a folder
    /// named by its version), written before any page links to them.
    pub fn stylesheet(&self) -> Files {
        let mut files = vec![(
            self.stylesheet_path.clone(),
            decompte_templates::STYLESHEET.as_bytes().to_vec(),
        )];
        files.extend(
            decompte_templates::DSFR_FILES
                .iter()
                .map(|(path, bytes)| (format!("{}/{path}", dsfr_folder()), bytes.to_vec())),
        );
        files
    }

    /// The CSV header, plain and gzipped: what a composed whole-scope file
    /// starts with, and what each département's file is read from after.
    pub fn data_heads(&self) -> (&[u8], &[u8]) {
        (self.header.as_bytes(), &self.header_gz)
    }

    /// The context every page shares; `root` leads from the page to the site's root.
    fn base(&self, root: &str) -> Value {
        let scope = &self.config.scope;
        json!({
            "root": root,
            "stylesheet": self.stylesheet_path,
            "dsfr": format!("{}/dsfr.min.css", dsfr_folder()),
            "dsfr_fonts": format!("{}/fonts", dsfr_folder()),
            "accessibility": { "mention": decompte_templates::rgaa::audit().mention },
            "state_brand": self.config.state_brand,
            "crisis": self.config.crisis,
            "territory": scope.label(),
            "publisher": self.config.publisher,
            "demo": self.demo,
            "settings": self.settings_list,
            "colors": self.colors,
            "expected": scope.len(),
            "by_departement": self.multi(),
            "small_counts": self.config.small_counts,
        })
    }

    fn page(&self, name: &str, context: Value) -> Result<Vec<u8>, RenderError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(context))
            .map(String::into_bytes)
            .map_err(|e| RenderError::Template(name.into(), e))
    }

    /// A département's files: its communes' pages (all of them, or only
    /// `communes` if given), its own page and data files with several
    /// départements, and its part of the whole-scope CSV.
    pub fn departement(
        &self,
        view: &Publishable<'_, '_>,
        communes: Option<&std::collections::BTreeSet<String>>,
    ) -> Result<RenderedDepartement, RenderError> {
        let (departement, summary) = (view.reports(), view.summary());
        // The commune pages, the CSV (and its compression) and the JSON,
        // on every core.
        let order = departement.day_order();
        let ((pages, json), (csv, gz)) = rayon::join(
            || {
                rayon::join(
                    || {
                        departement
                            .communes
                            .par_iter()
                            .filter(|(commune, _)| {
                                communes.is_none_or(|only| only.contains(commune.code.as_str()))
                            })
                            .map(|(commune, days)| {
                                self.commune_page(commune, days)
                                    .map(|page| (paths::commune(commune.code.as_str()), page))
                            })
                            .collect::<Result<Vec<_>, _>>()
                    },
                    || match self.config.small_counts {
                        None => opendata::columnar_json(departement, &order, &self.config.settings),
                        Some(_) => opendata::protected_json(
                            summary,
                            departement.name,
                            &self.config.settings,
                        ),
                    },
                )
            },
            || {
                let csv = match self.config.small_counts {
                    None => opendata::csv_body(departement, &order),
                    Some(_) => opendata::protected_csv_body(summary, departement.name),
                };
                let gz = opendata::gzip_parallel(&csv);
                (csv, gz)
            },
        );
        let mut files = pages?;
        if self.multi() {
            files.push((
                paths::departement(departement.code),
                self.departement_page(summary)?,
            ));
            let [csv_path, gz_path, json_path] = paths::departement_data(departement.code);
            let mut whole = Vec::with_capacity(self.header.len() + csv.len());
            whole.extend_from_slice(self.header.as_bytes());
            whole.extend_from_slice(&csv);
            let mut whole_gz = Vec::with_capacity(self.header_gz.len() + gz.len());
            whole_gz.extend_from_slice(&self.header_gz);
            whole_gz.extend_from_slice(&gz);
            files.push((csv_path, whole));
            files.push((gz_path, whole_gz));
            files.push((json_path, json));
        } else {
            files.push((paths::DATA_JSON.into(), json));
        }
        Ok(RenderedDepartement {
            files,
            data: DataPart {
                code: departement.code.to_owned(),
                csv,
                gz,
            },
        })
    }

    /// The whole-scope CSV, plain and gzipped, from the départements' parts
    /// in code order.
    pub fn scope_data(&self, parts: &[DataPart]) -> Files {
        let mut csv = Vec::with_capacity(
            self.header.len() + parts.iter().map(|p| p.csv.len()).sum::<usize>(),
        );
        let mut gz = Vec::with_capacity(
            self.header_gz.len() + parts.iter().map(|p| p.gz.len()).sum::<usize>(),
        );
        csv.extend_from_slice(self.header.as_bytes());
        gz.extend_from_slice(&self.header_gz);
        for part in parts {
            csv.extend_from_slice(&part.csv);
            gz.extend_from_slice(&part.gz);
        }
        vec![
            (paths::DATA_CSV.into(), csv),
            (paths::DATA_CSV_GZ.into(), gz),
        ]
    }

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
    fn site_map(&self) -> Result<Vec<u8>, RenderError> {
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
    fn recent_days(&self, days: &[DaySummary]) -> Vec<NaiveDate> {
        let today = self.today;
        let window_end = match days.last().map(|d| d.date) {
            Some(last) if last < today - Duration::days(7) => last,
            _ => today,
        };
        (0..7)
            .map(|back| window_end - Duration::days(back))
            .collect()
    }

    fn completeness(&self, days: &[DaySummary], expected: usize) -> Vec<Value> {
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

    fn totals(&self, by_setting: &[u64], link: bool) -> Vec<Value> {
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
    fn level(
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
    fn commune_rows(&self, summary: &Summary) -> Vec<Value> {
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
    fn population_of(&self, departement: &str) -> u64 {
        self.config
            .scope
            .communes()
            .filter(|c| c.departement == departement)
            .map(|c| c.population)
            .sum()
    }

    /// The map of the communes of `summaries`, each linked from `root`, the
    /// communes that did not declare the last day hatched.
    fn commune_map(&self, summaries: &[&Summary], label: &str, root: &str) -> Option<map::Map> {
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
    fn overview(&self, summaries: &[Summary]) -> Result<Vec<u8>, RenderError> {
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
                    let communes = scope.communes().filter(|c| c.departement == s.code);
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

    /// `departements/{code}.html`: the département's totals, charts,
    /// completeness and communes.
    pub fn departement_page(&self, summary: &Summary) -> Result<Vec<u8>, RenderError> {
        let scope = &self.config.scope;
        let name = scope
            .departement_name(&summary.code)
            .unwrap_or(&summary.code);
        let label = format!("{name} ({})", summary.code);
        let (expected, population) = scope
            .communes()
            .filter(|c| c.departement == summary.code)
            .fold((0usize, 0u64), |(n, p), c| (n + 1, p + c.population));
        let mut context = self.level(
            "../",
            &[summary],
            &label,
            population,
            expected,
            &format!("departement-{}", summary.code),
        )?;
        merge(
            &mut context,
            json!({
                "departement": {"code": summary.code, "name": name, "label": label},
                "communes": self.commune_rows(summary),
                "map": self.commune_map(&[summary], &label, "../"),
                "map_of": "communes",
            }),
        );
        self.page("site/departement.html", context)
    }

    /// `communes/{code}.html`: one commune's days.
    pub fn commune_page(
        &self,
        commune: &Commune,
        days: &[DayCounts],
    ) -> Result<Vec<u8>, RenderError> {
        let width = self.config.settings.len();
        let updated = days.iter().map(|d| d.recorded_at).max();
        let lines: Vec<DaySummary> = days
            .iter()
            .map(|d| DaySummary {
                by_setting: d.counts.iter().map(|n| u64::from(*n)).collect(),
                reporting: 1,
                ..DaySummary::new(d.date, 0)
            })
            .collect();
        let by_setting = sum_settings(lines.iter().map(|d| &d.by_setting), width);
        let total: u64 = by_setting.iter().sum();
        let chart = if lines.is_empty() || !self.config.commune_figures() {
            Value::Null
        } else {
            // Communes report sparsely: the chart covers their own first to last day.
            stacked_chart(
                &filled(&lines, width),
                &self.colors,
                &format!("commune-{}", commune.code),
                &format!("Décès par jour et par lieu, {}", commune.name),
            )?
        };
        let up = if self.multi() {
            let name = self
                .config
                .scope
                .departement_name(&commune.departement)
                .unwrap_or(&commune.departement);
            json!({"href": format!("../departements/{}.html", commune.departement),
                   "label": format!("{name} ({})", commune.departement)})
        } else {
            json!({"href": "../index.html", "label": "Vue d'ensemble"})
        };
        let mut context = self.base("../");
        merge(
            &mut context,
            json!({
                "commune": {
                    "code": commune.code,
                    "name": commune.name,
                    "population": commune.population,
                },
                "up": up,
                "declared": !days.is_empty(),
                "updated_fr": updated
                    .filter(|_| self.config.commune_figures())
                    .map(|at| fr_datetime_in(at, &commune.departement)),
                "clock": zone_label(&commune.departement),
                "total": total,
                "per_100k": per_100k(total, commune.population),
                "settings_totals": self.totals(&by_setting, false),
                "day_count": lines.len(),
                "first_day_fr": lines.first().map(|d| fr_date(d.date)),
                "last_day_fr": lines.last().map(|d| fr_date(d.date)),
                // Written here, not by the template: a commune page of a
                // year is 365 rows, and the country has 35,000 communes.
                "days": commune_days(&lines, width, self.config.commune_figures()),
                "chart_daily": chart,
            }),
        );
        self.page("site/commune.html", context)
    }

    /// `lieux/{key}.html`: one page per setting, by day, and by commune (one
    /// département) or by département (several).
    fn setting_pages(&self, summaries: &[Summary]) -> Result<Files, RenderError> {
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

/// Where the DSFR's files are published: a folder per version and per
/// content of its stylesheet (the vendoring may change it), so they are
/// cached for good like every asset.
fn dsfr_folder() -> &'static str {
    static FOLDER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let stylesheet = decompte_templates::DSFR_FILES
            .iter()
            .find(|(path, _)| *path == "dsfr.min.css")
            .map_or(&[][..], |(_, bytes)| *bytes);
        paths::dsfr(
            decompte_templates::DSFR_VERSION,
            &hex::encode(Sha256::digest(stylesheet))[..8],
        )
    });
    &FOLDER
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

fn sum_settings<'v>(rows: impl Iterator<Item = &'v Vec<u64>>, width: usize) -> Vec<u64> {
    let mut sums = vec![0; width];
    for row in rows {
        for (sum, n) in sums.iter_mut().zip(row) {
            *sum += n;
        }
    }
    sums
}

/// Day lines for a table: the date, the counts, the total, the running
/// total, and how many of the `expected` communes reported (their share in
/// whole percents).
fn day_lines(days: &[DaySummary], expected: usize) -> Vec<Value> {
    let mut cumulative = 0;
    days.iter()
        .map(|d| {
            let total: u64 = d.by_setting.iter().sum();
            cumulative += total;
            let mut line = json!({"date_fr": fr_date(d.date), "by_setting": d.by_setting,
                                  "total": total, "cumulative": cumulative,
                                  "withheld": d.withheld});
            merge(
                &mut line,
                json!({"reporting": d.reporting,
                       "percent": percent(d.reporting as usize, expected)}),
            );
            line
        })
        .collect()
}

/// How many days a commune page lists one by one, before grouping by month.
const RECENT_DAYS: i64 = 28;

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// A commune's days from its first declaration to its last, newest first,
/// each day declared or not (a day without a declaration is no zero): the
/// last four weeks as table rows, the days before grouped by month.
///
/// Without `counts` (the rule of small counts), a declared day says so,
/// without its counts.
fn commune_days(days: &[DaySummary], width: usize, counts: bool) -> Value {
    use chrono::Datelike;
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Value::Null;
    };
    let (first, last) = (first.date, last.date);
    // The running total of each declared day, oldest first.
    let mut cumulative = 0u64;
    let declared: BTreeMap<NaiveDate, (&DaySummary, u64, u64)> = days
        .iter()
        .map(|d| {
            let total: u64 = d.by_setting.iter().sum();
            cumulative += total;
            (d.date, (d, total, cumulative))
        })
        .collect();
    let recent_start = (last - Duration::days(RECENT_DAYS - 1)).max(first);
    let mut number = String::with_capacity(16);
    let mut rows = |from: NaiveDate, to: NaiveDate| {
        let mut html = String::new();
        let (mut total, mut count, mut span) = (0u64, 0u32, 0u32);
        let mut date = to;
        while date >= from {
            span += 1;
            html.push_str("<tr><th scope=\"row\">");
            push_fr_date(&mut html, date);
            html.push_str("</th>");
            match declared.get(&date) {
                Some(_) if !counts => {
                    count += 1;
                    html.push_str("<td>déclaré</td>");
                }
                Some((day, day_total, running)) => {
                    total += day_total;
                    count += 1;
                    for n in day.by_setting.iter().chain([day_total, running]) {
                        html.push_str("<td>");
                        push_fr_int(&mut html, &mut number, *n);
                        html.push_str("</td>");
                    }
                }
                None if !counts => html.push_str("<td class=\"missing\">non déclaré</td>"),
                None => {
                    html.push_str("<td class=\"missing\" colspan=\"");
                    html.push_str(itoa::Buffer::new().format(width + 2));
                    html.push_str("\">non déclaré</td>");
                }
            }
            html.push_str("</tr>\n");
            date -= Duration::days(1);
        }
        (html, total, count, span)
    };
    let (recent_rows, _, recent_declared, recent_span) = rows(recent_start, last);
    let mut months = Vec::new();
    let mut month_end = recent_start - Duration::days(1);
    while month_end >= first {
        let month_start = month_end.with_day(1).unwrap_or(month_end).max(first);
        let (html, total, count, span) = rows(month_start, month_end);
        let month = MONTHS[month_end.month0() as usize];
        months.push(json!({
            "label": format!("{month} {}", month_end.year()),
            "total": total,
            "declared": count,
            "span": span,
            "rows": html,
        }));
        month_end = month_start - Duration::days(1);
    }
    json!({
        "recent_from_fr": fr_date(recent_start),
        "recent_rows": recent_rows,
        "recent_declared": recent_declared,
        "recent_span": recent_span,
        "months": months,
    })
}

/// `01/04/2020`, without the formatting machinery (a year of rows for
/// every commune of the country is 12.8 million dates).
fn push_fr_date(out: &mut String, date: NaiveDate) {
    use chrono::Datelike;
    let (day, month, year) = (date.day(), date.month(), date.year());
    for c in [
        b'0' + (day / 10) as u8,
        b'0' + (day % 10) as u8,
        b'/',
        b'0' + (month / 10) as u8,
        b'0' + (month % 10) as u8,
        b'/',
        b'0' + ((year / 1000) % 10) as u8,
        b'0' + ((year / 100) % 10) as u8,
        b'0' + ((year / 10) % 10) as u8,
        b'0' + (year % 10) as u8,
    ] {
        out.push(char::from(c));
    }
}

/// A count the French way (as `fr_int`): below a thousand, its digits.
fn push_fr_int(out: &mut String, scratch: &mut String, n: u64) {
    if n < 1000 {
        out.push_str(itoa::Buffer::new().format(n));
    } else {
        scratch.clear();
        scratch.push_str(&format_int(n));
        out.push_str(scratch);
    }
}

/// The days from the first to the last, those without a report as zeros,
/// so that charts keep a true time axis.
fn filled(days: &[DaySummary], width: usize) -> Vec<DaySummary> {
    let mut out: Vec<DaySummary> = Vec::with_capacity(days.len());
    for day in days {
        if let Some(last) = out.last() {
            let mut next = last.date + Duration::days(1);
            while next < day.date {
                out.push(DaySummary::new(next, width));
                next += Duration::days(1);
            }
        }
        out.push(day.clone());
    }
    out
}

fn describe_days(days: &[DaySummary], value: impl Fn(&DaySummary) -> u64) -> String {
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
    days: &[DaySummary],
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
    let description = describe_days(days, |d| d.by_setting.iter().sum());
    both_layouts(id, |id, layout| {
        charts::stacked_bars(
            first.date,
            &series,
            colors,
            &Caption {
                id,
                title,
                description: &description,
            },
            layout,
        )
    })
}

/// A chart drawn wide and narrow (`{"wide": svg, "narrow": svg}`): the page
/// shows the one that fits the screen.
fn both_layouts(
    id: &str,
    draw: impl Fn(&str, charts::Layout) -> Result<String, charts::ChartError>,
) -> Result<Value, RenderError> {
    Ok(json!({
        "wide": draw(id, charts::WIDE)?,
        "narrow": draw(&format!("{id}-n"), charts::NARROW)?,
    }))
}

fn cumulative_chart(days: &[DaySummary], id: &str, title: &str) -> Result<Value, RenderError> {
    let Some(first) = days.first() else {
        return Ok(Value::Null);
    };
    let mut running = 0;
    let values: Vec<u64> = days
        .iter()
        .map(|d| {
            running += d.by_setting.iter().sum::<u64>();
            running
        })
        .collect();
    let first_total: u64 = first.by_setting.iter().sum();
    let description = format!(
        "Du {} au {}, le cumul passe de {} à {} décès.",
        fr_date(first.date),
        days.last().map_or(String::new(), |d| fr_date(d.date)),
        first_total,
        values.last().copied().unwrap_or(0)
    );
    both_layouts(id, |id, layout| {
        charts::line(
            first.date,
            &values,
            "#1b1b1b",
            &Caption {
                id,
                title,
                description: &description,
            },
            layout,
        )
    })
}
