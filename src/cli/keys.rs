//! `keys`: the signing key of minted credentials.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config;
use crate::credentials::mint::{self, KeySource};

/// Manage the key that signs per-call credentials.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Replace the signing key with a new one.
    ///
    /// A running control plane picks it up within seconds and keeps
    /// publishing the old key until the tokens it signed have expired.
    Rotate {
        /// The catalog file (its `credentials` section names the key file).
        #[arg(long, short)]
        config: PathBuf,
        /// The key file, instead of the catalog's `credentials.key_file`.
        #[arg(long, env = "MCP_CP_KEY_FILE")]
        key_file: Option<PathBuf>,
    },
}

pub fn run(args: &KeysArgs) -> ExitCode {
    let KeysCommand::Rotate { config, key_file } = &args.command;
    let file = match config::load_file(config) {
        Ok(file) => file,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let base_dir = config.parent().map(PathBuf::from).unwrap_or_default();
    let source = KeySource {
        // A key file given on the command line is relative to the working
        // directory; the catalog's is relative to the catalog.
        path: match key_file {
            Some(path) => path.clone(),
            None => base_dir.join(&file.credentials.key_file),
        },
        algorithm: file.credentials.algorithm,
    };
    match mint::rotate(&source) {
        Ok(key) => {
            println!("new signing key {} in {}", key.kid(), source.path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
