//! Authentication: access codes, sessions, CSRF tokens and login throttling.
//!
//! Secrets (access codes, session ids) only ever exist in the client's hands and
//! in the request being served: the store keeps their SHA-256, and nothing here
//! logs them.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::{DateTime, TimeZone, Utc};
use decompte_core::auth::{hash_secret, CODE_ENTROPY_BYTES};
use decompte_core::issuance::Issue;
use decompte_core::{AccessCode, CommuneCode, Reach, Role, Scope};
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

/// Creates the credential the domain decided (`issuance::decide`), issued by
/// the credential `issued_by` (`None`: the command line), and returns it
/// with its access code, which is shown once and never stored.
pub async fn issue_credential(
    store: &dyn Store,
    new: Issue,
    issued_by: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Credential, AccessCode), StoreError> {
    let tag = AccessCode::tag_for(new.role, new.commune.as_ref());
    let code = AccessCode::from_entropy(&tag, &random_bytes::<CODE_ENTROPY_BYTES>());
    let credential = Credential {
        id: random_id(new.role.as_str()),
        role: new.role,
        commune: new.commune,
        departements: new.departements,
        label: new.label,
        code_hash: code.hash(),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
        issued_by: issued_by.map(str::to_owned),
        expires_at: new.expires_at,
        second_factor: None,
    };
    store.insert_credential(&credential).await?;
    Ok((credential, code))
}

/// Revokes a credential and, with `cascade`, every credential it issued,
/// and those they issued in turn; returns the ids revoked (the first one
/// first; empty if it was already revoked or is unknown).
pub async fn revoke_credential(
    store: &dyn Store,
    id: &str,
    cascade: bool,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    if !store.revoke_credential(id, now).await? {
        return Ok(Vec::new());
    }
    let mut revoked = vec![id.to_owned()];
    if cascade {
        let all = store.credentials().await?;
        let mut next = 0;
        while let Some(issuer) = revoked.get(next).cloned() {
            next += 1;
            for issued in all
                .iter()
                .filter(|c| c.issued_by.as_deref() == Some(&issuer))
            {
                if store.revoke_credential(&issued.id, now).await? {
                    revoked.push(issued.id.clone());
                }
            }
        }
    }
    Ok(revoked)
}

/// Who is calling: an active credential, and what it reaches.
#[derive(Debug, Clone)]
pub struct Caller {
    pub credential: Credential,
    reach: Reach,
}

impl Caller {
    pub fn new(credential: Credential) -> Self {
        let reach = credential.reach();
        Self { credential, reach }
    }

    pub fn role(&self) -> Role {
        self.credential.role
    }

    /// The crisis cell's pages and calls: a prefecture or the ministry.
    pub fn is_supervisor(&self) -> bool {
        self.credential.role.is_supervisor()
    }

    /// Declares and corrects for the communes it reaches, not its own one.
    pub fn is_prefecture(&self) -> bool {
        self.credential.role == Role::Prefecture
    }

    pub fn reach(&self) -> &Reach {
        &self.reach
    }

    /// Whether the caller may see this commune's reports: a mairie its own,
    /// a prefecture those of its départements, the ministry any.
    pub fn may_access(&self, commune: &CommuneCode) -> bool {
        self.reach.contains(commune)
    }

    /// The part of the deployment's scope the caller sees.
    pub fn scope(&self, deployment: &Scope) -> Scope {
        self.reach.scope(deployment)
    }

    /// The départements to ask the store for: none (meaning all) when the
    /// caller reaches the whole deployment.
    pub fn query_departements(&self, deployment: &Scope) -> Vec<String> {
        self.reach.departement_filter(deployment)
    }

    pub fn id(&self) -> &str {
        &self.credential.id
    }
}

