//! The second factor of the prefecture and national roles: six-digit codes
//! of a phone's authenticator app (TOTP, RFC 6238: SHA-1, 30-second steps,
//! one step of clock drift either way, with `totp-rs`), and ten single-use
//! recovery codes for a lost phone, stored hashed.

use chrono::{DateTime, Utc};
use decompte_core::auth::hash_secret;
use totp_rs::{Builder, Secret, Totp};

use crate::auth::random_bytes;

/// How many recovery codes an enrolment gives.
pub const RECOVERY_CODES: usize = 10;

/// Characters of recovery codes: those of access codes (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new shared secret of 160 bits (RFC 4226's recommendation), in base 32.
pub fn new_secret() -> String {
    Secret::from(random_bytes::<20>()).to_base32()
}

/// A secret of the given bytes, in base 32 (tests derive theirs from the code).
pub fn secret_of(bytes: &[u8]) -> String {
    Secret::from(bytes.to_vec()).to_base32()
}

fn totp(secret: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret).ok()?;
    Builder::new().with_secret(secret).build().ok()
}

fn seconds(now: DateTime<Utc>) -> u64 {
    u64::try_from(now.timestamp()).unwrap_or(0)
}

/// The time step of the code typed, if it is right at `now` (or one step
/// before or after, for a phone's clock that drifts). Spaces are ignored.
pub fn check(secret: &str, typed: &str, now: DateTime<Utc>) -> Option<u64> {
    let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret)?.check(&digits, seconds(now))
}

/// The code a phone shows at `now` (for the demonstration and the tests).
pub fn code_at(secret: &str, now: DateTime<Utc>) -> Option<String> {
    Some(totp(secret)?.generate(seconds(now)).to_string())
}

/// The `otpauth://` address an authenticator app reads from the QR code.
pub fn provisioning_uri(secret: &str, issuer: &str, account: &str) -> Option<String> {
    // Neither part may hold a colon (the URI's separator).
    let clean = |text: &str| text.replace(':', " ").trim().to_owned();
    let account = match clean(account) {
        a if a.is_empty() => "decompte".to_owned(),
        a => a,
    };
    let secret = Secret::try_from_base32(secret).ok()?;
    Builder::new()
        .with_secret(secret)
        .with_issuer(Some(clean(issuer)))
        .with_account_name(account)
        .build()
        .ok()?
        .to_url()
        .ok()
}

/// The QR code of `uri` as an SVG image (black on white, with its quiet zone).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .dark_color(qrcode::render::svg::Color("#000000"))
            .light_color(qrcode::render::svg::Color("#ffffff"))
            .build(),
    )
}

/// The secret as a person types it into an app without a camera: groups of four.
pub fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// New recovery codes: each 16 characters (80 bits) in groups of four.
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = random_bytes::<16>();
            let chars: Vec<u8> = bytes
                .iter()
                .map(|b| ALPHABET[usize::from(b & 31)])
                .collect();
            chars
                .chunks(4)
                .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// The hash kept of a recovery code, from what a person typed (dashes,
/// spaces and case do not matter; O, I and L read as 0, 1 and 1). `None` if
/// it cannot be one.
pub fn recovery_hash(typed: &str) -> Option<String> {
    let normal: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\u{a0}'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    let valid = normal.len() == 16 && normal.bytes().all(|b| ALPHABET.contains(&b));
    valid.then(|| hash_secret("recovery", &normal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rfc_6238_vector() {
        // RFC 6238, appendix B: the SHA-1 secret "12345678901234567890",
        // T = 59 s gives 94287082 on eight digits, so 287082 on six.
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        let at = Utc.timestamp_opt(59, 0).single().expect("an instant");
        assert_eq!(code_at(&secret, at).as_deref(), Some("287082"));
        assert_eq!(check(&secret, "287 082", at), Some(1));
        assert_eq!(check(&secret, "287083", at), None);
        assert_eq!(check(&secret, "28708", at), None);
        // A step of drift either way, not two.
        let later = Utc.timestamp_opt(59 + 30, 0).single().expect("an instant");
        assert_eq!(check(&secret, "287082", later), Some(1));
        let much_later = Utc.timestamp_opt(59 + 60, 0).single().expect("an instant");
        assert_eq!(check(&secret, "287082", much_later), None);
    }

    #[test]
    fn recovery_codes_are_typable_and_hashed_alike() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        for code in &codes {
            let hash = recovery_hash(code).expect("a recovery code");
            let sloppy = code.to_lowercase().replace('-', " ");
            assert_eq!(recovery_hash(&sloppy), Some(hash));
        }
        assert_eq!(recovery_hash("123456"), None);
        assert_ne!(codes[0], codes[1]);
    }

    #[test]
    fn the_qr_code_carries_the_secret() {
        let secret = new_secret();
        let uri =
            provisioning_uri(&secret, "Préfecture: Morbihan", "Cellule de crise").expect("a URI");
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains(&format!("secret={secret}")), "{uri}");
        let svg = qr_svg(&uri).expect("an SVG");
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }
}
