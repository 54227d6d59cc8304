//! The HTTP headers of the published site, defined once: `decompte serve`
//! sends them for the site folder, the S3 sink stores them with each object,
//! and the SAM template's CloudFront response headers policy says the same.

use crate::MANIFEST;

/// The `Content-Type` of a published file.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// The `Cache-Control` of a published file: fingerprinted assets for a year,
/// the manifest never without revalidation, pages and data for a minute.
pub fn cache_control(path: &str) -> &'static str {
    if path.starts_with(crate::paths::ASSETS) {
        "public, max-age=31536000, immutable"
    } else if path == MANIFEST {
        "no-cache"
    } else {
        "public, max-age=60"
    }
}

/// The site's security headers: no sniffing, no framing, no referrer beyond
/// the site, and a policy that allows only the site's own styles and images.
pub const SECURITY: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
            font-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_lifetimes_of_published_files() {
        assert_eq!(
            content_type("communes/56260.html"),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type("donnees/deces.csv"), "text/csv; charset=utf-8");
        assert_eq!(
            cache_control("assets/style.0123.css"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(cache_control("manifest.json"), "no-cache");
        assert_eq!(cache_control("index.html"), "public, max-age=60");
    }
}
