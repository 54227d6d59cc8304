//! ProConnect's redirect back (`/connexion/proconnect/retour`): any query
//! and any flow cookie. A return opens a sign-in only with the state the
//! cookie holds, and then gives the cookie's own nonce and verifier.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let (query, kept) = text.split_once('\n').unwrap_or((&text, ""));
    if let Ok(back) = decompte_app::oidc::read_return(query, kept) {
        let mut parts = kept.splitn(3, '.');
        let expected = parts.next().unwrap_or_default();
        assert_eq!(Some(back.nonce.as_str()), parts.next());
        assert_eq!(Some(back.verifier.as_str()), parts.next());
        assert!(!back.code.is_empty());
        let state: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        assert!(state.iter().any(|(k, v)| k == "state" && v == expected));
    }
});
