//! Sign-in of State agents with ProConnect, the State's identity
//! federation (OpenID Connect), beside the prefecture access codes: the
//! authorisation code flow with PKCE (S256), `state` and `nonce` checked,
//! the ID token's signature, issuer, audience and expiry verified against
//! the provider's published keys (kept, fetched again when a token names a
//! key not seen yet). An agent whose e-mail address (or its domain) is
//! allowed by `DECOMPTE_OIDC_AGENTS` signs in as a prefecture of the
//! départements the rule names at that sign-in; a credential is kept per
//! agent, named by the issuer and the provider's `sub` (never by the
//! address, which a mailbox may be given to someone else), so the prefecture
//! sees who did what and can revoke an agent on the codes page. When the ID
//! token shows no second factor (`amr`, `acr`), the agent gives decompte's
//! own.

use std::time::Duration;

use base64::Engine;
use decompte_config::{ConfigError, Options, Secret};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What the provider's redirect back carries, once checked against the
/// flow cookie this browser kept: the code to trade, and the nonce and PKCE
/// verifier of this sign-in.
#[derive(Debug, PartialEq, Eq)]
pub struct Return {
    pub code: String,
    pub nonce: String,
    pub verifier: String,
}

/// Why a redirect back opens nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum ReturnRefusal {
    /// The provider ended the sign-in (its `error`).
    Interrupted(String),
    /// No flow cookie, or not ours: expired, or another browser.
    NoFlow,
    /// No `code` or no `state`.
    Incomplete,
    /// A `state` that is not this browser's.
    StateMismatch,
}

/// Reads the query of `/connexion/proconnect/retour` (`code`, `state`,
/// `error`) against the flow cookie (`state.nonce.verifier`); the states
/// compared in constant time. Any bytes may arrive here.
pub fn read_return(query: &str, kept: &str) -> Result<Return, ReturnRefusal> {
    #[derive(Deserialize, Default)]
    struct Query {
        code: Option<String>,
        state: Option<String>,
        error: Option<String>,
    }
    let query: Query = serde_urlencoded::from_str(query).unwrap_or_default();
    if let Some(error) = query.error {
        return Err(ReturnRefusal::Interrupted(error));
    }
    let mut parts = kept.splitn(3, '.');
    let (Some(expected), Some(nonce), Some(verifier)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ReturnRefusal::NoFlow);
    };
    if expected.is_empty() || nonce.is_empty() || verifier.is_empty() {
        return Err(ReturnRefusal::NoFlow);
    }
    let (Some(code), Some(given)) = (query.code, query.state) else {
        return Err(ReturnRefusal::Incomplete);
    };
    if code.is_empty() {
        return Err(ReturnRefusal::Incomplete);
    }
    if !crate::auth::tokens_match(expected, &given) {
        return Err(ReturnRefusal::StateMismatch);
    }
    Ok(Return {
        code,
        nonce: nonce.to_owned(),
        verifier: verifier.to_owned(),
    })
}

/// What the provider publishes at `/.well-known/openid-configuration`.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    userinfo_endpoint: Option<String>,
    /// Where the browser ends the provider's session too at logout.
    end_session_endpoint: Option<String>,
}

/// How long the provider's keys are kept before a token naming an unknown
/// one may fetch them again (a burst of forged `kid`s fetches them once).
const KEYS_REFRESH: Duration = Duration::from_secs(30);

/// Who may sign in: an address, or every address of a domain, and the
/// départements it reaches (empty: every one served).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    address_or_domain: String,
    departements: Vec<String>,
}

/// The deployment's ProConnect client.
pub struct Oidc {
    issuer: String,
    client_id: String,
    client_secret: Secret,
    rules: Vec<Rule>,
    http: reqwest::Client,
    metadata: tokio::sync::OnceCell<Metadata>,
    /// The provider's signing keys, and when they were fetched.
    keys: tokio::sync::RwLock<Option<(JwkSet, std::time::Instant)>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("rules", &self.rules)
            .finish()
    }
}

