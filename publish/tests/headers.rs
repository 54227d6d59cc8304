//! The site's security headers are defined once (`decompte_publish::headers`)
//! and the SAM template's CloudFront policy says the same: this test reads the
//! template and fails when the two drift apart.

use decompte_publish::headers::SECURITY;

const TEMPLATE: &str = include_str!("../../infra/template.yaml");

/// The `SiteHeaders` policy of the template, up to the next resource.
fn policy() -> &'static str {
    let start = TEMPLATE
        .find("  SiteHeaders:\n")
        .expect("a SiteHeaders resource in infra/template.yaml");
    let rest = &TEMPLATE[start + 1..];
    let end = rest.find("\n\n").unwrap_or(rest.len());
    &rest[..end]
}

fn header(name: &str) -> &'static str {
    SECURITY
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no {name} in headers::SECURITY"))
}

#[test]
fn cloudfront_sends_the_headers_decompte_serve_sends() {
    let policy = policy();
    assert!(
        policy.contains(&format!(
            "ContentSecurityPolicy: \"{}\"",
            header("content-security-policy")
        )),
        "{policy}"
    );
    assert!(
        policy.contains(&format!("FrameOption: {}", header("x-frame-options"))),
        "{policy}"
    );
    assert!(
        policy.contains(&format!("ReferrerPolicy: {}", header("referrer-policy"))),
        "{policy}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(policy.contains("ContentTypeOptions:"), "{policy}");
    assert_eq!(
        SECURITY.len(),
        4,
        "a new header needs its line in the template too"
    );
}
