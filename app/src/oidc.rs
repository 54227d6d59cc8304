//! Sign-in of State agents with ProConnect, the State's identity
//! federation (OpenID Connect), beside the prefecture access codes: the
//! authorisation code flow with PKCE (S256), `state` and `nonce` checked,
//! the ID token's signature, issuer, audience and expiry verified against
//! the provider's published keys. An agent whose e-mail address (or its
//! domain) is allowed by `DECOMPTE_OIDC_AGENTS` signs in as a prefecture of
//! the départements the rule names; a credential is kept per agent, so the
//! prefecture sees who did what and can revoke an agent on the codes page.

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
}

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
    pub email: String,
    /// « Camille Agent », when the provider says.
    pub name: Option<String>,
}

/// Why a sign-in did not go through; its text is shown to the agent.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("ProConnect ne répond pas : réessayez dans quelques minutes, ou utilisez votre code d'accès.")]
    Unreachable(String),
    #[error("La réponse de ProConnect n'a pas pu être vérifiée : recommencez la connexion.")]
    Invalid(String),
}

/// The claims decompte reads in an ID token or the user info.
#[derive(Debug, Deserialize)]
struct Claims {
    nonce: Option<String>,
    email: Option<String>,
    given_name: Option<String>,
    usual_name: Option<String>,
    family_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Tokens {
    id_token: String,
    access_token: Option<String>,
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
        let claims = self.verify(&tokens.id_token).await?;
        if claims
            .nonce
            .as_deref()
            .is_none_or(|n| !crate::auth::tokens_match(nonce, n))
        {
            return Err(OidcError::Invalid("the nonce differs".into()));
        }
        let claims = match (
            &claims.email,
            &tokens.access_token,
            &metadata.userinfo_endpoint,
        ) {
            (Some(_), _, _) => claims,
            (None, Some(access), Some(userinfo)) => self.userinfo(userinfo, access).await?,
            _ => return Err(OidcError::Invalid("no e-mail address".into())),
        };
        let email = claims
            .email
            .clone()
            .ok_or_else(|| OidcError::Invalid("no e-mail address".into()))?;
        let family = claims.usual_name.clone().or(claims.family_name.clone());
        let name = match (claims.given_name.clone(), family) {
            (Some(given), Some(family)) => Some(format!("{given} {family}")),
            (Some(only), None) | (None, Some(only)) => Some(only),
            (None, None) => None,
        };
        Ok(Agent { email, name })
    }

    /// The claims of a token the provider signed for this client.
    async fn verify(&self, token: &str) -> Result<Claims, OidcError> {
        let metadata = self.metadata().await?;
        let header = decode_header(token).map_err(|e| OidcError::Invalid(e.to_string()))?;
        let keys: JwkSet = self.get_json(&metadata.jwks_uri).await?;
        let key = match &header.kid {
            Some(kid) => keys.find(kid),
            None => keys.keys.first(),
        }
        .ok_or_else(|| OidcError::Invalid("unknown signing key".into()))?;
        let key = DecodingKey::from_jwk(key).map_err(|e| OidcError::Invalid(e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&self.client_id]);
        validation.set_issuer(&[&self.issuer, &metadata.issuer]);
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
            self.verify(body.trim()).await
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
    fn the_pkce_challenge_is_rfc_7636_s256() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
