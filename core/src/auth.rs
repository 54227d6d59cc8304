//! Roles and access codes.
//!
//! An access code carries 140 random bits written as seven groups of four
//! characters from Crockford's base 32 (no I, L, O or U, so nothing is ambiguous
//! to type). Only its SHA-256 is stored: with 140 bits of entropy a slow password
//! hash would add nothing, since nobody can enumerate the space.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::commune::CommuneCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A mairie: declares and corrects its own commune.
    Commune,
    /// A prefecture's crisis cell: the communes of its départements.
    Prefecture,
    /// The ministry: reads every département and manages prefecture codes;
    /// writes no report.
    National,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Commune => "commune",
            Role::Prefecture => "prefecture",
            Role::National => "national",
        }
    }

    /// In French, for pages.
    pub fn label(self) -> &'static str {
        match self {
            Role::Commune => "commune",
            Role::Prefecture => "préfecture",
            Role::National => "national",
        }
    }

    /// The crisis cell's pages (completeness, codes, export): a prefecture or the ministry.
    pub fn is_supervisor(self) -> bool {
        matches!(self, Role::Prefecture | Role::National)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role that is none of `commune`, `prefecture`, `national`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`: use `commune`, `prefecture` or `national`")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "commune" => Ok(Role::Commune),
            "prefecture" => Ok(Role::Prefecture),
            "national" => Ok(Role::National),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in the secret part of a code (140 bits).
pub const CODE_CHARS: usize = 28;
/// Random bytes needed to make a code.
pub const CODE_ENTROPY_BYTES: usize = 18;
/// The public tag of a prefecture code.
pub const PREFECTURE_TAG: &str = "PREF";
/// The public tag of a national code.
pub const NATIONAL_TAG: &str = "NATL";

/// An access code: a public tag (the commune's INSEE code, or `PREF` for the
/// prefecture) and a 140-bit secret. The tag is not a secret: it lets a person
/// tell codes apart and lets the server count failed logins per commune.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessCode {
    tag: String,
    secret: String,
}

impl AccessCode {
    /// Builds a code from random bytes supplied by the caller. `tag` is an INSEE
    /// commune code or [`PREFECTURE_TAG`].
    pub fn from_entropy(tag: &str, bytes: &[u8; CODE_ENTROPY_BYTES]) -> Self {
        let mut bits: u32 = 0;
        let mut held = 0;
        let mut secret = String::with_capacity(CODE_CHARS);
        for &byte in bytes {
            bits = (bits << 8) | u32::from(byte);
            held += 8;
            while held >= 5 && secret.len() < CODE_CHARS {
                held -= 5;
                secret.push(char::from(ALPHABET[((bits >> held) & 31) as usize]));
            }
            bits &= (1 << held) - 1;
        }
        Self {
            tag: tag.to_ascii_uppercase(),
            secret,
        }
    }

    /// The tag for a role: the commune's code, [`PREFECTURE_TAG`] or [`NATIONAL_TAG`].
    pub fn tag_for(role: Role, commune: Option<&CommuneCode>) -> String {
        match (role, commune) {
            (Role::Commune, Some(code)) => code.as_str().to_owned(),
            (Role::National, _) => NATIONAL_TAG.to_owned(),
            _ => PREFECTURE_TAG.to_owned(),
        }
    }

    /// Reads a code as a person typed it: any case, with or without dashes or
    /// spaces, and in the secret O for 0 and I or L for 1. Returns `None` if it
    /// cannot be a code.
    pub fn parse(typed: &str) -> Option<Self> {
        let compact: String = typed
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '\t'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let tag_len = if compact.starts_with(PREFECTURE_TAG) || compact.starts_with(NATIONAL_TAG) {
            PREFECTURE_TAG.len()
        } else {
            5
        };
        let tag = compact.get(..tag_len)?;
        if tag != PREFECTURE_TAG && tag != NATIONAL_TAG && CommuneCode::parse(tag).is_err() {
            return None;
        }
        let mut secret = String::with_capacity(CODE_CHARS);
        for c in compact.get(tag_len..)?.chars() {
            let c = match c {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return None;
            }
            secret.push(c);
        }
        (secret.len() == CODE_CHARS).then(|| Self {
            tag: tag.to_owned(),
            secret,
        })
    }

    /// The public tag: a commune code, `PREF` or `NATL`.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The commune this code names, if it is a commune's.
    pub fn commune(&self) -> Option<CommuneCode> {
        CommuneCode::parse(&self.tag).ok()
    }

    /// The code in groups of four after its tag, the way it is shown once and typed back:
    /// `56260-ABCD-EFGH-…`.
    pub fn display_grouped(&self) -> String {
        let groups: Vec<&str> = self
            .secret
            .as_bytes()
            .chunks(4)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        format!("{}-{}", self.tag, groups.join("-"))
    }

    /// The stored form: SHA-256 of tag and secret, hex.
    pub fn hash(&self) -> String {
        hash_secret("access-code", &format!("{}:{}", self.tag, self.secret))
    }
}

/// Hex SHA-256 of a secret, under a domain label so that a session id and an
/// access code never share a hash.
pub fn hash_secret(domain: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(domain.as_bytes());
    hasher.update([0]);
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

impl fmt::Debug for AccessCode {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessCode(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn codes_round_trip(
            bytes in proptest::array::uniform18(any::<u8>()),
            prefecture in any::<bool>(),
        ) {
            let tag = if prefecture { PREFECTURE_TAG } else { "2A004" };
            let code = AccessCode::from_entropy(tag, &bytes);
            prop_assert_eq!(code.secret.len(), CODE_CHARS);
            let typed = code.display_grouped().to_lowercase();
            prop_assert_eq!(AccessCode::parse(&typed), Some(code.clone()));
            prop_assert_eq!(AccessCode::parse(&typed.replace('-', "")), Some(code.clone()));
            prop_assert_eq!(code.hash().len(), 64);
        }
    }

    #[test]
    fn typing_mistakes_are_forgiven() {
        let code = AccessCode::from_entropy("56260", &[0; 18]);
        assert_eq!(
            code.display_grouped(),
            "56260-0000-0000-0000-0000-0000-0000-0000"
        );
        assert_eq!(
            AccessCode::parse("56260 oooo oooo-oooo-0000-0000-0000-0000"),
            Some(code.clone())
        );
        assert_eq!(code.commune().map(String::from), Some("56260".into()));
        assert_eq!(AccessCode::parse("0000"), None);
        assert_eq!(
            AccessCode::parse("56260-0000-0000-0000-0000-0000-0000-000U"),
            None
        );
        assert_eq!(
            AccessCode::parse("ABCDE-0000-0000-0000-0000-0000-0000-0000"),
            None
        );
        let national = AccessCode::from_entropy(NATIONAL_TAG, &[2; 18]);
        assert_eq!(
            AccessCode::parse(&national.display_grouped()),
            Some(national.clone())
        );
        let prefecture = AccessCode::from_entropy(PREFECTURE_TAG, &[1; 18]);
        assert_eq!(prefecture.commune(), None);
        assert_ne!(
            prefecture.hash(),
            AccessCode::from_entropy("56260", &[1; 18]).hash(),
            "the tag is part of the hash"
        );
        assert_eq!(format!("{prefecture:?}"), "AccessCode(…)");
    }
}