/// The address of the client of a request. The peer address, unless the peer
/// is one of the reverse proxies the deployment names (`--trusted-proxies`):
/// then `X-Forwarded-For` is read from the right, each hop a proxy of ours
/// added, until the first address that is not one of our proxies. A hop that
/// is not an IP address stops the walk: the last address vouched for by one of
/// our proxies is the client. Without trusted proxies the header is ignored,
/// so nobody can choose the address they are counted under.
pub fn client_address(
    config: &crate::AppConfig,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Option<IpAddr> {
    let peer = peer?;
    if !config.is_trusted_proxy(peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(address) = parse_hop(hop) else {
            break;
        };
        client = address;
        if !config.is_trusted_proxy(address) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`[v6]:p`, `v4:p`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

/// The key a client's failed logins are counted under: its IPv4 address, or
/// the /64 network of an IPv6 address (a host chooses freely inside its /64).
pub fn client_key(state: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> String {
    match client_address(&state.config, headers, peer) {
        Some(address) => throttle_key(address),
        None => "client:unknown".into(),
    }
}

fn throttle_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => format!("client:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("client:{v4}"),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                format!("client:{}/64", std::net::Ipv6Addr::from(network))
            }
        },
    }
}

/// The fixed window of failures `now` falls in.
struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    /// Seconds until it ends, for `Retry-After` (at least one).
    retry_after: u64,
}

impl Window {
    fn at(now: DateTime<Utc>, length: Duration) -> Self {
        let seconds = i64::try_from(length.as_secs()).unwrap_or(i64::MAX).max(1);
        let start = now.timestamp().div_euclid(seconds) * seconds;
        let start = Utc.timestamp_opt(start, 0).single().unwrap_or(now);
        let end = start + chrono::Duration::from_std(length).unwrap_or_default();
        let retry_after = u64::try_from((end - now).num_seconds().max(1)).unwrap_or(1);
        Self {
            start,
            end,
            retry_after,
        }
    }
}

/// Checks a typed access code. A right code always passes, at once, whatever
/// happened before from the same address or for the same commune: nobody can
/// lock a mairie out, nor a communauté de communes behind one address.
///
/// Only failures are throttled. Each one is counted atomically, per client and
/// per commune (the public tag of the code), and compared after counting, so
/// a parallel burst cannot slip past the limit: past it, a wrong code is
/// answered `429` with `Retry-After` instead of `401`, at once (nothing here
/// sleeps, which would hold a Lambda function or a connection).
pub async fn check_code(
    state: &AppState,
    typed: &str,
    client: &str,
    now: DateTime<Utc>,
) -> Result<Credential, ApiError> {
    let code = AccessCode::parse(typed);
    let found = match &code {
        Some(code) => state.store.credential_by_hash(&code.hash()).await?,
        None => None,
    };
    if let Some(credential) = found.filter(|c| c.is_active(now)) {
        // "Last used" is for humans: a minute's precision spares a write per request.
        let stale = credential
            .last_used_at
            .is_none_or(|last| now - last > chrono::Duration::seconds(60));
        if stale {
            state.store.touch_credential(&credential.id, now).await?;
        }
        return Ok(credential);
    }
    let policy = state.config.throttle;
    let window = Window::at(now, policy.window);
    let for_client = state
        .store
        .add_failure(client, window.start, window.end)
        .await?;
    let commune = code.as_ref().and_then(AccessCode::commune);
    let for_commune = match &commune {
        Some(commune) => {
            let key = format!("commune:{commune}");
            Some(
                state
                    .store
                    .add_failure(&key, window.start, window.end)
                    .await?,
            )
        }
        None => None,
    };
    tracing::warn!(
        event = "login_failed",
        client,
        commune = commune.as_ref().map(CommuneCode::as_str),
        failures = for_client,
        commune_failures = for_commune,
        "failed authentication"
    );
    if for_client > policy.max_failures {
        return Err(ApiError::too_many_requests(window.retry_after));
    }
    if for_commune.is_some_and(|n| n > policy.commune_failures_before_throttle) {
        return Err(ApiError::too_many_requests(
            policy.commune_retry_after.as_secs().max(1),
        ));
    }
    Err(ApiError::unauthorized())
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
    if credential.role.is_supervisor() {
        check_api_second_factor(state, &credential, headers, now).await?;
    }
    Ok(Caller::new(credential))
}

/// The header of an API request that carries the second factor's code.
pub const SECOND_FACTOR_HEADER: &str = "x-totp";

