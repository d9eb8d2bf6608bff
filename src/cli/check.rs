//! `check`: validate a catalog the way a GitOps pipeline needs it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::PolicyConfig;
use crate::live::compile::{Compiled, LoadError};

/// Validate a catalog file without starting anything.
///
/// Checks the schema, unknown fields, duplicate names, name syntax and every
/// reference; compiles the Rego policy and runs its tests. Exits 0 when valid, 1 with one line per problem otherwise
/// (`FILE[:LINE:COL]: PATH: PROBLEM`).
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The catalog file (YAML, or JSON with a `.json` extension).
    #[arg(long, short)]
    pub config: PathBuf,
}

pub fn run(args: &CheckArgs) -> ExitCode {
    // The same path `serve` takes at start and on every reload.
    let compiled = match Compiled::load(&args.config, None) {
        Ok(compiled) => compiled,
        Err(LoadError::Config(errors)) => {
            for error in &errors.0 {
                eprintln!("error: {error}");
            }
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let file = &compiled.file;
    let config = args.config.display();
    for (path, warning) in crate::config::grants::warnings(file) {
        eprintln!("warning: {config}: {path}: {warning}");
    }
    match &file.policy {
        None => {
            eprintln!("warning: {config}: policy: none configured, so every call will be denied")
        }
        Some(PolicyConfig::AllowAll) => eprintln!(
            "warning: {config}: policy: allow-all lets the role check alone decide (for development only)"
        ),
        Some(PolicyConfig::Rego(_)) => println!(
            "{config}: policy compiles, {} tests pass",
            compiled.policies.status().tests_passed
        ),
    }
    println!(
        "{config}: valid ({} servers, {} tools, {} roles, {} agents)",
        file.servers.len(),
        file.tools.len(),
        file.roles.len(),
        file.agents.len()
    );
    ExitCode::SUCCESS
}
