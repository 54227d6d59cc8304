//! Authentication: access codes, sessions, CSRF tokens and login throttling.
//!
//! Secrets (access codes, session ids) only ever exist in the client's hands and
//! in the request being served: the store keeps their SHA-256, and nothing here
//! logs them.

use std::time::Duration;

use axum::http::{header, HeaderMap};
use chrono::{DateTime, TimeZone, Utc};
use decompte_core::auth::{hash_secret, CODE_ENTROPY_BYTES};
use decompte_core::{AccessCode, CommuneCode, Role};
use decompte_store::{Credential, Session, Store, StoreError};
use rand::RngCore;

use crate::error::ApiError;
use crate::AppState;

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A fresh opaque identifier (credential, publication), 64 random bits, hex.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}-{}", hex::encode(random_bytes::<8>()))
}

/// Creates a credential and returns it with its access code, which is shown once
/// and never stored.
pub async fn issue_credential(
    store: &dyn Store,
    role: Role,
    commune: Option<CommuneCode>,
    label: &str,
    now: DateTime<Utc>,
) -> Result<(Credential, AccessCode), StoreError> {
    let tag = AccessCode::tag_for(role, commune.as_ref());
    let code = AccessCode::from_entropy(&tag, &random_bytes::<CODE_ENTROPY_BYTES>());
    let credential = Credential {
        id: random_id(role.as_str()),
        role,
        commune,
        label: label.to_owned(),
        code_hash: code.hash(),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    store.insert_credential(&credential).await?;
    Ok((credential, code))
}

/// Who is calling: an active credential.
#[derive(Debug, Clone)]
pub struct Caller {
    pub credential: Credential,
}

impl Caller {
    pub fn role(&self) -> Role {
        self.credential.role
    }

    pub fn is_prefecture(&self) -> bool {
        self.credential.role == Role::Prefecture
    }

    /// A commune credential may only touch its own commune; the prefecture, any.
    pub fn may_access(&self, commune: &CommuneCode) -> bool {
        self.is_prefecture() || self.credential.commune.as_ref() == Some(commune)
    }

    pub fn id(&self) -> &str {
        &self.credential.id
    }
}

/// The key that identifies a client for throttling.
pub fn client_key(state: &AppState, headers: &HeaderMap, peer: Option<std::net::IpAddr>) -> String {
    if state.config.trust_forwarded_for {
        if let Some(last) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return format!("client:{last}");
        }
    }
    match peer {
        Some(ip) => format!("client:{ip}"),
        None => "client:unknown".into(),
    }
}

fn window_start(now: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    let seconds = i64::try_from(window.as_secs()).unwrap_or(i64::MAX).max(1);
    let start = now.timestamp().div_euclid(seconds) * seconds;
    Utc.timestamp_opt(start, 0).single().unwrap_or(now)
}

/// Checks a typed access code, counting failures per client and per commune.
///
/// Per client, too many failures give `429` before the code is even looked at,
/// so a blocked client learns nothing. Per commune (the public tag of the code),
/// too many failures only slow down further *failed* attempts for that commune:
/// a right code always goes through at once, so nobody can lock a commune out.
pub async fn check_code(
    state: &AppState,
    typed: &str,
    client: &str,
    now: DateTime<Utc>,
) -> Result<Credential, ApiError> {
    let policy = state.config.throttle;
    let window = window_start(now, policy.window);
    let window_end = window + chrono::Duration::from_std(policy.window).unwrap_or_default();
    if state.store.failures(client, window, now).await? >= policy.max_failures {
        let retry = (window_end - now).num_seconds().max(1);
        return Err(ApiError::too_many_requests(
            u64::try_from(retry).unwrap_or(1),
        ));
    }
    let code = AccessCode::parse(typed);
    let found = match &code {
        Some(code) => state.store.credential_by_hash(&code.hash()).await?,
        None => None,
    };
    match found {
        Some(credential) if credential.is_active() => {
            // "Last used" is for humans: a minute's precision spares a write per request.
            let stale = credential
                .last_used_at
                .is_none_or(|last| now - last > chrono::Duration::seconds(60));
            if stale {
                state.store.touch_credential(&credential.id, now).await?;
            }
            Ok(credential)
        }
        _ => {
            let count = state.store.add_failure(client, window, window_end).await?;
            tracing::warn!(client, failures = count, "failed authentication");
            if let Some(commune) = code.as_ref().and_then(AccessCode::commune) {
                let key = format!("commune:{commune}");
                let for_commune = state.store.add_failure(&key, window, window_end).await?;
                if for_commune > policy.commune_failures_before_delay {
                    tracing::warn!(%commune, failures = for_commune, "repeated failed authentications for one commune");
                    tokio::time::sleep(policy.commune_delay).await;
                }
            }
            Err(ApiError::unauthorized())
        }
    }
}

