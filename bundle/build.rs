//! Writes the manifest of the data layer: one `sha256sum` line per file the
//! binaries read (`data/*.csv` and the DSFR's files), in byte order of their
//! paths. `scripts/lambda-build.sh` writes the same lines with `sha256sum`
//! into the layer it builds; a function refuses to start on a layer whose
//! manifest is not its own (see `src/lib.rs`).

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Whether the file at this path (from the repository's root) is in the layer.
type Held = fn(&str) -> bool;

/// The folders of the layer, relative to the repository, and which of
/// their files it holds (by path): the same rule as `scripts/lambda-build.sh`.
const FOLDERS: [(&str, Held); 2] = [
    // The referential, not the demo's series (data/demo/).
    ("data", |path| {
        path.ends_with(".csv") && path.matches('/').count() == 1
    }),
    ("templates/static/dsfr", |path| {
        !path.ends_with(".rs") && !path.ends_with(".md")
    }),
];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for (folder, held) in FOLDERS {
        println!("cargo::rerun-if-changed=../{folder}");
        walk(&root, &root.join(folder), held, &mut files);
    }
    files.sort();
    let mut manifest = String::new();
    for relative in &files {
        let bytes = std::fs::read(root.join(relative)).expect("read a data file");
        let digest = hex::encode(Sha256::digest(&bytes));
        manifest.push_str(&format!("{digest}  {relative}\n"));
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("MANIFEST"), manifest).expect("write OUT_DIR");
}

fn walk(root: &Path, folder: &Path, held: Held, files: &mut Vec<String>) {
    let entries = std::fs::read_dir(folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display()));
    for entry in entries {
        let path = entry.expect("list a data folder").path();
        if path.is_dir() {
            println!("cargo::rerun-if-changed={}", path.display());
            walk(root, &path, held, files);
        } else {
            let relative = path.strip_prefix(root).expect("under the root");
            let relative = relative.to_string_lossy().into_owned();
            if held(&relative) {
                println!("cargo::rerun-if-changed={}", path.display());
                files.push(relative);
            }
        }
    }
}
