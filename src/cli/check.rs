//! `check`: validate a catalog the way a GitOps pipeline needs it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::{self, PolicyConfig};
use crate::policy::Policies;

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
    match config::load_file(&args.config) {
        Ok(catalog) => {
            if !check_policy(&args.config, catalog.policy.as_ref()) {
                return ExitCode::FAILURE;
            }
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

/// Compile the policy and run its tests; warn when nothing or everything
/// is allowed. Returns whether the policy is usable.
fn check_policy(config: &std::path::Path, policy: Option<&PolicyConfig>) -> bool {
    match policy {
        None => eprintln!(
            "warning: {}: policy: none configured, so every call will be denied",
            config.display()
        ),
        Some(PolicyConfig::AllowAll) => eprintln!(
            "warning: {}: policy: allow-all lets the role check alone decide (for development only)",
            config.display()
        ),
        Some(PolicyConfig::Rego(_)) => {}
    }
    let base_dir = config.parent().map(PathBuf::from).unwrap_or_default();
    match Policies::open(policy, &base_dir) {
        Ok(policies) => {
            let status = policies.status();
            if status.mode == "rego" {
                println!(
                    "{}: policy compiles, {} tests pass",
                    config.display(),
                    status.tests_passed
                );
            }
            true
        }
        Err(error) => {
            eprintln!("error: {}: policy: {error}", config.display());
            false
        }
    }
}
