//! The S3 sink: the published site in a bucket (AWS S3 or any S3-compatible
//! storage), each object with its `Content-Type` and `Cache-Control`.
//! `s3://BUCKET/PREFIX?endpoint=URL&region=REGION`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use decompte_config::BucketAddress;
use decompte_publish::headers::{cache_control, content_type};
use decompte_publish::{Sink, SinkError};

/// A bucket (and prefix) holding the site. Counts the objects it uploads.
pub struct S3Sink {
    client: Client,
    bucket: String,
    prefix: String,
    puts: Arc<AtomicUsize>,
}

/// How many PUTs a publication sends at once.
pub const PARALLEL_PUTS: usize = 32;

/// A PUT task that panicked or was cancelled.
fn joined(error: &tokio::task::JoinError) -> SinkError {
    SinkError {
        operation: "write",
        path: String::new(),
        message: error.to_string(),
    }
}

fn failed<E: ProvideErrorMetadata + std::fmt::Debug>(
    operation: &'static str,
    path: &str,
    error: aws_sdk_s3::error::SdkError<E>,
) -> SinkError {
    let message = match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("")
        ),
        None => format!("{error:?}"),
    };
    SinkError {
        operation,
        path: path.to_owned(),
        message,
    }
}

impl S3Sink {
    pub async fn connect(config: &BucketAddress) -> Self {
        let shared = crate::sdk::config(&config.endpoint).await;
        // S3-compatible servers are addressed by path, not by virtual host.
        let s3 = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.endpoint.url.is_some())
            .build();
        Self {
            client: Client::from_conf(s3),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            puts: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn key(&self, path: &str) -> String {
        if self.prefix.is_empty() {
            path.to_owned()
        } else {
            format!("{}/{path}", self.prefix)
        }
    }

    /// Objects uploaded by this sink so far.
    pub fn puts(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Every object under the prefix, with its ETag and last-modified instant.
    pub async fn listing(&self) -> Result<std::collections::BTreeMap<String, String>, SinkError> {
        let mut objects = std::collections::BTreeMap::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.key(""))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failed("list", &self.bucket, e))?;
            for object in page.contents() {
                objects.insert(
                    object.key().unwrap_or_default().to_owned(),
                    format!(
                        "{} {}",
                        object.e_tag().unwrap_or_default(),
                        object
                            .last_modified()
                            .map(|t| t.to_string())
                            .unwrap_or_default()
                    ),
                );
            }
        }
        Ok(objects)
    }

    /// Creates the bucket if it does not exist (first setup of a self-hosted storage, tests).
    pub async fn create_bucket_if_missing(&self) -> Result<(), SinkError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(drop)
            .map_err(|e| failed("create bucket", &self.bucket, e))
    }

    /// `Content-Type` and `Cache-Control` of a published object, if it exists.
    pub async fn metadata(&self, path: &str) -> Result<Option<(String, String)>, SinkError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.key(path))
            .send()
            .await
        {
            Ok(head) => Ok(Some((
                head.content_type().unwrap_or_default().to_owned(),
                head.cache_control().unwrap_or_default().to_owned(),
            ))),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(error) => Err(failed("head", path, error)),
        }
    }
}

/// Where the publisher's own files are kept in the bucket, outside the
/// site's prefix: the template's bucket policy denies CloudFront this
/// prefix, so the distribution never serves them.
pub const PRIVATE_PREFIX: &str = "_publisher";

impl S3Sink {
    /// The key of one of the publisher's own files.
    fn private_key(&self, name: &str) -> String {
        format!("{PRIVATE_PREFIX}/{}", self.key(name))
    }

    async fn get(&self, key: String, path: &str) -> Result<Option<Vec<u8>>, SinkError> {
        let object = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(object) => object,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None)
            }
            Err(error) => return Err(failed("read", path, error)),
        };
        let bytes = object.body.collect().await.map_err(|e| SinkError {
            operation: "read",
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }
}

#[async_trait]
impl Sink for S3Sink {
    async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SinkError> {
        self.get(self.key(path), path).await
    }

    async fn read_private(&self, name: &str) -> Result<Option<Vec<u8>>, SinkError> {
        self.get(self.private_key(name), name).await
    }

    async fn write_private(&self, name: &str, bytes: &[u8]) -> Result<(), SinkError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.private_key(name))
            .body(ByteStream::from(bytes.to_vec()))
            .content_type("application/octet-stream")
            .cache_control("no-store")
            .send()
            .await
            .map_err(|e| failed("write", name, e))?;
        self.puts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn write(&self, path: &str, bytes: &[u8]) -> Result<(), SinkError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(path))
            .body(ByteStream::from(bytes.to_vec()))
            .content_type(content_type(path))
            .cache_control(cache_control(path))
            .send()
            .await
            .map_err(|e| failed("write", path, e))?;
        self.puts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Up to [`PARALLEL_PUTS`] PUTs at once: a national publication is
    /// 35,000 objects, and one PUT takes tens of milliseconds.
    async fn write_files(&self, files: Vec<(String, Vec<u8>)>) -> Result<(), SinkError> {
        let mut running = tokio::task::JoinSet::new();
        for (path, bytes) in files {
            if running.len() >= PARALLEL_PUTS {
                if let Some(done) = running.join_next().await {
                    done.map_err(|e| joined(&e))??;
                }
            }
            let request = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(self.key(&path))
                .body(ByteStream::from(bytes))
                .content_type(content_type(&path))
                .cache_control(cache_control(&path));
            let puts = Arc::clone(&self.puts);
            running.spawn(async move {
                request
                    .send()
                    .await
                    .map_err(|e| failed("write", &path, e))?;
                puts.fetch_add(1, Ordering::SeqCst);
                Ok::<(), SinkError>(())
            });
        }
        while let Some(done) = running.join_next().await {
            done.map_err(|e| joined(&e))??;
        }
        Ok(())
    }

    async fn delete(&self, path: &str) -> Result<(), SinkError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.key(path))
            .send()
            .await
            .map(drop)
            .map_err(|e| failed("delete", path, e))
    }
}
