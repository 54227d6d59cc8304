//! The app as an AWS Lambda function: the same [`Router`] behind API Gateway
//! (HTTP API, payload 2.0) or a function URL.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use lambda_http::request::RequestContext;

/// Runs `router` on the Lambda runtime until the function is shut down.
pub async fn run(router: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(function_router(router)).await
}

/// The app as the function serves it: its root leads to the login (the public
/// site is on CloudFront), and the client address comes from the request context.
pub fn function_router(router: Router) -> Router {
    router
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::to("/connexion") }),
        )
        .layer(axum::middleware::from_fn(source_ip))
}

/// API Gateway and function URLs give the client's address in the request
/// context (not forgeable by a header): it reaches the handlers as the peer
/// address, for login throttling, as on the local server.
async fn source_ip(mut request: Request, next: Next) -> Response {
    let ip = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .http
            .source_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok()),
        _ => None,
    };
    if let Some(ip) = ip {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 0)));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use async_trait::async_trait;
    use axum::http::{header, StatusCode};
    use decompte_app::{AppConfig, AppState};
    use decompte_publish::PublishTrigger;
    use decompte_store::{Publication, SqliteStore, StoreError};
    use tower::ServiceExt;

    struct NoPublication;

    #[async_trait]
    impl PublishTrigger for NoPublication {
        async fn trigger(&self, _: &str, _: &str) -> Result<Publication, StoreError> {
            Err(StoreError::Unavailable("not in this test".into()))
        }
    }

    fn function() -> Router {
        let referential = decompte_config::referential().expect("referential");
        let scope = referential.scope(&["56".to_owned()]).expect("scope");
        let store = Arc::new(SqliteStore::in_memory().expect("store"));
        let state = AppState::new(store, AppConfig::new(scope), Arc::new(NoPublication));
        function_router(decompte_app::router(state))
    }

    /// An HTTP API (payload 2.0) event, as API Gateway sends it.
    fn event(
        method: &str,
        path: &str,
        source_ip: &str,
        authorization: &str,
    ) -> lambda_http::Request {
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {
                "host": "abc123.execute-api.eu-west-3.amazonaws.com",
                "x-forwarded-proto": "https",
                "x-forwarded-for": "198.51.100.1",
                "authorization": authorization,
            },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "domainName": "abc123.execute-api.eu-west-3.amazonaws.com",
                "domainPrefix": "abc123",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": "Mozilla/5.0",
                },
                "requestId": "id",
                "routeKey": "$default",
                "stage": "$default",
                "time": "28/Nov/2026:20:00:00 +0000",
                "timeEpoch": 1_795_896_000_000_i64,
            },
            "isBase64Encoded": false,
        });
        lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event")
    }

    #[tokio::test]
    async fn failed_logins_are_counted_per_source_ip_of_the_request_context() {
        let app = function();
        let wrong = "Bearer 56260-0000-0000-0000-0000-0000-0000-00";
        for _ in 0..10 {
            let answer = app
                .clone()
                .oneshot(event("GET", "/api/v1/me", "203.0.113.7", wrong))
                .await
                .expect("answer");
            assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        }
        let answer = app
            .clone()
            .oneshot(event("GET", "/api/v1/me", "203.0.113.7", wrong))
            .await
            .expect("answer");
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        // X-Forwarded-For is the same for both: only the request context tells them apart.
        let other = app
            .oneshot(event("GET", "/api/v1/me", "203.0.113.8", wrong))
            .await
            .expect("answer");
        assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn behind_api_gateway_cookies_are_secure_and_the_root_leads_to_the_login() {
        let app = function();
        let login = app
            .clone()
            .oneshot(event("GET", "/connexion", "203.0.113.7", ""))
            .await
            .expect("answer");
        assert_eq!(login.status(), StatusCode::OK);
        let cookie = login
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(cookie.starts_with("__Host-"), "{cookie}");
        assert!(cookie.contains("; Secure"), "{cookie}");
        let root = app
            .oneshot(event("GET", "/", "203.0.113.7", ""))
            .await
            .expect("answer");
        assert_eq!(root.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            root.headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok()),
            Some("/connexion")
        );
    }
}