/// The caller of an API request, from its `Authorization: Bearer` header.
pub async fn bearer_caller(
    state: &AppState,
    headers: &HeaderMap,
    client: &str,
    now: DateTime<Utc>,
) -> Result<Caller, ApiError> {
    let typed = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(ApiError::unauthorized)?;
    let credential = check_code(state, typed, client, now).await?;
    Ok(Caller { credential })
}

// Sessions.

pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-decompte_session"
    } else {
        "decompte_session"
    }
}

pub fn login_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-decompte_login"
    } else {
        "decompte_login"
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/`, and Secure unless
/// the app runs on plain-http loopback.
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        cookie.push_str("; Secure");
    }
    match max_age {
        Some(age) => cookie.push_str(&format!("; Max-Age={}", age.as_secs())),
        None => cookie.push_str("; Max-Age=0"),
    }
    cookie
}

/// The value of a cookie in the request, if present.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The CSRF token of a session: derived from the session id, so it is never
/// stored and changes with every session.
pub fn csrf_token(session_id: &str) -> String {
    hash_secret("csrf", session_id)[..32].to_owned()
}

/// Compares two tokens in constant time.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Opens a session for a credential; returns the session id for the cookie.
pub async fn open_session(
    state: &AppState,
    credential: &Credential,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let session_id = hex::encode(random_bytes::<32>());
    let expires = now + chrono::Duration::from_std(state.config.session_ttl).unwrap_or_default();
    state
        .store
        .insert_session(&Session {
            id_hash: hash_secret("session", &session_id),
            credential_id: credential.id.clone(),
            created_at: now,
            expires_at: expires,
        })
        .await?;
    Ok(session_id)
}

/// A logged-in browser: its caller, its session id and its CSRF token.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    pub caller: Caller,
    pub session_id: String,
    pub csrf: String,
}

/// The session of a browser request, if it has a live one whose credential is
/// still active.
pub async fn browser_session(
    state: &AppState,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Option<BrowserSession>, StoreError> {
    let Some(session_id) = cookie(headers, session_cookie_name(state.config.secure_cookies)) else {
        return Ok(None);
    };
    let Some(session) = state
        .store
        .session(&hash_secret("session", session_id), now)
        .await?
    else {
        return Ok(None);
    };
    let Some(credential) = state.store.credential(&session.credential_id).await? else {
        return Ok(None);
    };
    if !credential.is_active() {
        return Ok(None);
    }
    Ok(Some(BrowserSession {
        caller: Caller { credential },
        session_id: session_id.to_owned(),
        csrf: csrf_token(session_id),
    }))
}

pub async fn close_session(state: &AppState, session_id: &str) -> Result<(), StoreError> {
    state
        .store
        .delete_session(&hash_secret("session", session_id))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_locked_down() {
        let secure = set_cookie(
            session_cookie_name(true),
            "abc",
            Some(Duration::from_secs(60)),
            true,
        );
        assert_eq!(
            secure,
            "__Host-decompte_session=abc; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=60"
        );
        let loopback = set_cookie(session_cookie_name(false), "abc", None, false);
        assert_eq!(
            loopback,
            "decompte_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }

    #[test]
    fn cookies_are_read_and_tokens_compared() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; decompte_session=xyz; b=2".parse().expect("header"),
        );
        assert_eq!(cookie(&headers, "decompte_session"), Some("xyz"));
        assert_eq!(cookie(&headers, "missing"), None);
        assert!(tokens_match("abcd", "abcd"));
        assert!(!tokens_match("abcd", "abce"));
        assert!(!tokens_match("abcd", "abc"));
        assert_ne!(csrf_token("s1"), csrf_token("s2"));
    }
}