/// A prefecture or national call to the API carries the six digits of its
/// second factor in `X-TOTP`: without it, the access code alone would open
/// through the API what the login page guards with two factors. A code is
/// good through its 30 seconds (and one step of drift), so that a script can
/// send several calls with it; wrong codes are counted and throttled like
/// wrong access codes. A code whose second factor is not enrolled yet gets
/// `403` and is told how to enrol.
async fn check_api_second_factor(
    state: &AppState,
    credential: &Credential,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let Some(factor) = credential
        .second_factor
        .as_ref()
        .filter(|f| f.confirmed_at.is_some())
    else {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "second_factor_required",
            "Ce code de préfecture n'a pas encore de double authentification : connectez-vous \
            une fois avec lui sur la page de connexion pour l'activer, puis envoyez le code à six \
            chiffres de votre application dans l'en-tête X-TOTP.",
        ));
    };
    second_factor_open(state, credential, now).await?;
    let typed = headers
        .get(SECOND_FACTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if crate::second_factor::check(&factor.secret, typed, now).is_some() {
        return Ok(());
    }
    second_factor_failed(state, credential, now).await?;
    Err(ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "second_factor_invalid",
        "Code de double authentification absent ou incorrect : envoyez dans l'en-tête X-TOTP \
        les six chiffres que montre votre application en ce moment.",
    ))
}

/// The key of a credential's wrong second-factor codes.
fn second_factor_key(credential: &Credential) -> String {
    format!("second-factor:{}", credential.id)
}

/// Refuses `client` once its failures (wrong codes, ProConnect returns
/// that opened nothing) reached the policy's limit in the window: `429`
/// before any costly check, such as trading a code at the provider.
pub async fn client_open(
    state: &AppState,
    client: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let policy = state.config.throttle;
    let window = Window::at(now, policy.window);
    let failures = state.store.failures(client, window.start, now).await?;
    if failures >= policy.max_failures {
        return Err(ApiError::too_many_requests(window.retry_after));
    }
    Ok(())
}

/// Counts a failure of `client` in its window.
pub async fn client_failed(
    state: &AppState,
    client: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let window = Window::at(now, state.config.throttle.window);
    state
        .store
        .add_failure(client, window.start, window.end)
        .await?;
    Ok(())
}

/// Refuses to check any second-factor code of `credential` once its wrong
/// codes reached the policy's limit in the window: `429` until the window
/// ends, the right code included. Called before a code is looked at, on
/// both paths (the page and `X-TOTP`): otherwise a right guess during the
/// lockout would still open, and the lockout would only slow the guessing
/// down by the cost of a `429`.
pub async fn second_factor_open(
    state: &AppState,
    credential: &Credential,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let policy = state.config.throttle;
    let window = Window::at(now, policy.window);
    let failures = state
        .store
        .failures(&second_factor_key(credential), window.start, now)
        .await?;
    if failures >= policy.max_failures {
        tracing::warn!(
            event = "second_factor_locked",
            credential = %credential.id,
            failures,
            "second factor locked for the window; code not checked"
        );
        return Err(ApiError::too_many_requests(window.retry_after));
    }
    Ok(())
}

/// Counts a wrong second-factor code of `credential`; past the policy's
/// limit in the window, answers `429` with `Retry-After` (six digits are a
/// million guesses: ten per window make them worthless).
pub async fn second_factor_failed(
    state: &AppState,
    credential: &Credential,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let policy = state.config.throttle;
    let window = Window::at(now, policy.window);
    let failures = state
        .store
        .add_failure(&second_factor_key(credential), window.start, window.end)
        .await?;
    tracing::warn!(
        event = "second_factor_failed",
        credential = %credential.id,
        failures,
        "wrong second-factor code"
    );
    if failures > policy.max_failures {
        return Err(ApiError::too_many_requests(window.retry_after));
    }
    Ok(())
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

/// A `Set-Cookie` value (the `cookie` crate): HttpOnly, SameSite=Strict, path
/// `/`, and Secure unless the app runs on plain-http loopback. Without a
/// lifetime, the cookie is removed (`Max-Age=0`).
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    let seconds = max_age.map_or(0, |age| i64::try_from(age.as_secs()).unwrap_or(i64::MAX));
    Cookie::build((name.to_owned(), value.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(seconds))
        .build()
        .to_string()
}

/// The value of a cookie in the request, if present (axum-extra's `CookieJar`).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|cookie| cookie.value().to_owned())
}

