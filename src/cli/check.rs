//! `check`: validate a catalog the way a GitOps pipeline needs it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config;

/// Validate a catalog file without starting anything.
///
/// Checks the schema, unknown fields, duplicate names, name syntax and every
/// reference. Exits 0 when valid, 1 with one line per problem otherwise
/// (`FILE[:LINE:COL]: PATH: PROBLEM`).
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The catalog file (YAML, or JSON with a `.json` extension).
    #[arg(long, short)]
    pub config: PathBuf,
}

pub fn run(args: &CheckArgs) -> ExitCode {
    match config::load_file(&args.config) {
        Ok(catalog) => {
            println!(
                "{}: valid ({} servers, {} tools, {} roles, {} agents)",
                args.config.display(),
                catalog.servers.len(),
                catalog.tools.len(),
                catalog.roles.len(),
                catalog.agents.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors.0 {
                eprintln!("error: {error}");
            }
            ExitCode::FAILURE
        }
    }
}
