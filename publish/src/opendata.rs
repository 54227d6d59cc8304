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

use crate::model::{DayOrder, DepartementReports, Summary};

/// The CSV header: `date,code_commune,nom_commune,` the setting keys, `total`.
pub fn header(settings: &Settings) -> String {
    header_of("date,code_commune,nom_commune", settings, ",total\n")
}

/// A CSV header: `first`, the setting keys, `last`.
fn header_of(first: &str, settings: &Settings, last: &str) -> String {
    let mut header = String::from(first);
    for key in settings.keys() {
        header.push(',');
        header.push_str(&write_cell(key));
    }
    header.push_str(last);
    header
}

/// The rows of a département, without the header, by day then commune,
/// written by hand: a national year is 12.8 million rows.
pub fn csv_body(departement: &DepartementReports<'_>, order: &DayOrder) -> Vec<u8> {
    let mut out = Vec::with_capacity(departement.report_count() * 48);
    // Each commune's cells, once: its code and its name as CSV cells.
    let cells: Vec<Vec<u8>> = departement
        .communes
        .iter()
        .map(|(commune, _)| {
            let mut cell = Vec::with_capacity(commune.name.len() + 8);
            cell.extend_from_slice(commune.code.as_str().as_bytes());
            cell.push(b',');
            csv_cell(&mut cell, &write_cell(&commune.name));
            cell
        })
        .collect();
    let mut number = itoa::Buffer::new();
    for (index, day) in departement.in_order(order) {
        iso_date(&mut out, day.date);
        out.push(b',');
        out.extend_from_slice(&cells[index]);
        let mut total = 0u64;
        for count in &day.counts {
            out.push(b',');
            if *count < 10 {
                out.push(b'0' + *count as u8);
            } else {
                out.extend_from_slice(number.format(*count).as_bytes());
            }
            total += u64::from(*count);
        }
        out.push(b',');
        out.extend_from_slice(number.format(total).as_bytes());
        out.push(b'\n');
    }
    out
}

