//! Settings (lieux de décès): a configurable, ordered list of keys and French labels.

use serde::{Deserialize, Serialize};

/// Why `DECOMPTE_SETTINGS` cannot be read; the message says what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub key: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings(Vec<Setting>);

/// Keys a setting may not take: each setting is a column of the published
/// CSV, beside these.
pub const RESERVED_KEYS: [&str; 2] = ["date", "total"];

impl Default for Settings {
    /// The five settings of the product contract.
    fn default() -> Self {
        Self::new([
            ("hopital", "Hôpital ou clinique"),
            ("ehpad", "EHPAD"),
            ("esms", "Autre établissement médico-social"),
            ("domicile", "Domicile"),
            ("autre", "Autre lieu"),
        ])
    }
}

impl Settings {
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(key, label)| Setting {
                    key: key.to_owned(),
                    label: label.to_owned(),
                })
                .collect(),
        )
    }

    /// Parses `key=Label,key=Label`, the form of `DECOMPTE_SETTINGS`.
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let mut settings = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, label) = item.split_once('=').ok_or_else(|| {
                SettingsError(format!("setting `{item}` must be written key=Label"))
            })?;
            let key = key.trim();
            if key.is_empty()
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(SettingsError(format!(
                    "setting key `{key}` must be lowercase letters, digits or dashes"
                )));
            }
            if RESERVED_KEYS.contains(&key) {
                return Err(SettingsError(format!(
                    "setting key `{key}` is a column of the published data: choose another"
                )));
            }
            if settings.iter().any(|s: &Setting| s.key == key) {
                return Err(SettingsError(format!("setting key `{key}` appears twice")));
            }
            settings.push(Setting {
                key: key.to_owned(),
                label: label.trim().to_owned(),
            });
        }
        if settings.is_empty() {
            return Err(SettingsError("at least one setting is needed".into()));
        }
        Ok(Self(settings))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Setting> {
        self.0.iter()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| s.key.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.0.iter().find(|s| s.key == key)
    }

    pub fn position(&self, key: &str) -> Option<usize> {
        self.0.iter().position(|s| s.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_settings() {
        let settings = Settings::parse("hopital=Hôpital, domicile=Domicile").expect("parse");
        assert_eq!(settings.keys().collect::<Vec<_>>(), ["hopital", "domicile"]);
        assert!(Settings::parse("Hopital=X").is_err());
        assert!(Settings::parse("a=X,a=Y").is_err());
        assert!(Settings::parse("total=Total").is_err());
        assert!(Settings::parse("").is_err());
        assert_eq!(Settings::default().len(), 5);
    }
}