/// An agent ProConnect vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// The id of its credential: the issuer and the provider's `sub`.
    pub credential_id: String,
    /// Verified by the provider.
    pub email: String,
    /// « Camille Agent », when the provider says.
    pub name: Option<String>,
    /// The ID token shows a second factor (`amr`, `acr`); otherwise the
    /// agent gives decompte's own.
    pub second_factor: bool,
    /// The ID token, to end the provider's session at logout.
    pub id_token: String,
}

/// The credential id of the agent `sub` of `issuer`.
pub fn agent_id(issuer: &str, sub: &str) -> String {
    let subject = format!("{}\n{sub}", issuer.trim_end_matches('/'));
    format!(
        "proconnect-{}",
        &decompte_core::auth::hash_secret("proconnect-subject", &subject)[..24]
    )
}

/// Whether an authentication shows a second factor: `amr` names one
/// (RFC 8176's `mfa`, or two methods), or `acr` is a level that requires
/// one (eIDAS substantial or high, ProConnect's `…-2fa`).
pub fn shows_second_factor(amr: &[String], acr: Option<&str>) -> bool {
    let methods: std::collections::BTreeSet<&str> = amr.iter().map(String::as_str).collect();
    methods.contains("mfa")
        || methods.len() >= 2
        || acr.is_some_and(|a| {
            a == "eidas2" || a == "eidas3" || a.ends_with("-2fa") || a.ends_with("-mfa")
        })
}

/// Why a sign-in did not go through; its text is shown to the agent.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("ProConnect ne répond pas : réessayez dans quelques minutes, ou utilisez votre code d'accès.")]
    Unreachable(String),
    #[error("La réponse de ProConnect n'a pas pu être vérifiée : recommencez la connexion.")]
    Invalid(String),
    #[error("Votre fournisseur d'identité n'a pas vérifié votre adresse électronique : faites-la vérifier, ou utilisez votre code d'accès.")]
    Unverified,
}

/// `aud`: one audience or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    Many(Vec<String>),
    One(serde::de::IgnoredAny),
}

/// The claims decompte reads in an ID token or the user info.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    aud: Option<Audience>,
    azp: Option<String>,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<bool>,
    given_name: Option<String>,
    usual_name: Option<String>,
    family_name: Option<String>,
    #[serde(default)]
    amr: Vec<String>,
    acr: Option<String>,
}

