//! Every path of the published site, named once: the renderer writes its
//! files there, the publisher composes and orders them, the CDN and the
//! headers read them. Paths are relative to the site's root, without a
//! leading slash.

/// The overview.
pub const OVERVIEW: &str = "index.html";
pub const METHODOLOGY: &str = "methodologie.html";
pub const ACCESSIBILITY: &str = "accessibilite.html";
pub const LEGAL: &str = "mentions-legales.html";
pub const PERSONAL_DATA: &str = "donnees-personnelles.html";
pub const SITE_MAP: &str = "plan-du-site.html";
/// Served for any missing address.
pub const NOT_FOUND: &str = "404.html";

/// Fingerprinted files, cached for good.
pub const ASSETS: &str = "assets/";
/// The open data.
pub const DATA: &str = "donnees/";
/// Every commune of the scope, one line a commune and a day.
pub const DATA_CSV: &str = "donnees/deces.csv";
pub const DATA_CSV_GZ: &str = "donnees/deces.csv.gz";
/// A single département's data as JSON (several départements: each its own).
pub const DATA_JSON: &str = "donnees/deces.json";
pub const SCHEMA: &str = "donnees/schema.json";
pub const DATAPACKAGE: &str = "donnees/datapackage.json";

const COMMUNES: &str = "communes/";
const SETTINGS: &str = "lieux/";

/// A commune's page.
pub fn commune(code: &str) -> String {
    format!("{COMMUNES}{code}.html")
}

/// A département's page (several départements).
pub fn departement(code: &str) -> String {
    format!("departements/{code}.html")
}

/// A setting's page (« lieux/hopital.html »).
pub fn setting(key: &str) -> String {
    format!("{SETTINGS}{key}.html")
}

/// A département's open data (several départements): its CSV, gzipped
/// CSV and JSON.
pub fn departement_data(code: &str) -> [String; 3] {
    let folder = format!("{DATA}departements/{code}");
    [
        format!("{folder}/deces.csv"),
        format!("{folder}/deces.csv.gz"),
        format!("{folder}/deces.json"),
    ]
}

/// The stylesheet, named by the first characters of its hash.
pub fn stylesheet(hash: &str) -> String {
    format!("{ASSETS}style.{hash}.css")
}

/// The DSFR's folder, by version and hash of its stylesheet.
pub fn dsfr(version: &str, hash: &str) -> String {
    format!("{ASSETS}dsfr-{version}-{hash}")
}

/// Whether a page lists the communes or the settings one by one (written
/// before the pages that link to them).
pub fn is_commune_or_setting(path: &str) -> bool {
    path.starts_with(COMMUNES) || path.starts_with(SETTINGS)
}
