//! decompte on AWS, or on any service that speaks its APIs: the DynamoDB
//! store, the S3 sink, CloudFront invalidations and republication by Lambda
//! invocation, each behind the trait the rest of decompte knows (`Store`,
//! `Sink`, `Cdn`, `PublishTrigger`).
//!
//! Architecture invariant: only this crate knows the AWS SDK. The app, the
//! publisher and the store contract build and run without it; the local
//! binary links it only with its `aws` feature, and the Lambda binaries link
//! it without SQLite.

#[cfg(feature = "cloudfront")]
mod cloudfront;
mod dynamo;
#[cfg(feature = "s3")]
mod s3;
pub mod sdk;
#[cfg(feature = "lambda")]
mod trigger;

#[cfg(feature = "cloudfront")]
pub use cloudfront::CloudFront;

use decompte_config::{Options, StoreAddress};

/// What a Lambda function cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error(
        "DECOMPTE_STORE must name a dynamodb:// table: a function has no lasting disk for SQLite"
    )]
    NotATable,
    #[error(
        "DECOMPTE_SITE must name an s3:// bucket: a function has no lasting disk for the site"
    )]
    NotABucket,
}

/// The store of a Lambda function: the DynamoDB table of `DECOMPTE_STORE`.
pub async fn function_store(options: &Options) -> Result<DynamoStore, FunctionError> {
    match &options.store {
        StoreAddress::DynamoDb(table) => {
            Ok(DynamoStore::connect(table, options.departements.clone()).await)
        }
        StoreAddress::Sqlite | StoreAddress::SqliteFile(_) | StoreAddress::Postgres(_) => {
            Err(FunctionError::NotATable)
        }
    }
}

/// The site of a Lambda function: the S3 bucket of `DECOMPTE_SITE`.
#[cfg(feature = "s3")]
pub async fn function_sink(options: &Options) -> Result<S3Sink, FunctionError> {
    match &options.site {
        decompte_config::SiteAddress::S3(bucket) => Ok(S3Sink::connect(bucket).await),
        decompte_config::SiteAddress::Folder => Err(FunctionError::NotABucket),
    }
}
pub use dynamo::{Capacity, DynamoStore};
#[cfg(feature = "s3")]
pub use s3::S3Sink;
#[cfg(feature = "lambda")]
pub use trigger::LambdaTrigger;
