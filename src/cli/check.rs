//! `check`: validate a catalog the way a GitOps pipeline needs it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::{CatalogFile, PolicyConfig, expose};
use crate::guardrails::pins::{LockFile, Pinned};
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
    if let Some(pinning) = &compiled.pinning {
        let problems = lock_problems(file, &pinning.lock);
        let lock = LockFile::path_for(&args.config);
        for problem in &problems {
            eprintln!("error: {}: {problem}", lock.display());
        }
        if !problems.is_empty() {
            return ExitCode::FAILURE;
        }
    }
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
        Some(PolicyConfig::Rego(_)) => {
            println!(
                "{config}: policy compiles, {} tests pass",
                compiled.policies.status().tests_passed
            );
            warn_of_opa_differences(file, &args.config);
        }
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

/// Point at each line of the policy that OPA may decide differently (see
/// `policy::lint`).
fn warn_of_opa_differences(file: &CatalogFile, config: &std::path::Path) {
    let base_dir = config.parent().unwrap_or(std::path::Path::new("."));
    let files = crate::policy::policy_files(file.policy.as_ref(), base_dir);
    for rego in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rego"))
    {
        let Ok(source) = std::fs::read_to_string(rego) else {
            continue;
        };
        for line in crate::policy::lint::negated_comparisons(&source) {
            eprintln!(
                "warning: {}:{line}: `not` over a comparison, membership test or call: \
                 where an operand can be undefined, OPA and the control plane decide \
                 differently (README, \"Differences from OPA\"); negate a named rule instead",
                rego.display()
            );
        }
    }
}

/// Where the lock and the catalog disagree about which tools and prompts
/// exist: a catalog entry the lock lacks, or a pin of a name the catalog
/// has no entry for and no `expose` rule could give.
fn lock_problems(file: &CatalogFile, lock: &LockFile) -> Vec<String> {
    let mut problems = Vec::new();
    for kind in [Pinned::Tool, Pinned::Prompt] {
        let (word, names): (&str, Vec<&String>) = match kind {
            Pinned::Tool => ("tool", file.tools.iter().map(|(name, _)| name).collect()),
            Pinned::Prompt => (
                "prompt",
                file.prompts.iter().map(|(name, _)| name).collect(),
            ),
        };
        let pinned = lock.of(kind);
        for name in &names {
            if !pinned.contains_key(*name) {
                problems.push(format!(
                    "{word} `{name}` is not pinned; run `pins update` (or `pins approve {name}`)"
                ));
            }
        }
        for name in pinned.keys() {
            if !names.contains(&name) && !expose::could_expose(file, name) {
                problems.push(format!(
                    "{word} `{name}` is pinned but the catalog has no such {word}"
                ));
            }
        }
    }
    problems
}
