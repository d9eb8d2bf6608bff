//! `policy`: tools for policy authors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::config;
use crate::policy::{Decision, Policies, RegoPolicy};

/// Test and debug Rego policies.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run the Rego unit tests under DIR, like `opa test`.
    ///
    /// Evaluates every rule named `test_*` in the `.rego` files under DIR,
    /// with the `data.json`/`data.yaml` files there as data. Prints PASS,
    /// FAIL or ERROR per test and a summary; exits 1 if any fails.
    Test {
        /// A directory (searched recursively) or one `.rego` file.
        dir: PathBuf,
    },
    /// Print the policy's decision for one input document.
    ///
    /// Loads the catalog's `policy` (as `serve` would, tests included) and
    /// prints `decision` (allow, hidden or deny), `cause`, `visible` and
    /// `reasons` as JSON: the tool a policy author debugs with.
    Eval {
        /// The catalog file whose `policy` section to use.
        #[arg(long, short)]
        config: PathBuf,
        /// The input document (JSON), as the README's "Policy" section
        /// describes it.
        #[arg(long, short)]
        input: PathBuf,
    },
}

pub fn run(args: &PolicyArgs) -> ExitCode {
    match &args.command {
        PolicyCommand::Test { dir } => test(dir),
        PolicyCommand::Eval { config, input } => match eval(config, input) {
            Ok(decision) => {
                println!("{decision:#}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
        },
    }
}

fn test(dir: &std::path::Path) -> ExitCode {
    let policy = match RegoPolicy::load_dir(dir) {
        Ok(policy) => policy,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let outcomes = policy.run_tests();
    if outcomes.is_empty() {
        eprintln!("error: no test_* rules under {}", dir.display());
        return ExitCode::FAILURE;
    }
    for outcome in &outcomes {
        match (&outcome.error, outcome.passed) {
            (_, true) => println!("{}: PASS", outcome.name),
            (Some(error), false) => println!("{}: ERROR ({error})", outcome.name),
            (None, false) => println!("{}: FAIL", outcome.name),
        }
    }
    let passed = outcomes.iter().filter(|o| o.passed).count();
    println!("{}", "-".repeat(72));
    println!("PASS: {passed}/{}", outcomes.len());
    if passed == outcomes.len() {
        ExitCode::SUCCESS
    } else {
        println!("FAIL: {}/{}", outcomes.len() - passed, outcomes.len());
        ExitCode::FAILURE
    }
}

fn eval(config: &std::path::Path, input: &std::path::Path) -> anyhow::Result<Value> {
    let file = config::load_file(config).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let base_dir = config.parent().map(PathBuf::from).unwrap_or_default();
    let policies = Policies::open(file.policy.as_ref(), &base_dir)?;
    let text = std::fs::read_to_string(input)?;
    let document: serde_json::Value = serde_json::from_str(&text)?;
    let value = || regorus::Value::from(document.clone());
    let visible = policies.shows(|| Some(value()));
    Ok(match policies.decide(value) {
        Decision::Allow => json!({"decision": "allow", "visible": visible, "reasons": []}),
        Decision::Hidden => json!({"decision": "hidden", "visible": false, "reasons": []}),
        Decision::Deny { reasons, cause } => json!({
            "decision": "deny", "cause": cause.as_str(), "visible": visible, "reasons": reasons,
        }),
    })
}
