//! The data files decompte reads: the commune referential (`data/*.csv`),
//! the maps' contours and the DSFR's stylesheet, fonts and icons.
//!
//! The `decompte` binary carries them: the [`file!`](crate::file) macro
//! compiles a file in when the crate that names it has its `bundled`
//! feature. The Lambda functions do not: they are built without it, so
//! that their zips hold code only, and read the same files from their data
//! layer, a folder (`/opt/decompte` where Lambda unpacks the layer, or
//! `DECOMPTE_DATA_LAYER`) that `scripts/lambda-build.sh` fills from the
//! same tree. Each file read from it is read once, on first use, and kept.
//!
//! Invariant: a file has one name, its path in the repository, and the
//! layer holds it under that same path. A function checks at start that its
//! layer's `MANIFEST` (the files' SHA-256, as `sha256sum` writes them) is
//! the one it was built with, so that a layer from another version of the
//! referential is refused before it draws a wrong map.

use std::path::PathBuf;

/// The variable naming the data layer's folder.
pub const LAYER_VARIABLE: &str = "DECOMPTE_DATA_LAYER";

/// Where Lambda unpacks the layer's `decompte/` folder.
pub const LAYER_DEFAULT: &str = "/opt/decompte";

/// The layer's manifest this build expects (written by `build.rs`).
pub const MANIFEST: &str = include_str!(concat!(env!("OUT_DIR"), "/MANIFEST"));

/// Why the data layer cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub struct LayerError(String);

impl std::fmt::Display for LayerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LayerError {}

/// The data layer's folder.
pub fn layer_dir() -> PathBuf {
    std::env::var_os(LAYER_VARIABLE)
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from(LAYER_DEFAULT), PathBuf::from)
}

/// Checks that the data layer is there and is the one this build expects:
/// what a function does before it takes its first event.
pub fn check_layer() -> Result<(), LayerError> {
    check_layer_at(&layer_dir())
}

fn check_layer_at(dir: &std::path::Path) -> Result<(), LayerError> {
    let path = dir.join("MANIFEST");
    let found = std::fs::read_to_string(&path).map_err(|e| {
        LayerError(format!(
            "the data layer is missing ({}: {e}): deploy the layer that scripts/lambda-build.sh \
             builds with the functions, or set {LAYER_VARIABLE} to its folder",
            path.display()
        ))
    })?;
    if found != MANIFEST {
        let differ = MANIFEST
            .lines()
            .filter(|line| !found.lines().any(|other| other == *line))
            .filter_map(|line| line.split_once("  ").map(|(_, name)| name))
            .collect::<Vec<_>>();
        return Err(LayerError(format!(
            "the data layer at {} was built from other data than this function (differs: {}): \
             deploy the layer built with the functions",
            dir.display(),
            if differ.is_empty() {
                "extra files".to_owned()
            } else {
                differ.join(", ")
            }
        )));
    }
    Ok(())
}

/// A file of the data layer, read whole.
pub fn read(name: &str) -> Result<Vec<u8>, LayerError> {
    let path = layer_dir().join(name);
    std::fs::read(&path).map_err(|e| {
        LayerError(format!(
            "the data layer has no {name} ({}: {e})",
            path.display()
        ))
    })
}

/// A file of the data layer, read once and kept for the life of the process.
///
/// # Panics
/// When the file cannot be read: [`check_layer`] at start makes that a
/// layer damaged after the function started.
pub fn kept(name: &str) -> &'static [u8] {
    match read(name) {
        Ok(bytes) => Box::leak(bytes.into_boxed_slice()),
        Err(error) => panic!("{error}"),
    }
}

/// The bytes of the data file at `$name` (its path in the repository):
/// compiled in when the calling crate has its `bundled` feature, read once
/// from the data layer otherwise.
#[macro_export]
macro_rules! file {
    ($name:literal) => {{
        #[cfg(feature = "bundled")]
        let bytes: &'static [u8] =
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../", $name));
        #[cfg(not(feature = "bundled"))]
        let bytes: &'static [u8] = {
            static KEPT: ::std::sync::OnceLock<&'static [u8]> = ::std::sync::OnceLock::new();
            KEPT.get_or_init(|| $crate::kept($name))
        };
        bytes
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_is_taken_only_with_this_build_s_manifest() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let missing = check_layer_at(dir.path()).expect_err("no manifest");
        assert!(
            missing.to_string().contains("the data layer is missing"),
            "{missing}"
        );
        std::fs::write(dir.path().join("MANIFEST"), MANIFEST).expect("write");
        assert_eq!(check_layer_at(dir.path()), Ok(()));
        // Another version of the communes: its line differs.
        let line = MANIFEST
            .lines()
            .find(|line| line.ends_with("  data/communes.csv"))
            .expect("communes in the manifest");
        let other = MANIFEST.replace(line, &format!("{}  data/communes.csv", "0".repeat(64)));
        std::fs::write(dir.path().join("MANIFEST"), other).expect("write");
        let refused = check_layer_at(dir.path()).expect_err("another manifest");
        assert!(
            refused.to_string().contains("built from other data")
                && refused.to_string().contains("differs: data/communes.csv)"),
            "{refused}"
        );
    }

    #[test]
    fn the_manifest_names_the_referential_and_the_dsfr() {
        for name in [
            "data/communes.csv",
            "data/contours-communes.csv",
            "templates/static/dsfr/dsfr.min.css",
        ] {
            assert!(
                MANIFEST
                    .lines()
                    .any(|line| line.ends_with(&format!("  {name}"))),
                "{name} missing from {MANIFEST}"
            );
        }
        assert!(!MANIFEST.contains("files.rs"), "{MANIFEST}");
    }
}