/// The CSRF token of a session: derived from the session id, so it is never
/// stored and changes with every session.
pub fn csrf_token(session_id: &str) -> String {
    hash_secret("csrf", session_id)[..32].to_owned()
}

/// Compares two tokens in constant time (`subtle`): how long it takes says
/// nothing of how much of a guess was right.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// Whether a browser's request comes from a page of this app rather than from
/// another site. Browsers say so in `Sec-Fetch-Site`; older ones send at least
/// `Origin` (or `Referer`) with a POST, which must then be the app's own
/// origin: `--public-url`'s, or else the address the request was sent to.
/// A request that says nothing is not taken as same-origin.
pub fn same_origin(config: &crate::AppConfig, headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site.eq_ignore_ascii_case("same-origin");
    }
    let claimed = match text(header::ORIGIN) {
        Some(origin) => Some(origin.to_owned()),
        None => text(header::REFERER).and_then(decompte_config::origin_of),
    };
    let Some(claimed) = claimed.map(|o| o.to_ascii_lowercase()) else {
        return false;
    };
    own_origin(config, headers).is_some_and(|own| claimed == own)
}

/// The app's own origin: `--public-url`'s, or else the address the request
/// was sent to (its `Host`, over https unless the app runs on plain-http
/// loopback).
pub fn own_origin(config: &crate::AppConfig, headers: &HeaderMap) -> Option<String> {
    if let Some(own) = &config.public_origin {
        return Some(own.clone());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let scheme = if config.secure_cookies {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
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
            last_seen_at: now,
            pending: false,
        })
        .await?;
    Ok(session_id)
}

/// A logged-in browser: its caller, its session id and its CSRF token.
#[derive(Clone)]
pub struct BrowserSession {
    pub caller: Caller,
    pub session_id: String,
    pub csrf: String,
}