impl Claims {
    /// The authorised party is this client: required when the token has
    /// several audiences (OpenID Connect Core, 3.1.3.7), checked whenever
    /// present.
    fn authorised_party_is(&self, client_id: &str) -> bool {
        let several = matches!(&self.aud, Some(Audience::Many(list)) if list.len() > 1);
        match &self.azp {
            Some(azp) => azp == client_id,
            None => !several,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Tokens {
    id_token: String,
    access_token: Option<String>,
}

/// The ProConnect federation (and AgentConnect, its former name), whose
/// identity providers' addresses are verified before they reach a service.
fn federation_vouches_for_addresses(issuer: &str) -> bool {
    let host = issuer
        .strip_prefix("https://")
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or("");
    ["proconnect.gouv.fr", "agentconnect.gouv.fr"]
        .iter()
        .any(|domain| host == *domain || host.ends_with(&format!(".{domain}")))
}

/// The PKCE challenge of a verifier (S256).
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Oidc {
    /// The client the options describe; `None` without `DECOMPTE_OIDC_ISSUER`.
    pub fn from_options(options: &Options) -> Result<Option<Self>, ConfigError> {
        let Some(issuer) = options.oidc_issuer.as_deref().map(str::trim) else {
            return Ok(None);
        };
        let invalid = |why: &str| ConfigError::Oidc(why.to_owned());
        let client_id = options.oidc_client_id.clone().ok_or_else(|| {
            invalid("DECOMPTE_OIDC_CLIENT_ID is required with DECOMPTE_OIDC_ISSUER")
        })?;
        let client_secret = options.oidc_client_secret.clone().ok_or_else(|| {
            invalid("DECOMPTE_OIDC_CLIENT_SECRET is required with DECOMPTE_OIDC_ISSUER")
        })?;
        let loopback =
            issuer.starts_with("http://127.0.0.1") || issuer.starts_with("http://localhost");
        if !issuer.starts_with("https://") && !loopback {
            return Err(invalid("the issuer must be an https:// address"));
        }
        let scope = options.scope()?;
        let mut rules = Vec::new();
        for entry in options
            .oidc_agents
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
        {
            let (who, departements) = match entry.split_once('=') {
                Some((who, list)) => (
                    who.trim(),
                    list.split('+')
                        .map(|d| d.trim().to_uppercase())
                        .collect::<Vec<_>>(),
                ),
                None => (entry, Vec::new()),
            };
            if let Some(unknown) = departements
                .iter()
                .find(|d| scope.departement_name(d).is_none())
            {
                return Err(ConfigError::Oidc(format!(
                    "DECOMPTE_OIDC_AGENTS: {unknown} is not a département served"
                )));
            }
            if who.is_empty() || who.contains(char::is_whitespace) || !who.contains('.') {
                return Err(ConfigError::Oidc(format!(
                    "DECOMPTE_OIDC_AGENTS: `{who}` is neither an e-mail address nor a domain"
                )));
            }
            rules.push(Rule {
                address_or_domain: who.to_lowercase(),
                departements,
            });
        }
        if rules.is_empty() {
            return Err(invalid(
                "DECOMPTE_OIDC_AGENTS must say who signs in (domains or addresses)",
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Oidc(e.to_string()))?;
        Ok(Some(Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id,
            client_secret,
            rules,
            http,
            metadata: tokio::sync::OnceCell::new(),
            keys: tokio::sync::RwLock::new(None),
        }))
    }

    /// The départements an agent reaches (empty: every one served), or
    /// `None` if no rule lets the address in. An address's own rule wins
    /// over its domain's.
    pub fn reach_of(&self, email: &str) -> Option<Vec<String>> {
        let email = email.trim().to_lowercase();
        let domain = email.rsplit_once('@').map(|(_, d)| d)?;
        self.rules
            .iter()
            .find(|r| r.address_or_domain == email)
            .or_else(|| self.rules.iter().find(|r| r.address_or_domain == domain))
            .map(|r| r.departements.clone())
    }

    async fn metadata(&self) -> Result<&Metadata, OidcError> {
        self.metadata
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let metadata: Metadata = self.get_json(&url).await?;
                if metadata.issuer.trim_end_matches('/') != self.issuer {
                    return Err(OidcError::Invalid(format!(
                        "the provider names itself {}",
                        metadata.issuer
                    )));
                }
                Ok(metadata)
            })
            .await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(OidcError::Unreachable(format!(
                "{url}: {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| OidcError::Invalid(e.to_string()))
    }

    /// Where to send the agent's browser to sign in.
    pub async fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<String, OidcError> {
        let metadata = self.metadata().await?;
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("scope", "openid email given_name usual_name"),
            // How the agent authenticated: a second factor, or ours.
            (
                "claims",
                r#"{"id_token":{"amr":{"essential":true},"acr":null}}"#,
            ),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", &challenge(verifier)),
            ("code_challenge_method", "S256"),
        ])
        .map_err(|e| OidcError::Invalid(e.to_string()))?;
        let separator = if metadata.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!(
            "{}{separator}{query}",
            metadata.authorization_endpoint
        ))
    }

    /// Trades the authorisation `code` for the agent it vouches for: the
    /// token request with the PKCE verifier and the client secret, then the
    /// ID token verified (signature, issuer, audience, expiry, `nonce`), and
    /// the e-mail address from it or from the user info.
    pub async fn sign_in(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        redirect_uri: &str,
    ) -> Result<Agent, OidcError> {
        let metadata = self.metadata().await?;
        let response = self
            .http
            .post(&metadata.token_endpoint)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.expose()),
            ])
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(OidcError::Invalid(format!(
                "token endpoint: {}",
                response.status()
            )));
        }
        let tokens: Tokens = response
            .json()
            .await
            .map_err(|e| OidcError::Invalid(e.to_string()))?;
        let token = self.verify(&tokens.id_token, true).await?;
        if token
            .nonce
            .as_deref()
            .is_none_or(|n| !crate::auth::tokens_match(nonce, n))
        {
            return Err(OidcError::Invalid("the nonce differs".into()));
        }
        if !token.authorised_party_is(&self.client_id) {
            return Err(OidcError::Invalid("another authorised party".into()));
        }
        let sub = token
            .sub
            .clone()
            .ok_or_else(|| OidcError::Invalid("no sub".into()))?;
        let info = match (
            &token.email,
            &tokens.access_token,
            &metadata.userinfo_endpoint,
        ) {
            (Some(_), _, _) => None,
            (None, Some(access), Some(userinfo)) => {
                let info = self.userinfo(userinfo, access).await?;
                // The user info must be about the agent the ID token names.
                if info.sub.as_deref() != Some(sub.as_str()) {
                    return Err(OidcError::Invalid("the user info names another sub".into()));
                }
                Some(info)
            }
            _ => return Err(OidcError::Invalid("no e-mail address".into())),
        };
        let about = info.as_ref().unwrap_or(&token);
        let email = about
            .email
            .clone()
            .ok_or_else(|| OidcError::Invalid("no e-mail address".into()))?;
        match about.email_verified {
            Some(true) => {}
            // The ProConnect federation vouches for its identity providers'
            // addresses and does not send the claim; any other provider must.
            None if federation_vouches_for_addresses(&self.issuer) => {}
            _ => return Err(OidcError::Unverified),
        }
        let family = about.usual_name.clone().or(about.family_name.clone());
        let name = match (about.given_name.clone(), family) {
            (Some(given), Some(family)) => Some(format!("{given} {family}")),
            (Some(only), None) | (None, Some(only)) => Some(only),
            (None, None) => None,
        };
        Ok(Agent {
            credential_id: agent_id(&metadata.issuer, &sub),
            email,
            name,
            second_factor: shows_second_factor(&token.amr, token.acr.as_deref()),
            id_token: tokens.id_token,
        })
    }

    /// Where to send the browser at logout to end the provider's session
    /// too (RP-initiated logout), then back to `post_logout`; `None` if the
    /// provider publishes no such endpoint.
    pub async fn logout_url(&self, id_token: &str, post_logout: &str) -> Option<String> {
        let metadata = self.metadata().await.ok()?;
        let endpoint = metadata.end_session_endpoint.as_deref()?;
        let query = serde_urlencoded::to_string([
            ("id_token_hint", id_token),
            ("client_id", self.client_id.as_str()),
            ("post_logout_redirect_uri", post_logout),
            ("state", &hex::encode(crate::auth::random_bytes::<16>())),
        ])
        .ok()?;
        let separator = if endpoint.contains('?') { '&' } else { '?' };
        Some(format!("{endpoint}{separator}{query}"))
    }

    /// The key that signed a token: by its `kid` among the provider's keys
    /// (fetched again, at most every [`KEYS_REFRESH`], when the `kid` is not
    /// known yet: the provider rotated them); without a `kid`, only if the
    /// provider has one key.
    async fn signing_key(&self, kid: Option<&str>) -> Result<DecodingKey, OidcError> {
        let pick = |keys: &JwkSet| match kid {
            Some(kid) => keys.find(kid).cloned(),
            None if keys.keys.len() == 1 => keys.keys.first().cloned(),
            None => None,
        };
        let fresh = {
            let kept = self.keys.read().await;
            if let Some(key) = kept.as_ref().and_then(|(keys, _)| pick(keys)) {
                return DecodingKey::from_jwk(&key).map_err(|e| OidcError::Invalid(e.to_string()));
            }
            kept.as_ref()
                .is_some_and(|(_, at)| at.elapsed() < KEYS_REFRESH)
        };
        if fresh {
            return Err(OidcError::Invalid("unknown signing key".into()));
        }
        let metadata = self.metadata().await?;
        let keys: JwkSet = self.get_json(&metadata.jwks_uri).await?;
        let key = pick(&keys);
        *self.keys.write().await = Some((keys, std::time::Instant::now()));
        let key = key.ok_or_else(|| OidcError::Invalid("unknown signing key".into()))?;
        DecodingKey::from_jwk(&key).map_err(|e| OidcError::Invalid(e.to_string()))
    }

    /// The claims of a token the provider signed for this client: its
    /// issuer, audience, expiry and, for an ID token, `sub`, all required.
    async fn verify(&self, token: &str, id_token: bool) -> Result<Claims, OidcError> {
        let metadata = self.metadata().await?;
        let header = decode_header(token).map_err(|e| OidcError::Invalid(e.to_string()))?;
        let key = self.signing_key(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&self.client_id]);
        validation.set_issuer(&[&self.issuer, &metadata.issuer]);
        if id_token {
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        }
        decode::<Claims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| OidcError::Invalid(e.to_string()))
    }

    /// The user info: JSON, or (as ProConnect answers) a signed token.
    async fn userinfo(&self, url: &str, access_token: &str) -> Result<Claims, OidcError> {
        let response = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(OidcError::Invalid(format!(
                "userinfo: {}",
                response.status()
            )));
        }
        let signed = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/jwt"));
        let body = response
            .text()
            .await
            .map_err(|e| OidcError::Invalid(e.to_string()))?;
        if signed {
            self.verify(body.trim(), false).await
        } else {
            serde_json::from_str(&body).map_err(|e| OidcError::Invalid(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_return_opens_only_with_this_browser_s_state() {
        let kept = "s1.n1.v1";
        assert_eq!(
            read_return("code=c&state=s1", kept),
            Ok(Return {
                code: "c".into(),
                nonce: "n1".into(),
                verifier: "v1".into()
            })
        );
        assert_eq!(
            read_return("code=c&state=s2", kept),
            Err(ReturnRefusal::StateMismatch)
        );
        assert_eq!(
            read_return("error=access_denied&code=c&state=s1", kept),
            Err(ReturnRefusal::Interrupted("access_denied".into()))
        );
        assert_eq!(
            read_return("code=c&state=s1", ""),
            Err(ReturnRefusal::NoFlow)
        );
        assert_eq!(
            read_return("code=c&state=", "..x"),
            Err(ReturnRefusal::NoFlow)
        );
        assert_eq!(
            read_return("state=s1", kept),
            Err(ReturnRefusal::Incomplete)
        );
        assert_eq!(
            read_return("code=&state=s1", kept),
            Err(ReturnRefusal::Incomplete)
        );
        assert_eq!(read_return("%zz&&=", kept), Err(ReturnRefusal::Incomplete));
    }

    fn client(agents: &[&str]) -> Result<Option<Oidc>, ConfigError> {
        let mut options = Options::for_data_dir(std::env::temp_dir());
        options.departements = vec!["29".into(), "56".into()];
        options.oidc_issuer = Some("https://auth.agentconnect.gouv.fr/api/v2".into());
        options.oidc_client_id = Some("decompte".into());
        options.oidc_client_secret = Some("s3cr3t".parse().expect("secret"));
        options.oidc_agents = agents.iter().map(|a| (*a).to_owned()).collect();
        Oidc::from_options(&options)
    }

    #[test]
    fn rules_say_who_signs_in_and_what_they_reach() {
        let oidc = client(&[
            "morbihan.gouv.fr=56",
            "cab@bretagne.gouv.fr=29+56",
            "interieur.gouv.fr",
        ])
        .expect("valid")
        .expect("configured");
        assert_eq!(
            oidc.reach_of("Camille.Agent@Morbihan.gouv.fr"),
            Some(vec!["56".to_owned()])
        );
        assert_eq!(
            oidc.reach_of("cab@bretagne.gouv.fr"),
            Some(vec!["29".to_owned(), "56".to_owned()])
        );
        assert_eq!(oidc.reach_of("x@bretagne.gouv.fr"), None);
        assert_eq!(oidc.reach_of("x@interieur.gouv.fr"), Some(vec![]));
        assert_eq!(oidc.reach_of("x@morbihan.gouv.fr.example.com"), None);
        assert!(!format!("{oidc:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_wrong_rule_is_refused_at_start() {
        assert!(
            client(&["morbihan.gouv.fr=75"]).is_err(),
            "75 is not served"
        );
        assert!(client(&[]).is_err(), "nobody may sign in");
        assert!(client(&["nobody"]).is_err());
    }

    #[test]
    fn a_second_factor_is_read_in_amr_or_acr() {
        let amr = |list: &[&str]| list.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>();
        assert!(!shows_second_factor(&amr(&["pwd"]), None));
        assert!(!shows_second_factor(&amr(&[]), Some("eidas1")));
        assert!(!shows_second_factor(
            &amr(&["pwd"]),
            Some("https://proconnect.gouv.fr/assurance/self-asserted")
        ));
        assert!(shows_second_factor(&amr(&["pwd", "otp"]), None));
        assert!(shows_second_factor(&amr(&["mfa"]), None));
        assert!(shows_second_factor(&amr(&["pwd", "pop", "mfa"]), None));
        assert!(shows_second_factor(&amr(&[]), Some("eidas2")));
        assert!(shows_second_factor(
            &amr(&["pwd"]),
            Some("https://proconnect.gouv.fr/assurance/consistency-checked-2fa")
        ));
    }

    #[test]
    fn an_agent_is_named_by_its_issuer_and_sub() {
        let a = agent_id("https://idp.example/", "123");
        assert_eq!(a, agent_id("https://idp.example", "123"));
        assert_ne!(a, agent_id("https://other.example", "123"));
        assert_ne!(a, agent_id("https://idp.example", "124"));
        assert!(a.starts_with("proconnect-"));
    }

    #[test]
    fn only_the_federation_is_trusted_for_unverified_addresses() {
        assert!(federation_vouches_for_addresses(
            "https://auth.proconnect.gouv.fr/api/v2"
        ));
        assert!(federation_vouches_for_addresses(
            "https://auth.agentconnect.gouv.fr/api/v2"
        ));
        assert!(!federation_vouches_for_addresses(
            "https://proconnect.gouv.fr.evil.example"
        ));
        assert!(!federation_vouches_for_addresses("http://127.0.0.1:4000"));
    }

    #[test]
    fn several_audiences_need_this_client_as_authorised_party() {
        let claims = |aud: serde_json::Value, azp: Option<&str>| -> Claims {
            serde_json::from_value(serde_json::json!({"aud": aud, "azp": azp})).expect("claims")
        };
        assert!(claims(serde_json::json!("decompte"), None).authorised_party_is("decompte"));
        assert!(claims(serde_json::json!(["decompte"]), None).authorised_party_is("decompte"));
        assert!(!claims(serde_json::json!(["decompte", "x"]), None).authorised_party_is("decompte"));
        assert!(
            claims(serde_json::json!(["decompte", "x"]), Some("decompte"))
                .authorised_party_is("decompte")
        );
        assert!(!claims(serde_json::json!("decompte"), Some("x")).authorised_party_is("decompte"));
    }

    #[test]
    fn the_pkce_challenge_is_rfc_7636_s256() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
