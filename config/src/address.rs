//! Addresses of the services a process uses, parsed once at the edge (clap's
//! value parsers) into types: the store, the site, the CDN, the publish
//! function. Past this module nothing looks at an address as a string.
//!
//! Every remote address is `scheme://NAME?endpoint=URL&region=REGION`: the
//! name says what (a table, a bucket and prefix, a distribution, a function),
//! the optional endpoint where (AWS's own if absent, or DynamoDB Local, moto,
//! a sovereign S3- or DynamoDB-compatible service), the region how to sign.

use std::fmt;
use std::str::FromStr;

/// Where a service is, beyond its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// A compatible endpoint; AWS's own if absent.
    pub url: Option<String>,
    pub region: Option<String>,
    /// Explicit keys (tests against local servers); the standard AWS chain if absent.
    pub static_credentials: Option<(String, String)>,
}

/// Why an address was refused; each message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("`{address}` is not a {what} address: write {shape}")]
    Scheme {
        address: String,
        what: &'static str,
        shape: &'static str,
    },
    #[error("`{address}` names nothing: write {shape}")]
    Empty {
        address: String,
        shape: &'static str,
    },
    #[error(
        "unknown parameter `{parameter}` in `{address}`: only endpoint=URL and region=REGION \
        are understood"
    )]
    Parameter { address: String, parameter: String },
    #[error("`{0}` is not a valid DynamoDB table name: 3 to 255 letters, digits, _ - or .")]
    Table(String),
    #[error("`{0}` is not a valid S3 bucket name: 3 to 63 lowercase letters, digits, - or .")]
    Bucket(String),
    #[error("`{0}` is not a CloudFront distribution id: letters and digits, like E2QWRUHAPOMQZL")]
    Distribution(String),
}

const TABLE_SHAPE: &str =
    "sqlite, sqlite:PATH, dynamodb://TABLE?endpoint=URL&region=REGION, or postgres://USER@HOST:PORT/DB";
const SITE_SHAPE: &str = "folder, or s3://BUCKET/PREFIX?endpoint=URL&region=REGION";
const CDN_SHAPE: &str = "cloudfront://DISTRIBUTION_ID?endpoint=URL&region=REGION, or none";
const FUNCTION_SHAPE: &str = "lambda://FUNCTION?endpoint=URL&region=REGION";

/// Splits `scheme://NAME?endpoint=URL&region=REGION` into the name and the endpoint.
fn split<'a>(
    address: &'a str,
    scheme: &str,
    what: &'static str,
    shape: &'static str,
) -> Result<(&'a str, Endpoint), AddressError> {
    let rest = address
        .strip_prefix(scheme)
        .and_then(|rest| rest.strip_prefix("://"))
        .ok_or_else(|| AddressError::Scheme {
            address: address.to_owned(),
            what,
            shape,
        })?;
    let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
    if name.is_empty() {
        return Err(AddressError::Empty {
            address: address.to_owned(),
            shape,
        });
    }
    let mut endpoint = Endpoint::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("endpoint", value)) => endpoint.url = Some(value.to_owned()),
            Some(("region", value)) => endpoint.region = Some(value.to_owned()),
            _ => {
                return Err(AddressError::Parameter {
                    address: address.to_owned(),
                    parameter: pair.to_owned(),
                })
            }
        }
    }
    Ok((name, endpoint))
}

/// A DynamoDB table (`dynamodb://TABLE?…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableAddress {
    pub table: String,
    pub endpoint: Endpoint,
}

impl FromStr for TableAddress {
    type Err = AddressError;
    fn from_str(address: &str) -> Result<Self, AddressError> {
        let (table, endpoint) = split(address, "dynamodb", "DynamoDB table", TABLE_SHAPE)?;
        let valid = (3..=255).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(AddressError::Table(table.to_owned()));
        }
        Ok(Self {
            table: table.to_owned(),
            endpoint,
        })
    }
}