/// A CSV cell: quoted when it holds a comma, a quote or a line break.
fn csv_cell(out: &mut Vec<u8>, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        for byte in text.bytes() {
            if byte == b'"' {
                out.push(b'"');
            }
            out.push(byte);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// `2020-04-01`.
fn iso_date(out: &mut Vec<u8>, date: chrono::NaiveDate) {
    use chrono::Datelike;
    let (year, month, day) = (date.year(), date.month(), date.day());
    let digits = [
        b'0' + ((year / 1000) % 10) as u8,
        b'0' + ((year / 100) % 10) as u8,
        b'0' + ((year / 10) % 10) as u8,
        b'0' + (year % 10) as u8,
        b'-',
        b'0' + (month / 10) as u8,
        b'0' + (month % 10) as u8,
        b'-',
        b'0' + (day / 10) as u8,
        b'0' + (day % 10) as u8,
    ];
    out.extend_from_slice(&digits);
}

/// A JSON string.
fn json_string(out: &mut Vec<u8>, text: &str) {
    // serde_json escapes exactly as JSON requires; a String never fails.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// One gzip member of `bytes`, the same bytes for the same input (no name,
/// no time in the header). Members concatenate into a valid gzip file
/// (RFC 1952), which is how the whole-scope file is made of the
/// départements' without compressing them twice.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 6 + 64),
        // Level 5: the size of level 6 on these files, in half the time.
        Compression::new(5),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// `bytes` as gzip members of about a mebibyte each (cut after a line),
/// compressed on every core: the same bytes always give the same file.
pub fn gzip_parallel(bytes: &[u8]) -> Vec<u8> {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 20;
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let end = if start + CHUNK >= bytes.len() {
            bytes.len()
        } else {
            bytes[start + CHUNK..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(bytes.len(), |at| start + CHUNK + at + 1)
        };
        chunks.push(&bytes[start..end]);
        start = end;
    }
    chunks
        .par_iter()
        .map(|chunk| gzip(chunk))
        .collect::<Vec<_>>()
        .concat()
}

/// The columnar JSON of a département: `{"departement", "colonnes": [...],
/// "lignes": n, "donnees": {"date": [...], "code_commune": [...], ...}}`,
/// rows in the order of the CSV, written by hand column by column.
pub fn columnar_json(
    departement: &DepartementReports<'_>,
    order: &DayOrder,
    settings: &Settings,
) -> Vec<u8> {
    let rows: Vec<(usize, &crate::model::DayCounts)> = departement.in_order(order).collect();
    let mut out = Vec::with_capacity(rows.len() * 48 + 256);
    let mut names = vec!["date", "code_commune", "nom_commune"];
    names.extend(settings.keys());
    names.push("total");
    out.extend_from_slice(b"{\"departement\":");
    json_string(&mut out, departement.code);
    out.extend_from_slice(b",\"colonnes\":[");
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(&mut out, name);
    }
    out.extend_from_slice(b"],\"lignes\":");
    out.extend_from_slice(itoa::Buffer::new().format(rows.len()).as_bytes());
    out.extend_from_slice(b",\"donnees\":{");
    let codes: Vec<Vec<u8>> = departement
        .communes
        .iter()
        .map(|(c, _)| {
            let mut v = Vec::new();
            json_string(&mut v, c.code.as_str());
            v
        })
        .collect();
    let commune_names: Vec<Vec<u8>> = departement
        .communes
        .iter()
        .map(|(c, _)| {
            let mut v = Vec::new();
            json_string(&mut v, &c.name);
            v
        })
        .collect();
    // One pass over the rows, each column into a buffer of its own: the
    // rows are scattered across the communes' days, and a pass per column
    // would read them all once per column.
    let mut columns: Vec<Vec<u8>> = (0..names.len())
        .map(|_| Vec::with_capacity(rows.len() * 3))
        .collect();
    let mut number = itoa::Buffer::new();
    let mut push_number = |out: &mut Vec<u8>, n: u64| {
        out.push(b',');
        if n < 10 {
            out.push(b'0' + n as u8);
        } else {
            out.extend_from_slice(number.format(n).as_bytes());
        }
    };
    let settings_count = names.len() - 4;
    for (commune, day) in &rows {
        let [date, code, name, counts @ ..] = columns.as_mut_slice() else {
            break;
        };
        date.extend_from_slice(b",\"");
        iso_date(date, day.date);
        date.push(b'"');
        code.push(b',');
        code.extend_from_slice(&codes[*commune]);
        name.push(b',');
        name.extend_from_slice(&commune_names[*commune]);
        let mut total = 0u64;
        for (column, count) in counts.iter_mut().zip(&day.counts).take(settings_count) {
            push_number(column, u64::from(*count));
            total += u64::from(*count);
        }
        if let Some(column) = counts.last_mut() {
            push_number(column, total);
        }
    }
    for (i, (name, column)) in names.iter().zip(&columns).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(&mut out, name);
        out.extend_from_slice(b":[");
        // Each value was written after a comma: the first one's is dropped.
        out.extend_from_slice(column.get(1..).unwrap_or_default());
        out.push(b']');
    }
    out.extend_from_slice(b"}}\n");
    out
}

/// The day column of every `deces.csv`.
fn date_field() -> Value {
    json!({"name": "date", "type": "date", "format": "default", "title": "Jour du décès",
           "description": "Jour du décès, dans le fuseau horaire du département (heure de \
               Paris en métropole), format ISO 8601 AAAA-MM-JJ.",
           "constraints": {"required": true}})
}

/// The Table Schema of every `deces.csv`.
pub fn schema(settings: &Settings) -> Value {
    let mut fields = vec![
        date_field(),
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

/// Under the rule of small counts (`k`), the CSV header: one row per
/// département and day, no commune.
pub fn protected_header(settings: &Settings) -> String {
    header_of(
        "date,code_departement,nom_departement",
        settings,
        ",total,communes_declarantes\n",
    )
}

/// Under the rule of small counts, a département's rows: its published
/// figures by day, a withheld day with its counts empty.
pub fn protected_csv_body(summary: &Summary, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(summary.days.len() * 48);
    let mut place = Vec::new();
    csv_cell(&mut place, &write_cell(&summary.code));
    place.push(b',');
    csv_cell(&mut place, &write_cell(name));
    let mut number = itoa::Buffer::new();
    for day in &summary.days {
        iso_date(&mut out, day.date);
        out.push(b',');
        out.extend_from_slice(&place);
        for count in day.by_setting.iter().chain([&day.by_setting.iter().sum()]) {
            out.push(b',');
            if !day.withheld {
                out.extend_from_slice(number.format(*count).as_bytes());
            }
        }
        out.push(b',');
        out.extend_from_slice(number.format(day.reporting).as_bytes());
        out.push(b'\n');
    }
    out
}

/// Under the rule of small counts, a département's columnar JSON: the
/// rows of [`protected_csv_body`], a withheld count `null`.
pub fn protected_json(summary: &Summary, name: &str, settings: &Settings) -> Vec<u8> {
    let mut names = vec!["date", "code_departement", "nom_departement"];
    names.extend(settings.keys());
    names.extend(["total", "communes_declarantes"]);
    let width = settings.len();
    let column = |index: usize| -> Value {
        summary
            .days
            .iter()
            .map(|day| match index {
                0 => json!(day.date.to_string()),
                1 => json!(summary.code),
                2 => json!(name),
                i if i == width + 4 => json!(day.reporting),
                _ if day.withheld => Value::Null,
                i if i == width + 3 => json!(day.by_setting.iter().sum::<u64>()),
                i => json!(day.by_setting[i - 3]),
            })
            .collect()
    };
    let data: serde_json::Map<String, Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| ((*n).to_owned(), column(i)))
        .collect();
    let mut out = serde_json::to_vec(&json!({
        "departement": summary.code,
        "colonnes": names,
        "lignes": summary.days.len(),
        "donnees": data,
    }))
    .unwrap_or_default();
    out.push(b'\n');
    out
}

/// Under the rule of small counts (`k`), the Table Schema of every `deces.csv`.
pub fn protected_schema(settings: &Settings, k: u32) -> Value {
    let mut fields = vec![
        date_field(),
        json!({"name": "code_departement", "type": "string", "title": "Code du département",
               "constraints": {"required": true, "pattern": "^([0-9]{2,3}|2A|2B)$"}}),
        json!({"name": "nom_departement", "type": "string", "title": "Nom du département",
               "constraints": {"required": true}}),
    ];
    let withheld = "Vide : jour non publié, car moins de deux communes l'ont déclaré alors \
        qu'il compte des décès (règle des petits effectifs).";
    for setting in settings.iter() {
        fields.push(json!({
            "name": setting.key, "type": "integer", "title": setting.label,
            "description": format!("Décès survenus le jour dit dans les communes du \
                département, lieu : {}. {withheld}", setting.label),
            "constraints": {"minimum": 0},
        }));
    }
    fields.push(json!({"name": "total", "type": "integer", "title": "Total",
                       "description": format!("Somme des lieux de décès de la ligne. {withheld}"),
                       "constraints": {"minimum": 0}}));
    fields.push(json!({"name": "communes_declarantes", "type": "integer",
                       "title": "Communes ayant déclaré",
                       "description": "Nombre de communes du département qui ont déclaré ce jour \
                           (0 compris).",
                       "constraints": {"required": true, "minimum": 0}}));
    json!({
        "fields": fields,
        "primaryKey": ["date", "code_departement"],
        "missingValues": [""],
        "description": format!("Règle des petits effectifs (k = {k}) : aucun chiffre publié ne \
            permet de connaître ou de déduire le nombre de décès d'une commune, d'un lieu et d'un \
            jour compris entre 1 et {}. Les chiffres sont donc publiés par département et par \
            jour, pas par commune ; voir la page Méthodologie.", k - 1),
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
pub fn datapackage(title: &str, resources: &[CsvResource], by_departement: bool) -> Value {
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
        "description": format!("{} Chaque fichier deces.csv existe aussi compressé \
            (deces.csv.gz) et, par département, en JSON par colonnes (deces.json : {{\"colonnes\", \
            \"lignes\", \"donnees\": {{colonne: [valeurs]}}}}).",
            if by_departement {
                "Une ligne par département et par jour (règle des petits effectifs), une colonne \
                 par lieu de décès."
            } else {
                "Une ligne par commune et par jour déclaré, une colonne par lieu de décès."
            }),
        "licenses": [{"name": "etalab-2.0", "title": "Licence Ouverte / Open Licence 2.0",
                      "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"}],
        "resources": listed
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};
    use decompte_core::CommuneCode;
    use decompte_store::Tally;

    /// The columnar JSON holds, column by column, the values of the CSV's
    /// rows, in the same order, numbers of one digit and more alike.
    #[test]
    fn the_json_columns_are_the_csv_rows() {
        let scope = decompte_core::Referential::parse(
            "code,nom,departement,population\n56001,L'Île-d'Arz,56,10\n56003,Vannes,56,10\n",
            "code,nom\n56,Morbihan\n",
        )
        .and_then(|r| r.scope(&["56".into()]))
        .expect("scope");
        let settings = Settings::default();
        let width = settings.keys().count();
        let tally = |commune: &str, day: u32, first: u32| Tally {
            commune: CommuneCode::parse(commune).expect("code"),
            date: NaiveDate::from_ymd_opt(2020, 4, day).expect("date"),
            version: 1,
            counts: (0..width as u32).map(|i| first * (i + 1)).collect(),
            recorded_at: Utc
                .with_ymd_and_hms(2020, 4, day, 18, 0, 0)
                .single()
                .expect("instant"),
            flagged: false,
        };
        let departement = DepartementReports::from_tallies(
            "56",
            &scope,
            vec![
                tally("56003", 2, 0),
                tally("56001", 2, 7),
                tally("56001", 1, 1234),
                tally("56003", 3, 9),
            ],
        );
        let order = departement.day_order();
        let json: Value =
            serde_json::from_slice(&columnar_json(&departement, &order, &settings)).expect("JSON");
        let csv = String::from_utf8(csv_body(&departement, &order)).expect("UTF-8");
        // No cell of this CSV is quoted.
        let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(json["lignes"], rows.len());
        let names = json["colonnes"].as_array().expect("columns");
        assert_eq!(names.len(), width + 4);
        for (i, row) in rows.iter().enumerate() {
            for (c, name) in names.iter().enumerate() {
                let value = &json["donnees"][name.as_str().expect("name")][i];
                let text = value
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| value.to_string());
                assert_eq!(text, row[c], "row {i}, column {name}");
            }
        }
        assert_eq!(rows[0][..4], ["2020-04-01", "56001", "L'Île-d'Arz", "1234"]);
        assert_eq!(json["donnees"]["total"][0], 1234 * 15);
    }
}
