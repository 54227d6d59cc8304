//! The error policy of the HTTP app.
//!
//! Every rejection is an [`ApiError`]: a status, a stable machine code, a French
//! message that says what to do, and optionally the fields at fault and the
//! current report (on a version conflict). The JSON API renders it as
//! `{"error", "message", "fields"?, "current"?}`; the HTML pages catch the
//! cases they can explain in place (invalid fields, conflicts) and render the
//! rest with the error page. Store failures become `503` with nothing written;
//! anything unexpected is logged and becomes a `500` without details.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use decompte_core::FieldError;
use decompte_store::StoreError;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable code: `invalid`, `version_conflict`, `unauthorized`, `forbidden`, …
    pub error: String,
    /// What was wrong and what to do, in French.
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// On `version_conflict`: the current report (or null if there is none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub current: Option<Value>,
    /// On `confirmation_required`: the figures to look at again, each with
    /// its `code` (`implausible`, `jump`, `old_day`), `field` and French
    /// `message`. Send the same report again with `"confirm": true` to save
    /// it; the warnings are then kept with the version.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub warnings: Vec<decompte_core::plausibility::Warning>,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed to keep `Result<_, ApiError>` small.
    pub body: Box<ErrorBody>,
    /// Extra headers, such as `Retry-After` or `WWW-Authenticate`.
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody {
                error: code.into(),
                message: message.into(),
                fields: Vec::new(),
                current: None,
                warnings: Vec::new(),
            }),
            headers: Vec::new(),
        }
    }

    /// `422 confirmation_required`: nothing saved until the author confirms.
    pub fn warnings(warnings: Vec<decompte_core::plausibility::Warning>) -> Self {
        let message = match warnings.as_slice() {
            [only] => only.message.clone(),
            _ => format!(
                "{} points à vérifier avant d'enregistrer : voyez chacun.",
                warnings.len()
            ),
        };
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "confirmation_required",
            message,
        );
        error.body.warnings = warnings;
        error
    }

    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let message = match fields.as_slice() {
            [only] => only.message.clone(),
            _ => format!(
                "La déclaration comporte {} erreurs : voyez le détail de chaque champ.",
                fields.len()
            ),
        };
        let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message);
        error.body.fields = fields;
        error
    }

    pub fn conflict(message: String, current: Option<Value>) -> Self {
        let mut error = Self::new(StatusCode::CONFLICT, "version_conflict", message);
        error.body.current = Some(current.unwrap_or(Value::Null));
        error
    }

    pub fn unauthorized() -> Self {
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Code d'accès absent, inconnu ou révoqué. Envoyez l'en-tête « Authorization: Bearer \
                <code d'accès> » avec le code remis par la préfecture.",
        );
        error
            .headers
            .push(("www-authenticate", "Bearer realm=\"decompte\"".into()));
        error
    }

    /// A query or form value that cannot be read (a day outside the crisis window, say).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!(
                "Trop de tentatives de connexion échouées depuis votre adresse. Réessayez dans {} \
                    minutes, ou demandez un nouveau code à la préfecture.",
                retry_after_seconds.div_ceil(60)
            ),
        );
        error
            .headers
            .push(("retry-after", retry_after_seconds.to_string()));
        error
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "La requête dépasse la taille maximale de {} octets : une déclaration tient en \
                quelques centaines d'octets.",
                limit
            ),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Le corps de la requête doit être du JSON : envoyez l'en-tête « Content-Type: \
                application/json ».",
        )
    }

    pub fn unavailable() -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Le service d'enregistrement est momentanément indisponible ; rien n'a été enregistré. \
                Réessayez dans une minute.",
        );
        error.headers.push(("retry-after", "30".into()));
        error
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Erreur interne : rien n'a été enregistré. Réessayez ; si le problème continue, \
                prévenez la préfecture.",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(detail) => {
                tracing::error!(%detail, "store unavailable");
                Self::unavailable()
            }
            other => {
                tracing::error!(error = %other, "store error");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(*self.body)).into_response();
        for (name, value) in self.headers {
            if let Ok(value) = value.parse() {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}