/// Where reports are kept (`--store`, `DECOMPTE_STORE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreAddress {
    /// `sqlite`: `decompte.sqlite` in the data folder, the embedded default.
    #[default]
    Sqlite,
    /// `sqlite:PATH`: another SQLite file (`decompte store copy`'s source or target).
    SqliteFile(std::path::PathBuf),
    /// `dynamodb://TABLE?endpoint=URL&region=REGION`.
    DynamoDb(TableAddress),
    /// `postgres://USER@HOST1:5432,HOST2:5432/DB?target_session_attrs=read-write&sslmode=verify-full`
    /// (libpq's URL).
    Postgres(PostgresUrl),
}

/// A PostgreSQL URL, whose password (if it holds one) no log shows.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The URL, password included, for the connection only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password, if any, replaced by `***`.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return self.0.clone();
        };
        match rest.split_once('@') {
            Some((user, hosts)) if user.contains(':') => {
                let name = user.split(':').next().unwrap_or("");
                format!("{scheme}://{name}:***@{hosts}")
            }
            _ => self.0.clone(),
        }
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl FromStr for StoreAddress {
    type Err = AddressError;
    fn from_str(address: &str) -> Result<Self, AddressError> {
        match address.trim() {
            "" | "sqlite" => Ok(Self::Sqlite),
            file if file.starts_with("sqlite:") && file.len() > "sqlite:".len() => {
                Ok(Self::SqliteFile(file["sqlite:".len()..].into()))
            }
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Self::Postgres(PostgresUrl(url.to_owned())))
            }
            other => other.parse().map(Self::DynamoDb),
        }
    }
}

/// A bucket and a key prefix (`s3://BUCKET/PREFIX?…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketAddress {
    pub bucket: String,
    /// Key prefix, without leading or trailing slash ("" for the bucket's root).
    pub prefix: String,
    pub endpoint: Endpoint,
}

impl FromStr for BucketAddress {
    type Err = AddressError;
    fn from_str(address: &str) -> Result<Self, AddressError> {
        let (location, endpoint) = split(address, "s3", "site", SITE_SHAPE)?;
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(AddressError::Bucket(bucket.to_owned()));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            endpoint,
        })
    }
}

/// Where the site is published (`--site`, `DECOMPTE_SITE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SiteAddress {
    /// `folder`: `site/` in the data folder, served by `decompte serve`.
    #[default]
    Folder,
    /// `s3://BUCKET/PREFIX?endpoint=URL&region=REGION`.
    S3(BucketAddress),
}

impl FromStr for SiteAddress {
    type Err = AddressError;
    fn from_str(address: &str) -> Result<Self, AddressError> {
        match address.trim() {
            "" | "folder" => Ok(Self::Folder),
            other => other.parse().map(Self::S3),
        }
    }
}

/// A CloudFront distribution (`cloudfront://ID?…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributionAddress {
    pub distribution_id: String,
    pub endpoint: Endpoint,
}

/// The CDN told what each publication changed (`--cdn`, `DECOMPTE_CDN`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CdnAddress {
    /// `none`: no CDN (pages expire within a minute anyway).
    #[default]
    None,
    CloudFront(DistributionAddress),
}

impl FromStr for CdnAddress {
    type Err = AddressError;
    fn from_str(address: &str) -> Result<Self, AddressError> {
        if matches!(address.trim(), "" | "none") {
            return Ok(Self::None);
        }
        let (id, mut endpoint) = split(address, "cloudfront", "CDN", CDN_SHAPE)?;
        if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(AddressError::Distribution(id.to_owned()));
        }
        // CloudFront is a global service, signed for us-east-1.
        endpoint.region.get_or_insert_with(|| "us-east-1".into());
        Ok(Self::CloudFront(DistributionAddress {
            distribution_id: id.to_owned(),
            endpoint,
        }))
    }
}

/// A Lambda function, by name or ARN (`lambda://FUNCTION?…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionAddress {
    pub name: String,
    pub endpoint: Endpoint,
}

