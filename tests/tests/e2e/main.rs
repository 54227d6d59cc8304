//! End-to-end tests: the real HTTP server on loopback, the SQLite store, the
//! publisher writing the site to a folder. One test binary, one module per area.
//!
//! Two tiers. `cargo test` alone needs nothing but Rust: the app in process on
//! SQLite. The `components` feature, which `./scripts/test.sh` turns on after
//! installing them, adds the tests against the real components: DynamoDB
//! Local, moto (S3, CloudFront), the Lambda emulator, Chromium with axe-core,
//! lychee, frictionless, cfn-lint and checkov.

/// Runs `$test(app: TestApp)` on every store: on SQLite (`$test::sqlite`)
/// and, with the real components, on DynamoDB Local (`$test::dynamodb`) and
/// PostgreSQL (`$test::postgres`).
/// `on_every_store!(test, ["56", "29"])` runs it on a deployment of those départements.
macro_rules! on_every_store {
    ($test:ident) => {
        on_every_store!($test, ["56"]);
    };
    ($test:ident, [$($departement:literal),+]) => {
        mod $test {
            fn departements() -> Vec<&'static str> {
                vec![$($departement),+]
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = decompte_tests::TestApp::start_with(|options| {
                    options.departements = departements().iter().map(|d| d.to_string()).collect();
                })
                .await;
                super::$test(app).await;
            }

            #[cfg(feature = "components")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                let store = decompte_tests::dynamodb_local::DynamoLocal::shared()
                    .fresh_store(&departements())
                    .await;
                super::$test(
                    decompte_tests::TestApp::start_serving(std::sync::Arc::new(store), &departements())
                        .await,
                )
                .await;
            }

            #[cfg(feature = "components")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let store = decompte_tests::postgres_local::PostgresLocal::shared()
                    .fresh_store()
                    .await;
                super::$test(
                    decompte_tests::TestApp::start_serving(std::sync::Arc::new(store), &departements())
                        .await,
                )
                .await;
            }
        }
    };
}

mod corrections;
mod daily;
mod flow;
mod hardening;
mod prefecture;
mod properties;
mod publication;
mod rejections;
mod second_factor;
mod tenancy;

// The tier of the real components.
#[cfg(feature = "components")]
mod api_contract;
#[cfg(feature = "components")]
mod browser;
#[cfg(feature = "components")]
mod dynamodb;
#[cfg(feature = "components")]
mod infra;
#[cfg(feature = "components")]
mod lambda;
#[cfg(feature = "components")]
mod packaging;
#[cfg(feature = "components")]
mod postgres;
#[cfg(feature = "components")]
mod replicas;
#[cfg(feature = "components")]
mod s3;
#[cfg(feature = "components")]
mod site_checks;
