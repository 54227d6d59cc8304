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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Commune,
    Prefecture,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Commune => "commune",
            Role::Prefecture => "prefecture",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "commune" => Ok(Role::Commune),
            "prefecture" => Ok(Role::Prefecture),
            other => Err(format!(
                "unknown role `{other}`: use `commune` or `prefecture`"
            )),
        }
    }
}

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code (140 bits).
pub const CODE_CHARS: usize = 28;
/// Random bytes needed to make a code.
pub const CODE_ENTROPY_BYTES: usize = 18;

/// A normalized access code (28 characters of Crockford base 32, no separators).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessCode(String);

impl AccessCode {
    /// Builds a code from random bytes supplied by the caller.
    pub fn from_entropy(bytes: &[u8; CODE_ENTROPY_BYTES]) -> Self {
        let mut bits: u32 = 0;
        let mut held = 0;
        let mut out = String::with_capacity(CODE_CHARS);
        for &byte in bytes {
            bits = (bits << 8) | u32::from(byte);
            held += 8;
            while held >= 5 && out.len() < CODE_CHARS {
                held -= 5;
                out.push(char::from(ALPHABET[((bits >> held) & 31) as usize]));
            }
            bits &= (1 << held) - 1;
        }
        Self(out)
    }

    /// Reads a code as a person typed it: any case, with or without dashes or
    /// spaces, O for 0 and I or L for 1. Returns `None` if it cannot be a code.
    pub fn parse(typed: &str) -> Option<Self> {
        let mut out = String::with_capacity(CODE_CHARS);
        for c in typed.chars() {
            let c = match c.to_ascii_uppercase() {
                ' ' | '-' | '\t' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return None;
            }
            out.push(c);
        }
        (out.len() == CODE_CHARS).then_some(Self(out))
    }

    /// The code in groups of four, the way it is shown once and typed back.
    pub fn display_grouped(&self) -> String {
        self.0
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// The stored form: SHA-256, hex.
    pub fn hash(&self) -> String {
        hash_secret("access-code", &self.0)
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
        fn codes_round_trip(bytes in proptest::array::uniform18(any::<u8>())) {
            let code = AccessCode::from_entropy(&bytes);
            prop_assert_eq!(code.0.len(), CODE_CHARS);
            let typed = code.display_grouped().to_lowercase();
            prop_assert_eq!(AccessCode::parse(&typed), Some(code.clone()));
            prop_assert_eq!(code.hash().len(), 64);
        }
    }

    #[test]
    fn typing_mistakes_are_forgiven() {
        let code = AccessCode::from_entropy(&[0; 18]);
        assert_eq!(code.display_grouped(), "0000-0000-0000-0000-0000-0000-0000");
        assert_eq!(
            AccessCode::parse("oooo oooo-oooo-0000-0000-0000-0000"),
            Some(code)
        );
        assert_eq!(AccessCode::parse("0000"), None);
        assert_eq!(
            AccessCode::parse("0000-0000-0000-0000-0000-0000-000U"),
            None
        );
        assert_eq!(
            format!("{:?}", AccessCode::from_entropy(&[1; 18])),
            "AccessCode(…)"
        );
    }
}