impl FromStr for FunctionAddress {
    type Err = AddressError;
    fn from_str(address: &str) -> Result<Self, AddressError> {
        let (name, endpoint) = split(address, "lambda", "Lambda function", FUNCTION_SHAPE)?;
        Ok(Self {
            name: name.to_owned(),
            endpoint,
        })
    }
}

impl fmt::Display for StoreAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite => f.write_str("sqlite"),
            Self::SqliteFile(path) => write!(f, "sqlite:{}", path.display()),
            Self::DynamoDb(address) => write!(f, "dynamodb://{}", address.table),
            Self::Postgres(url) => f.write_str(&url.redacted()),
        }
    }
}

impl fmt::Display for SiteAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Folder => f.write_str("folder"),
            Self::S3(address) if address.prefix.is_empty() => write!(f, "s3://{}", address.bucket),
            Self::S3(address) => write!(f, "s3://{}/{}", address.bucket, address.prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_once_into_types() {
        assert_eq!("sqlite".parse(), Ok(StoreAddress::Sqlite));
        assert_eq!(
            "sqlite:/srv/copie.sqlite".parse(),
            Ok(StoreAddress::SqliteFile("/srv/copie.sqlite".into()))
        );
        let postgres: StoreAddress = "postgres://decompte:s3cret@db1:5432,db2:5432/decompte?\
            target_session_attrs=read-write"
            .parse()
            .expect("a PostgreSQL URL");
        let StoreAddress::Postgres(url) = &postgres else {
            panic!("{postgres:?}");
        };
        assert!(url.expose().contains("s3cret"));
        assert!(!format!("{postgres:?} {postgres}").contains("s3cret"));
        assert_eq!(
            postgres.to_string(),
            "postgres://decompte:***@db1:5432,db2:5432/decompte?target_session_attrs=read-write"
        );
        let table: StoreAddress =
            "dynamodb://decompte?endpoint=http://127.0.0.1:8000&region=eu-west-3"
                .parse()
                .expect("table");
        assert_eq!(
            table,
            StoreAddress::DynamoDb(TableAddress {
                table: "decompte".into(),
                endpoint: Endpoint {
                    url: Some("http://127.0.0.1:8000".into()),
                    region: Some("eu-west-3".into()),
                    static_credentials: None,
                },
            })
        );
        let site: SiteAddress = "s3://site-bucket/public/?region=eu-west-3"
            .parse()
            .expect("site");
        assert!(
            matches!(&site, SiteAddress::S3(b) if b.bucket == "site-bucket" && b.prefix == "public")
        );
        assert_eq!("folder".parse(), Ok(SiteAddress::Folder));
        assert_eq!("none".parse(), Ok(CdnAddress::None));
        let cdn: CdnAddress = "cloudfront://E2QWRUHAPOMQZL".parse().expect("cdn");
        assert!(matches!(
            &cdn,
            CdnAddress::CloudFront(d) if d.endpoint.region.as_deref() == Some("us-east-1"),
        ));
        let function: FunctionAddress = "lambda://decompte-publish".parse().expect("function");
        assert_eq!(function.name, "decompte-publish");
    }

    #[test]
    fn refusals_say_what_to_write() {
        let error = "mysql://x".parse::<StoreAddress>().expect_err("refused");
        assert!(error.to_string().contains("dynamodb://TABLE"), "{error}");
        assert!(error.to_string().contains("postgres://"), "{error}");
        let error = "dynamodb://x".parse::<StoreAddress>().expect_err("refused");
        assert!(matches!(error, AddressError::Table(_)));
        let error = "s3://Bucket".parse::<SiteAddress>().expect_err("refused");
        assert!(matches!(error, AddressError::Bucket(_)));
        let error = "s3://bucket?colour=blue"
            .parse::<SiteAddress>()
            .expect_err("refused");
        assert!(error.to_string().contains("endpoint=URL"), "{error}");
        let error = "cloudfront://E2-Q"
            .parse::<CdnAddress>()
            .expect_err("refused");
        assert!(matches!(error, AddressError::Distribution(_)));
        assert!("lambda://".parse::<FunctionAddress>().is_err());
    }
}
