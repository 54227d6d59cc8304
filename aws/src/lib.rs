//! decompte on AWS, or on any service that speaks its APIs: the DynamoDB
//! store, the S3 sink, CloudFront invalidations and republication by Lambda
//! invocation, each behind the trait the rest of decompte knows (`Store`,
//! `Sink`, `Cdn`, `PublishTrigger`).
//!
//! Architecture invariant: only this crate knows the AWS SDK. The app, the
//! publisher and the store contract build and run without it; the local
//! binary links it only with its `aws` feature, and the Lambda binaries link
//! it without SQLite.

mod cloudfront;
mod dynamo;
mod s3;
pub mod sdk;
mod trigger;

pub use cloudfront::CloudFront;
pub use dynamo::{Capacity, DynamoStore};
pub use s3::S3Sink;
pub use trigger::LambdaTrigger;
