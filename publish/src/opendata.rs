//! The open data files: `donnees/deces.csv`, `deces.json`, `schema.json` and
//! `datapackage.json` (Table Schema / Data Package), Licence Ouverte / Etalab 2.0.

use std::borrow::Cow;

use decompte_core::spreadsheet::write_cell;
use decompte_core::{Report, Scope, Settings};
use serde::Serialize;
use serde_json::json;

/// One row of `deces.csv`: a (commune, day, setting) with its current count.
/// Text cells are safe for spreadsheets ([`write_cell`]): `decompte import`
/// reads them back as they were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row<'a> {
    pub date: String,
    pub code_commune: &'a str,
    pub nom_commune: Cow<'a, str>,
    pub lieu: Cow<'a, str>,
    pub deces: u32,
}

pub const CSV_HEADER: &str = "date,code_commune,nom_commune,lieu,deces";

/// Rows in a stable order: date, commune, then settings in their configured order.
/// Reports out of scope are left out, like on every other page.
pub fn rows<'a>(reports: &'a [Report], scope: &'a Scope, settings: &'a Settings) -> Vec<Row<'a>> {
    let mut sorted: Vec<&Report> = reports
        .iter()
        .filter(|r| scope.contains(&r.commune))
        .collect();
    sorted.sort_by(|a, b| (a.date, &a.commune).cmp(&(b.date, &b.commune)));
    let mut out = Vec::with_capacity(sorted.len() * settings.len());
    for report in sorted {
        let name = write_cell(scope.get(&report.commune).map_or("", |c| c.name.as_str()));
        let date = report.date.to_string();
        for key in settings.keys() {
            out.push(Row {
                date: date.clone(),
                code_commune: report.commune.as_str(),
                nom_commune: name.clone(),
                lieu: write_cell(key),
                deces: report.count(key),
            });
        }
    }
    out
}

pub fn csv(rows: &[Row<'_>]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(true)
        .from_writer(Vec::new());
    for row in rows {
        writer.serialize(row)?;
    }
    if rows.is_empty() {
        return Ok(format!("{CSV_HEADER}\n").into_bytes());
    }
    writer.into_inner().map_err(|e| e.into_error().into())
}

pub fn json(rows: &[Row<'_>]) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = serde_json::to_vec(rows)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The Table Schema of `deces.csv`.
pub fn schema(settings: &Settings) -> serde_json::Value {
    json!({
        "fields": [
            {"name": "date", "type": "date", "format": "default", "title": "Jour du décès",
             "description": "Jour du décès (heure de Paris), format ISO 8601 AAAA-MM-JJ.",
             "constraints": {"required": true}},
            {"name": "code_commune", "type": "string", "title": "Code INSEE de la commune",
             "description": "Code officiel géographique de la commune où le décès est survenu.",
             "constraints": {"required": true, "pattern": "^([0-9]{2}|2A|2B)[0-9]{3}$"}},
            {"name": "nom_commune", "type": "string", "title": "Nom de la commune",
             "constraints": {"required": true}},
            {"name": "lieu", "type": "string", "title": "Lieu du décès",
             "description": settings.iter().map(|s| format!("{} : \
                 {}", s.key, s.label)).collect::<Vec<_>>().join(" ; "),
             "constraints": {"required": true, "enum": settings.keys().collect::<Vec<_>>()}},
            {"name": "deces", "type": "integer", "title": "Nombre de décès",
             "description": "Valeur actuelle (dernière version) de la déclaration ; 0 est une \
                 déclaration explicite.",
             "constraints": {"required": true, "minimum": 0}}
        ],
        "primaryKey": ["date", "code_commune", "lieu"],
        "missingValues": [""]
    })
}

/// A Data Package describing the CSV, so that `frictionless validate` checks it.
pub fn datapackage(title: &str) -> serde_json::Value {
    json!({
        "name": "decompte-deces",
        "title": title,
        "licenses": [{"name": "etalab-2.0", "title": "Licence Ouverte / Open Licence 2.0",
                      "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"}],
        "resources": [{
            "name": "deces",
            "path": "deces.csv",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": "schema.json"
        }]
    })
}
