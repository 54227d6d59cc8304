//! The open data files, Licence Ouverte / Etalab 2.0.
//!
//! One row per commune and day, a column per setting (lieu de décès) and
//! their total: `deces.csv`, the same gzipped (`deces.csv.gz`), and a
//! columnar `deces.json` (one array per column: what a chart library or a
//! dataframe reads at once, and a third of the size of an array of row
//! objects). With several départements, each has its own files under
//! `donnees/departements/{code}/` besides the whole-scope CSV, which is the
//! concatenation of theirs. Text cells are safe for spreadsheets
//! ([`write_cell`]): `decompte import` reads them back as they were.

use std::io::Write;

use decompte_core::spreadsheet::write_cell;
use decompte_core::Settings;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

use crate::model::DepartementReports;

/// The CSV header: `date,code_commune,nom_commune,` the setting keys, `total`.
pub fn header(settings: &Settings) -> String {
    let mut header = String::from("date,code_commune,nom_commune");
    for key in settings.keys() {
        header.push(',');
        header.push_str(&write_cell(key));
    }
    header.push_str(",total\n");
    header
}

/// The rows of a département, without the header, by day then commune.
pub fn csv_body(departement: &DepartementReports<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(departement.report_count() * 48);
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(&mut out);
    let mut number = itoa::Buffer::new();
    for (commune, report) in departement.by_day() {
        let date = report.date.to_string();
        let name = write_cell(&commune.name);
        // Writing to a Vec cannot fail.
        let _ = writer.write_field(&date);
        let _ = writer.write_field(commune.code.as_str());
        let _ = writer.write_field(name.as_bytes());
        for count in &report.counts {
            let _ = writer.write_field(number.format(*count));
        }
        let _ = writer.write_field(number.format(report.total()));
        let _ = writer.write_record(None::<&[u8]>);
    }
    let _ = writer.flush();
    drop(writer);
    out
}

/// One gzip member of `bytes`, the same bytes for the same input (no name,
/// no time in the header). Members concatenate into a valid gzip file
/// (RFC 1952), which is how the whole-scope file is made of the
/// départements' without compressing them twice.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 6 + 64),
        Compression::new(6),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// The columnar JSON of a département: `{"colonnes": [...], "lignes": n,
/// "donnees": {"date": [...], "code_commune": [...], ...}}`, rows in the
/// order of the CSV.
pub fn columnar_json(departement: &DepartementReports<'_>, settings: &Settings) -> Vec<u8> {
    let rows: Vec<_> = departement.by_day().collect();
    let mut columns = serde_json::Map::new();
    columns.insert(
        "date".into(),
        rows.iter()
            .map(|(_, r)| json!(r.date.to_string()))
            .collect(),
    );
    columns.insert(
        "code_commune".into(),
        rows.iter().map(|(c, _)| json!(c.code.as_str())).collect(),
    );
    columns.insert(
        "nom_commune".into(),
        rows.iter().map(|(c, _)| json!(c.name)).collect(),
    );
    for (index, key) in settings.keys().enumerate() {
        columns.insert(
            key.to_owned(),
            rows.iter().map(|(_, r)| json!(r.counts[index])).collect(),
        );
    }
    columns.insert(
        "total".into(),
        rows.iter().map(|(_, r)| json!(r.total())).collect(),
    );
    let mut names = vec!["date", "code_commune", "nom_commune"];
    names.extend(settings.keys());
    names.push("total");
    let document = json!({
        "departement": departement.code,
        "colonnes": names,
        "lignes": rows.len(),
        "donnees": Value::Object(columns),
    });
    let mut bytes = serde_json::to_vec(&document).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The Table Schema of every `deces.csv`.
pub fn schema(settings: &Settings) -> Value {
    let mut fields = vec![
        json!({"name": "date", "type": "date", "format": "default", "title": "Jour du décès",
               "description": "Jour du décès, dans le fuseau horaire du département (heure de \
                   Paris en métropole), format ISO 8601 AAAA-MM-JJ.",
               "constraints": {"required": true}}),
        json!({"name": "code_commune", "type": "string", "title": "Code INSEE de la commune",
               "description": "Code officiel géographique de la commune où le décès est survenu.",
               "constraints": {"required": true, "pattern": "^([0-9]{2}|2A|2B)[0-9]{3}$"}}),
        json!({"name": "nom_commune", "type": "string", "title": "Nom de la commune",
               "constraints": {"required": true}}),
    ];
    for setting in settings.iter() {
        fields.push(json!({
            "name": setting.key, "type": "integer", "title": setting.label,
            "description": format!("Décès survenus le jour dit, lieu : {} (valeur actuelle, \
                dernière version de la déclaration ; 0 est une déclaration explicite).",
                setting.label),
            "constraints": {"required": true, "minimum": 0},
        }));
    }
    fields.push(json!({"name": "total", "type": "integer", "title": "Total",
                       "description": "Somme des lieux de décès de la ligne.",
                       "constraints": {"required": true, "minimum": 0}}));
    json!({
        "fields": fields,
        "primaryKey": ["date", "code_commune"],
        "missingValues": [""]
    })
}

/// A CSV file the Data Package lists: its resource name and its path
/// under `donnees/`.
pub struct CsvResource {
    pub name: String,
    pub title: String,
    pub path: String,
}

/// The Data Package: every CSV, plain and gzipped, with the schema, so that
/// `frictionless validate` checks them; the JSON files are described in
/// its description (they are columnar, not rows).
pub fn datapackage(title: &str, resources: &[CsvResource]) -> Value {
    let mut listed = Vec::with_capacity(resources.len() * 2);
    for resource in resources {
        listed.push(json!({
            "name": resource.name,
            "title": resource.title,
            "path": resource.path,
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": "schema.json"
        }));
        listed.push(json!({
            "name": format!("{}-gz", resource.name),
            "title": format!("{} (compressé)", resource.title),
            "path": format!("{}.gz", resource.path),
            "format": "csv",
            "compression": "gz",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": "schema.json"
        }));
    }
    json!({
        "name": "decompte-deces",
        "title": title,
        "description": "Une ligne par commune et par jour déclaré, une colonne par lieu de décès. \
            Chaque fichier deces.csv existe aussi compressé (deces.csv.gz) et, par département, \
            en JSON par colonnes (deces.json : {\"colonnes\", \"lignes\", \"donnees\": {colonne: \
            [valeurs]}}).",
        "licenses": [{"name": "etalab-2.0", "title": "Licence Ouverte / Open Licence 2.0",
                      "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"}],
        "resources": listed
    })
}
