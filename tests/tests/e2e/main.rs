//! End-to-end tests: the real HTTP server on loopback, the SQLite store, the
//! publisher writing the site to a folder. One test binary, one module per area.

/// Runs `$test(app: TestApp)` twice: on SQLite (`$test::sqlite`) and on
/// DynamoDB Local (`$test::dynamodb`).
macro_rules! on_both_stores {
    ($test:ident) => {
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$test(decompte_tests::TestApp::start().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                let store = decompte_tests::dynamodb_local::DynamoLocal::shared()
                    .fresh_store(&["56"])
                    .await;
                super::$test(decompte_tests::TestApp::start_on(std::sync::Arc::new(store)).await)
                    .await;
            }
        }
    };
}

mod browser;
mod corrections;
mod dynamodb;
mod flow;
mod hardening;
mod infra;
mod lambda;
mod prefecture;
mod properties;
mod publication;
mod rejections;
mod s3;
mod site_checks;
