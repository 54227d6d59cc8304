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
//!
//! The module is split by concern: `config` (what a deployment publishes,
//! and the one way to what the pages may show), `scope` (the pages made of
//! the départements' summaries), `pages` (a département's and a commune's
//! pages), `format` (French dates and numbers, tables, charts).

mod config;
mod format;
mod pages;
mod scope;

pub use config::{Patched, Publishable, SiteConfig};
use format::*;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use decompte_core::Report;
use rayon::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::charts::{self};
use crate::model::{DepartementReports, Summary};
use crate::opendata;
use crate::paths;
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

/// What a page's templates write besides its context's text, about.
const PAGE_TEXT: usize = 32 << 10;

/// The length of the text in `value`.
fn text_len(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len(),
        Value::Array(values) => values.iter().map(text_len).sum(),
        Value::Object(map) => map.values().map(text_len).sum(),
        _ => 0,
    }
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
        files.extend(decompte_templates::DSFR_NAMES.iter().filter_map(|path| {
            let bytes = decompte_templates::dsfr_file(path)?;
            Some((format!("{}/{path}", dsfr_folder()), bytes.to_vec()))
        }));
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
        // The page holds the context's text (a commune's days and charts
        // are most of it) and the template's: sized once, the buffer is
        // not copied again and again as it grows.
        let mut page = Vec::with_capacity(text_len(&context) + PAGE_TEXT);
        self.env
            .get_template(name)
            .and_then(|t| t.render_captured_to(context, &mut page))
            .map_err(|e| RenderError::Template(name.into(), e))?;
        Ok(page)
    }

    /// A département's files: its communes' pages (all of them, or only
    /// `communes` if given), its own page and data files with several
    /// départements, and its part of the whole-scope CSV.
    pub fn departement(
        &self,
        view: &Publishable<'_, '_>,
        communes: Option<&std::collections::BTreeSet<String>>,
    ) -> Result<RenderedDepartement, RenderError> {
        // The pages and the data files on every core.
        let (pages, data) = rayon::join(
            || self.departement_pages(view, communes),
            || self.departement_data(view),
        );
        let (mut files, data) = (pages?, data?);
        files.extend(data.files);
        Ok(RenderedDepartement {
            files,
            data: data.data,
        })
    }

    /// A département's pages: its communes' (all of them, or only
    /// `communes` if given), and its own with several départements.
    pub fn departement_pages(
        &self,
        view: &Publishable<'_, '_>,
        communes: Option<&std::collections::BTreeSet<String>>,
    ) -> Result<Files, RenderError> {
        let departement = view.reports();
        let mut files = departement
            .communes
            .par_iter()
            .filter(|(commune, _)| communes.is_none_or(|only| only.contains(commune.code.as_str())))
            .map(|(commune, days)| {
                self.commune_page(commune, days)
                    .map(|page| (paths::commune(commune.code.as_str()), page))
            })
            .collect::<Result<Files, _>>()?;
        if self.multi() {
            files.push((
                paths::departement(departement.code),
                self.departement_page(view.summary())?,
            ));
        }
        Ok(files)
    }

    /// The pages of a département patched with the reports written since
    /// the last publication ([`Patched`]): those of `communes`, and its own
    /// with several départements.
    pub fn patched_pages(
        &self,
        patched: &Patched<'_>,
        communes: &std::collections::BTreeSet<String>,
    ) -> Result<Files, RenderError> {
        let summary = patched.summary();
        let mut files = self
            .config
            .scope
            .communes_of(&summary.code)
            .filter(|c| communes.contains(c.code.as_str()))
            .collect::<Vec<_>>()
            .par_iter()
            .map(|commune| {
                self.commune_page(commune, &patched.commune_days(&commune.code))
                    .map(|page| (paths::commune(commune.code.as_str()), page))
            })
            .collect::<Result<Files, _>>()?;
        if self.multi() {
            files.push((
                paths::departement(&summary.code),
                self.departement_page(summary)?,
            ));
        }
        Ok(files)
    }

    /// A département's data files (with several départements; with one,
    /// its JSON, the whole-scope CSV being its part) and its part of the
    /// whole-scope CSV.
    pub fn departement_data(
        &self,
        view: &Publishable<'_, '_>,
    ) -> Result<RenderedDepartement, RenderError> {
        let (departement, summary) = (view.reports(), view.summary());
        // The CSV (and its compression) and the JSON, on every core.
        let order = departement.day_order();
        let (json, (csv, gz)) = rayon::join(
            || match self.config.small_counts {
                None => opendata::columnar_json(departement, &order, &self.config.settings),
                Some(_) => {
                    opendata::protected_json(summary, departement.name, &self.config.settings)
                }
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
        let mut files = Vec::new();
        if self.multi() {
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
}
