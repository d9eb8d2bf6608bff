//! `catalog push` and `catalog pull`: a catalog between a GitOps file and
//! a DynamoDB table, so Git can stay the source of truth and the table
//! the runtime store that `serve --catalog dynamodb://...` follows.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::aws::dynamodb::{Table, TableUrl};
use crate::live::compile::Compiled;
use crate::live::items;

/// Move a catalog between a file and a DynamoDB table.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    #[command(subcommand)]
    pub command: CatalogCommand,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Validate the catalog FILE as `check` does (its policy's tests
    /// included), then make the table hold exactly it: one item per
    /// entity and setting, one per policy or lock file it names. The table
    /// is created (on-demand capacity, key `pk`) if there is none.
    Push {
        /// The catalog file.
        #[arg(long, short)]
        config: PathBuf,
        /// The table: `dynamodb://TABLE?region=REGION[&endpoint_url=URL]`.
        #[arg(long)]
        to: String,
    },
    /// Write the catalog the table holds as YAML: to stdout, or to
    /// `--out FILE` with the files it names beside it.
    Pull {
        /// The table: `dynamodb://TABLE?region=REGION[&endpoint_url=URL]`.
        #[arg(long)]
        from: String,
        /// The catalog file to write (its policy files go beside it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub async fn run(args: CatalogArgs) -> anyhow::Result<()> {
    match args.command {
        CatalogCommand::Push { config, to } => push(&config, &to).await,
        CatalogCommand::Pull { from, out } => pull(&from, out.as_deref()).await,
    }
}

async fn push(config: &Path, to: &str) -> anyhow::Result<()> {
    let url = TableUrl::parse(to)?;
    let path = config.to_path_buf();
    // The same validation as `check` and every reload, so a table never
    // receives a catalog that would be refused.
    tokio::task::spawn_blocking(move || Compiled::load(&path, None)).await??;
    let items = items::of_file(config)?;
    Table::open(&url).await.replace(&items).await?;
    println!(
        "pushed {} items of {} to table {}",
        items.len(),
        config.display(),
        url.table
    );
    Ok(())
}

async fn pull(from: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let url = TableUrl::parse(from)?;
    let items = Table::open(&url).await.items().await?;
    let unpacked = items::unpack(&items)?;
    let catalog: serde_json::Value = serde_json::from_str(&unpacked.catalog)?;
    let yaml = yaml_serde::to_string(&catalog)?;
    let Some(out) = out else {
        print!("{yaml}");
        return Ok(());
    };
    let dir = out.parent().unwrap_or(Path::new(""));
    for (path, text) in &unpacked.files {
        // The lock is named after the catalog it belongs to.
        let path = if path
            == &crate::guardrails::pins::LockFile::path_for(Path::new(items::CATALOG_FILE))
        {
            crate::guardrails::pins::LockFile::path_for(out)
        } else {
            dir.join(path)
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    std::fs::write(out, yaml).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "pulled {} items of table {} into {}",
        items.len(),
        url.table,
        out.display()
    );
    Ok(())
}
