//! What rendered the site: a state of another fingerprint is not resumed.

use std::io::Write;

use sha2::{Digest, Sha256};

use crate::render::SiteConfig;

/// What rendered the site: this version, the templates, the configuration
/// and the communes in scope. A state of another fingerprint is not resumed.
pub(super) fn fingerprint(config: &SiteConfig) -> String {
    let mut hasher = Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION"));
    for source in decompte_templates::sources() {
        hasher.update(source);
        hasher.update([0]);
    }
    hasher.update(&config.publisher);
    hasher.update([0]);
    hasher.update(&config.crisis);
    hasher.update([0]);
    hasher.update(config.small_counts.unwrap_or(0).to_le_bytes());
    for setting in config.settings.iter() {
        hasher.update(&setting.key);
        hasher.update([0]);
        hasher.update(&setting.label);
        hasher.update([0]);
    }
    for commune in config.scope.communes() {
        let _ = write!(
            HashWriter(&mut hasher),
            "{},{},{},{};",
            commune.code,
            commune.name,
            commune.departement,
            commune.population
        );
    }
    hex::encode(hasher.finalize())
}

pub(super) struct HashWriter<'h>(&'h mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
