//! Packaging for a State cloud: the OCI image (`Containerfile`, built by
//! `scripts/image.sh` with buildah) runs as its own user on PostgreSQL; the
//! Kubernetes manifests of `infra/kubernetes/` are valid, clean for checkov,
//! and agree with the image and with each other.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use decompte_tests::postgres_local::PostgresLocal;
use decompte_tests::process::{start_listening, Guarded};
use reqwest::StatusCode;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

use decompte_tests::{infra_tool, run_tool as run};

fn buildah() -> Command {
    Command::new("buildah")
}

/// The image, built from the `decompte` the tests built: its user, its
/// entry point, and, run from its own files as that user, a replica that
/// answers on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_as_its_own_user_on_postgresql() {
    let binary = decompte_tests::replicas::decompte_binary();
    let tag = format!("localhost/decompte:test-{}", std::process::id());
    let archive = tempfile::tempdir().expect("a folder");
    let archive = archive.path().join("decompte.oci.tar");
    let built = run(
        Command::new(root().join("scripts/image.sh"))
            .arg("--binary")
            .arg(&binary)
            .args(["--tag", &tag])
            .arg("--archive")
            .arg(&archive),
        "scripts/image.sh",
    );
    assert!(built.lines().any(|line| line == tag), "{built}");
    assert!(archive.is_file(), "no OCI archive: {built}");

    let inspected: serde_json::Value = serde_json::from_str(&run(
        buildah().args(["inspect", "--type", "image", &tag]),
        "buildah inspect",
    ))
    .expect("JSON");
    let config = &inspected["OCIv1"]["config"];
    assert_eq!(config["User"], "10001:10001", "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/decompte"])
    );
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["serve", "--listen", "0.0.0.0:8080"])
    );

    // Its files, as a container runtime would lay them out.
    let container = format!("decompte-test-{}", std::process::id());
    run(
        buildah().args(["from", "--name", &container, &tag]),
        "buildah from",
    );
    let mounted = run(buildah().args(["mount", &container]), "buildah mount");
    let rootfs = PathBuf::from(mounted.trim());
    let files: Vec<String> = walk(&rootfs);
    assert!(
        files
            .iter()
            .all(|f| !f.starts_with("bin/") && f != "usr/bin/sh"),
        "a shell or tools in the image: {files:?}"
    );

    let database = PostgresLocal::shared().fresh_database().await;
    let root_text = rootfs.display().to_string();
    let (port, replica) = start_listening(Duration::from_secs(60), "see its log", |port| {
        let listen = format!("127.0.0.1:{port}");
        Guarded::start(
            "decompte from its image",
            "chroot",
            &[
                "--userspec=10001:10001",
                &root_text,
                "/usr/local/bin/decompte",
                "serve",
                "--listen",
                &listen,
            ],
            &[
                ("DECOMPTE_STORE", database.clone()),
                ("DECOMPTE_DATA_DIR", "/var/lib/decompte".to_owned()),
                (
                    "SSL_CERT_FILE",
                    "/etc/ssl/certs/ca-certificates.crt".to_owned(),
                ),
            ],
            &std::env::temp_dir().join(format!("decompte-{}-image.log", std::process::id())),
            "see its log",
        )
    });
    let client = decompte_tests::http_client();
    for path in ["/healthz", "/readyz", "/", "/connexion"] {
        let answer = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "{path}: {}",
            replica.log_text()
        );
    }
    // It wrote only in its data folder (the root filesystem is read-only
    // on Kubernetes; here nothing else is its own).
    assert!(
        rootfs.join("var/lib/decompte/site/index.html").is_file(),
        "{}",
        replica.log_text()
    );
    replica.stop();
    run(buildah().args(["rm", &container]), "buildah rm");
    run(buildah().args(["rmi", &tag]), "buildah rmi");
}

/// Every file under `dir`, relative to it.
fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                found.push(relative.display().to_string());
            }
        }
    }
    found
}

fn manifest(name: &str) -> String {
    let path = root().join("infra/kubernetes").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The manifests pass Kubernetes' own schemas (strict: no unknown field)
/// and checkov's Kubernetes checks; only CloudNativePG's `Cluster`, a
/// custom resource, has no schema there.
#[test]
fn the_kubernetes_manifests_are_valid() {
    let files = [
        root().join("infra/kubernetes/decompte.yaml"),
        root().join("infra/kubernetes/postgres.yaml"),
    ];
    let report = run(
        infra_tool("kubernetes-validate")
            .arg("--strict")
            .args(&files),
        "kubernetes-validate",
    );
    for kind in [
        "namespace",
        "serviceaccount",
        "configmap",
        "deployment",
        "service",
        "poddisruptionbudget",
        "ingress",
        "networkpolicy",
    ] {
        assert!(
            report.contains(&format!("passed for resource {kind}/decompte")),
            "{kind} not validated:\n{report}"
        );
    }
    let unchecked: Vec<&str> = report
        .lines()
        .filter(|line| !line.starts_with("INFO") || line.contains("ERROR"))
        .collect();
    assert!(
        unchecked.len() == 1 && unchecked[0].contains("kind Cluster"),
        "{report}"
    );

    let report = run(
        infra_tool("checkov")
            .arg("-d")
            .arg(
                root()
                    .join("infra/kubernetes")
                    .canonicalize()
                    .expect("infra/kubernetes"),
            )
            .args(["--framework", "kubernetes", "--compact", "--skip-download"])
            .env("BC_SKIP_MAPPING", "TRUE"),
        "checkov",
    );
    decompte_tests::assert_checkov_clean(&report, 80);
}

/// The manifests agree with the image (its user, its port, its probes) and
/// with each other (the database's name, service and secrets).
#[test]
fn the_manifests_agree_with_the_image_and_the_database() {
    let app = manifest("decompte.yaml");
    let database = manifest("postgres.yaml");
    let containerfile =
        std::fs::read_to_string(root().join("Containerfile")).expect("Containerfile");
    assert!(containerfile.contains("USER 10001:10001"));
    assert!(app.contains("runAsUser: 10001") && app.contains("runAsGroup: 10001"));
    assert!(containerfile.contains("EXPOSE 8080") && app.contains("containerPort: 8080"));
    assert!(app.contains("path: /readyz") && app.contains("path: /healthz"));
    assert!(app.contains("readOnlyRootFilesystem: true"));
    assert!(
        containerfile.contains("/var/lib/decompte") && app.contains("mountPath: /var/lib/decompte")
    );
    // CloudNativePG names the services and secrets after the cluster.
    assert!(database.contains("  name: decompte-db\n"));
    for made_by_the_operator in [
        "decompte-db-rw:5432/app",
        "decompte-db-app",
        "decompte-db-ca",
    ] {
        assert!(app.contains(made_by_the_operator), "{made_by_the_operator}");
    }
    assert!(database.contains("database: app") && database.contains("owner: app"));
    assert!(app.contains("cnpg.io/cluster: decompte-db"));
    // A replica drains before it stops, within the grace period.
    assert!(app.contains("DECOMPTE_DRAIN_SECONDS: \"5\""));
    assert!(app.contains("terminationGracePeriodSeconds: 30"));
    // No secret written in the manifests.
    for secret in ["password:", "aws_secret_access_key", "PGPASSWORD"] {
        assert!(
            !app.contains(secret) && !database.contains(secret),
            "{secret}"
        );
    }
}
