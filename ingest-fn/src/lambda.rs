//! The app as an AWS Lambda function: the same [`Router`] behind API Gateway
//! (HTTP API, payload 2.0) or a function URL.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use lambda_http::request::RequestContext;

/// The header the app's CloudFront distribution adds to every request it
/// forwards, with the stack's edge secret.
const EDGE_HEADER: &str = "x-decompte-edge";

/// Runs `router` on the Lambda runtime until the function is shut down.
pub async fn run(router: Router, edge_secret: Option<String>) -> Result<(), lambda_http::Error> {
    lambda_http::run(function_router(router, edge_secret)).await
}

/// The app as the function serves it: its root leads to the login (the public
/// site is on CloudFront), and the client address comes from the request
/// context — or, behind the app's CloudFront distribution (`edge_secret`),
/// from what the distribution says, and then only requests that came through
/// it (and its web ACL's rate limits) are served.
pub fn function_router(router: Router, edge_secret: Option<String>) -> Router {
    let edge = Arc::new(edge_secret.filter(|s| !s.is_empty()));
    router
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::to("/connexion") }),
        )
        .layer(axum::middleware::from_fn(move |request, next| {
            source_ip(Arc::clone(&edge), request, next)
        }))
}

/// API Gateway and function URLs give the client's address in the request
/// context (not forgeable by a header): it reaches the handlers as the peer
/// address, for login throttling, as on the local server. Behind the app's
/// distribution, that address is CloudFront's: the viewer's is the last
/// entry of `X-Forwarded-For` that is not it (CloudFront appends the viewer
/// it saw), believed because the request proves it came through CloudFront.
async fn source_ip(edge: Arc<Option<String>>, mut request: Request, next: Next) -> Response {
    let source = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .http
            .source_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok()),
        _ => None,
    };
    let client = match edge.as_deref() {
        None => source,
        Some(secret) => {
            let given = request
                .headers()
                .get(EDGE_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !decompte_app::auth::tokens_match(secret, given) {
                tracing::warn!(
                    event = "access_refused",
                    reason = "not through the edge",
                    "request refused"
                );
                return (
                    StatusCode::FORBIDDEN,
                    "Adresse non publique : passez par l'adresse de l'application que la préfecture \
                    vous a donnée.",
                )
                    .into_response();
            }
            let forwarded = request
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok());
            source.map(|edge_ip| viewer(forwarded, edge_ip))
        }
    };
    if let Some(ip) = client {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 0)));
    }
    next.run(request).await
}

/// The viewer's address behind CloudFront: walking `X-Forwarded-For` from
/// its end, the first address that is not the edge's own (API Gateway may
/// have appended it); the edge's if there is none.
fn viewer(forwarded: Option<&str>, edge: IpAddr) -> IpAddr {
    forwarded
        .into_iter()
        .flat_map(|list| list.rsplit(','))
        .map(|entry| entry.trim().parse::<IpAddr>())
        .map_while(Result::ok)
        .find(|ip| *ip != edge)
        .unwrap_or(edge)
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
        function_router(decompte_app::router(state), None)
    }

    fn behind_the_edge() -> Router {
        let referential = decompte_config::referential().expect("referential");
        let scope = referential.scope(&["56".to_owned()]).expect("scope");
        let store = Arc::new(SqliteStore::in_memory().expect("store"));
        let state = AppState::new(store, AppConfig::new(scope), Arc::new(NoPublication));
        function_router(decompte_app::router(state), Some("edge-secret".into()))
    }

    /// An HTTP API (payload 2.0) event, as API Gateway sends it.
    fn event(
        method: &str,
        path: &str,
        source_ip: &str,
        authorization: &str,
    ) -> lambda_http::Request {
        event_with(method, path, source_ip, authorization, &[])
    }

    /// The same, with more headers (`X-Forwarded-For` given here replaces the default).
    fn event_with(
        method: &str,
        path: &str,
        source_ip: &str,
        authorization: &str,
        extra: &[(&str, &str)],
    ) -> lambda_http::Request {
        let mut headers = serde_json::json!({
            "host": "abc123.execute-api.eu-west-3.amazonaws.com",
            "x-forwarded-proto": "https",
            "x-forwarded-for": "198.51.100.1",
            "authorization": authorization,
        });
        for (name, value) in extra {
            headers[*name] = serde_json::json!(value);
        }
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": headers,
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
    async fn behind_the_edge_only_requests_through_it_are_served_each_viewer_counted_apart() {
        let app = behind_the_edge();
        // Straight to the API's own address: refused, whatever it claims.
        for edge in [None, Some("guess")] {
            let extra: Vec<(&str, &str)> =
                edge.map(|e| ("x-decompte-edge", e)).into_iter().collect();
            let answer = app
                .clone()
                .oneshot(event_with("GET", "/connexion", "203.0.113.7", "", &extra))
                .await
                .expect("answer");
            assert_eq!(answer.status(), StatusCode::FORBIDDEN);
        }
        // Through CloudFront (one edge address): each viewer is throttled on its own.
        let wrong = "Bearer 56260-0000-0000-0000-0000-0000-0000-00";
        let from = |viewer: &'static str| {
            event_with(
                "GET",
                "/api/v1/me",
                "130.176.0.1",
                wrong,
                &[
                    ("x-decompte-edge", "edge-secret"),
                    ("x-forwarded-for", viewer),
                ],
            )
        };
        for _ in 0..10 {
            let answer = app
                .clone()
                .oneshot(from("198.51.100.20, 130.176.0.1"))
                .await
                .expect("answer");
            assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        }
        let throttled = app
            .clone()
            .oneshot(from("198.51.100.20"))
            .await
            .expect("answer");
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        // Another viewer at the same edge, even one claiming to be the first
        // (an X-Forwarded-For it wrote itself comes before CloudFront's entry).
        let other = app
            .oneshot(from("198.51.100.20, 198.51.100.21, 130.176.0.1"))
            .await
            .expect("answer");
        assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn the_viewer_is_the_last_address_that_is_not_the_edge() {
        let edge: IpAddr = "130.176.0.1".parse().expect("ip");
        let viewer_of = |header: Option<&str>| viewer(header, edge).to_string();
        assert_eq!(viewer_of(Some("198.51.100.20")), "198.51.100.20");
        assert_eq!(
            viewer_of(Some("1.2.3.4, 198.51.100.20, 130.176.0.1")),
            "198.51.100.20"
        );
        assert_eq!(viewer_of(Some("2001:db8::7")), "2001:db8::7");
        assert_eq!(
            viewer_of(Some("not-an-address, 198.51.100.20")),
            "198.51.100.20"
        );
        assert_eq!(viewer_of(Some("198.51.100.20, garbage")), "130.176.0.1");
        assert_eq!(viewer_of(None), "130.176.0.1");
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