impl std::fmt::Debug for BrowserSession {
    /// The session id and the CSRF token are secrets: never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSession")
            .field("caller", &self.caller)
            .field("session_id", &"…")
            .field("csrf", &"…")
            .finish()
    }
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
        .session(&hash_secret("session", &session_id), now)
        .await?
    else {
        return Ok(None);
    };
    // A login half done (the second factor still to come) opens nothing.
    if session.pending {
        return Ok(None);
    }
    let Some(credential) = state.store.credential(&session.credential_id).await? else {
        return Ok(None);
    };
    if !credential.is_active(now) {
        return Ok(None);
    }
    // Idle too long: the session is over (30 minutes for the prefecture, two
    // hours for a mairie, by default), whatever its absolute lifetime.
    let idle =
        chrono::Duration::from_std(state.config.idle_for(credential.role)).unwrap_or_default();
    if now - session.last_seen_at > idle {
        state.store.delete_session(&session.id_hash).await?;
        tracing::info!(event = "session_idle", credential = %credential.id, "session ended after \
            inactivity");
        return Ok(None);
    }
    // Activity to the minute: one write a minute at most, not one per request.
    if now - session.last_seen_at > chrono::Duration::seconds(60) {
        state.store.touch_session(&session.id_hash, now).await?;
    }
    Ok(Some(BrowserSession {
        caller: Caller::new(credential),
        csrf: csrf_token(&session_id),
        session_id,
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
        let attributes = |text: &str| {
            let mut parts: Vec<String> = text.split("; ").map(str::to_owned).collect();
            parts.sort();
            parts
        };
        let secure = set_cookie(
            session_cookie_name(true),
            "abc",
            Some(Duration::from_secs(60)),
            true,
        );
        assert_eq!(
            attributes(&secure),
            attributes(
                "__Host-decompte_session=abc; Path=/; HttpOnly; SameSite=Strict; Secure; \
                Max-Age=60"
            )
        );
        let loopback = set_cookie(session_cookie_name(false), "abc", None, false);
        assert_eq!(
            attributes(&loopback),
            attributes("decompte_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
        );
    }

    #[test]
    fn cookies_are_read_and_tokens_compared() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; decompte_session=xyz; b=2".parse().expect("header"),
        );
        assert_eq!(cookie(&headers, "decompte_session").as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "missing"), None);
        assert!(tokens_match("abcd", "abcd"));
        assert!(!tokens_match("abcd", "abce"));
        assert!(!tokens_match("abcd", "abc"));
        assert_ne!(csrf_token("s1"), csrf_token("s2"));
    }

    #[test]
    fn ipv6_clients_are_counted_per_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff:eeee:dddd:cccc".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(throttle_key(a), "client:2001:db8:1:2::/64");
        assert_eq!(throttle_key(a), throttle_key(b));
        assert_ne!(throttle_key(a), throttle_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(throttle_key(mapped), "client:192.0.2.7");
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().expect("header"));
        headers
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let mut config = crate::AppConfig::new(decompte_core::Scope::default());
        let proxy: IpAddr = "10.0.0.5".parse().expect("ip");
        let stranger: IpAddr = "203.0.113.9".parse().expect("ip");
        let headers = forwarded("198.51.100.1, 192.0.2.44");
        // No trusted proxy: the header is ignored.
        assert_eq!(client_address(&config, &headers, Some(proxy)), Some(proxy));
        config.trusted_proxies = vec!["10.0.0.0/8".parse().expect("net")];
        // From a stranger, never believed.
        assert_eq!(
            client_address(&config, &headers, Some(stranger)),
            Some(stranger)
        );
        // From our proxy: the hop it added, not what the client wrote before it.
        assert_eq!(
            client_address(&config, &headers, Some(proxy)),
            "192.0.2.44".parse().ok()
        );
        // Proxies of ours are skipped from the right.
        assert_eq!(
            client_address(&config, &forwarded("192.0.2.44, 10.1.1.1"), Some(proxy)),
            "192.0.2.44".parse().ok()
        );
        // A hop that is not an address stops the walk at the last one vouched for.
        assert_eq!(
            client_address(
                &config,
                &forwarded("192.0.2.44, evil, 10.1.1.1"),
                Some(proxy)
            ),
            "10.1.1.1".parse().ok()
        );
        assert_eq!(
            client_address(&config, &forwarded("[2001:db8::1]:4711"), Some(proxy)),
            "2001:db8::1".parse().ok()
        );
    }

    #[test]
    fn drafts_are_kept_only_for_same_origin_requests() {
        let mut config = crate::AppConfig::new(decompte_core::Scope::default());
        config.public_origin = Some("https://declarer.example.fr".into());
        let with = |pairs: &[(&'static str, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, value.parse().expect("header"));
            }
            same_origin(&config, &headers)
        };
        assert!(with(&[("sec-fetch-site", "same-origin")]));
        assert!(!with(&[("sec-fetch-site", "cross-site")]));
        assert!(!with(&[
            ("sec-fetch-site", "same-site"),
            ("origin", "https://declarer.example.fr")
        ]));
        assert!(with(&[("origin", "https://declarer.example.fr")]));
        assert!(!with(&[("origin", "https://attaquant.example")]));
        assert!(!with(&[("origin", "null")]));
        assert!(with(&[(
            "referer",
            "https://declarer.example.fr/saisie?date=2020-04-01"
        )]));
        assert!(!with(&[(
            "referer",
            "https://declarer.example.fr.attaquant.example/"
        )]));
        assert!(!with(&[]));
        let session = BrowserSession {
            caller: Caller::new(Credential {
                id: "commune-1".into(),
                role: Role::Commune,
                commune: None,
                departements: Vec::new(),
                label: "Mairie".into(),
                code_hash: String::new(),
                created_at: Utc::now(),
                last_used_at: None,
                revoked_at: None,
                issued_by: None,
                expires_at: None,
                second_factor: Some(decompte_store::SecondFactor::pending("secret-totp".into())),
            }),
            session_id: "secret-session".into(),
            csrf: "secret-token".into(),
        };
        let printed = format!("{session:?}");
        assert!(!printed.contains("secret-"), "{printed}");
    }
}
