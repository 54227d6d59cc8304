//! `decompte import` and `decompte export`: the current figures as CSV, in
//! the format of donnees/deces.csv.

use std::path::{Path, PathBuf};

use anyhow::Context;
use decompte::{transfer, LocalApp, Options};

/// `decompte import FILE`: each line a correction, with its history.
pub async fn import(options: &Options, file: &Path) -> anyhow::Result<()> {
    let app = LocalApp::open(options).await?;
    let config = &app.state.config;
    let author = format!(
        "import:{}",
        file.file_name().and_then(|n| n.to_str()).unwrap_or("csv")
    );
    let mut progress: Option<decompte::progress::Progress> = None;
    let summary = transfer::import(
        app.store.as_ref(),
        &config.scope,
        &config.rules,
        file,
        &author,
        app.state.now(),
        |done, total| {
            progress
                .get_or_insert_with(|| {
                    decompte::progress::Progress::new("déclarations", total as u64)
                })
                .set(done as u64);
        },
    )
    .await?;
    if let Some(progress) = progress {
        progress.finish();
    }
    eprintln!(
        "{} créée(s), {} corrigée(s), {} inchangée(s).",
        summary.created, summary.corrected, summary.unchanged
    );
    Ok(())
}

/// `decompte export [--output FILE]`: every current report.
pub async fn export(options: &Options, output: Option<PathBuf>) -> anyhow::Result<()> {
    let app = LocalApp::open(options).await?;
    let config = &app.state.config;
    let rows = match output {
        Some(path) => {
            let file = std::fs::File::create(&path)
                .with_context(|| format!("impossible de créer {}", path.display()))?;
            transfer::export(
                app.store.as_ref(),
                &config.scope,
                &config.rules,
                std::io::BufWriter::new(file),
            )
            .await?
        }
        None => {
            transfer::export(
                app.store.as_ref(),
                &config.scope,
                &config.rules,
                std::io::stdout().lock(),
            )
            .await?
        }
    };
    eprintln!("{rows} ligne(s) exportée(s).");
    Ok(())
}
