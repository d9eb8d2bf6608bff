//! Rego policies, evaluated in-process by `regorus`.
//!
//! A policy version is parsed and prepared once ([`RegoPolicy::load`]);
//! each decision clones the prepared engine (shared, reference-counted
//! state), sets the input and evaluates, so concurrent requests never wait
//! on each other and nothing is parsed per call. Anything but a boolean
//! `true` from the query denies: `false`, undefined, another value, an
//! evaluation error, a time-out.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};

use super::result::ResultDecision;
use crate::config::RegoSettings;
use crate::config::files::{read_within, scrub};

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read {path}: {problem}")]
    Read { path: String, problem: String },
    #[error("{0}")]
    Compile(String),
    #[error("data file {path}: {problem}")]
    Data { path: String, problem: String },
    #[error("no policy declares the query rule `{0}`")]
    NoQuery(String),
    #[error("policy tests failed: {0}")]
    TestsFailed(String),
}

/// The outcome of one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The `visible` rule hides the target: refused exactly like a target
    /// the role does not grant.
    Hidden,
    /// The query did not say `true`; `reasons` from the policy, `cause`
    /// for the audit trail.
    Deny {
        reasons: Vec<String>,
        cause: DenyCause,
    },
}

/// What the query produced when it did not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyCause {
    False,
    Undefined,
    NotBoolean,
    /// An evaluation error, including the time limit.
    Error,
    /// No policy is configured.
    NoPolicy,
}

impl DenyCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::False => "false",
            Self::Undefined => "undefined",
            Self::NotBoolean => "not_boolean",
            Self::Error => "evaluation_error",
            Self::NoPolicy => "no_policy",
        }
    }
}

/// The result of one `test_*` rule.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub name: String,
    pub passed: bool,
    /// Why it failed, when evaluation itself failed.
    pub error: Option<String>,
}

/// One compiled policy version.
pub struct RegoPolicy {
    template: Engine,
    query: String,
    /// Set when the policy declares the rule.
    reasons: Option<String>,
    visible: Option<String>,
    /// The result rule's `deny` and `redact`, those the policy declares.
    result_deny: Option<String>,
    result_redact: Option<String>,
    tests: Vec<String>,
}

impl RegoPolicy {
    /// Read, parse and prepare the policy `settings` name.
    pub fn load(settings: &RegoSettings, base_dir: &Path) -> Result<Self, PolicyError> {
        Self::compile(settings, base_dir, true)
    }

    /// The policy files and data under `dir` (`*.rego`, and `data.json` /
    /// `data.yaml` files, as `opa test` finds them), for running their tests.
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        let mut data = Vec::new();
        find_data_files(dir, &mut data);
        data.sort();
        let mut settings = RegoSettings::new(vec![dir.to_path_buf()], data);
        // Tests may do more work than one decision.
        settings.timeout = std::time::Duration::from_secs(10);
        Self::compile(&settings, Path::new(""), false)
    }

    fn compile(
        settings: &RegoSettings,
        base_dir: &Path,
        require_query: bool,
    ) -> Result<Self, PolicyError> {
        let mut engine = Engine::new();
        for file in rego_files(&settings.files, base_dir)? {
            // Symbolic links may not lead out of the catalog's directory.
            let text = read(&file, base_dir)?;
            engine
                .add_policy(file.display().to_string(), text)
                .map_err(|e| PolicyError::Compile(scrub(&e.to_string())))?;
        }
        for file in &settings.data {
            let path = base_dir.join(file);
            let data = read_data(&path, base_dir)?;
            engine.add_data(data).map_err(|e| PolicyError::Data {
                path: path.display().to_string(),
                problem: scrub(&e.to_string()),
            })?;
        }
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: settings.timeout,
            check_interval: NonZeroU32::new(64).unwrap_or(NonZeroU32::MIN),
        });
        let rules = declared_rules(&mut engine)?;
        let has_query = rules.contains(&settings.query);
        if require_query && !has_query {
            return Err(PolicyError::NoQuery(settings.query.clone()));
        }
        let declared = |rule: &String| rules.contains(rule).then(|| rule.clone());
        let tests = rules
            .iter()
            .filter(|rule| {
                rule.rsplit('.')
                    .next()
                    .is_some_and(|n| n.starts_with("test_"))
            })
            .cloned()
            .collect();
        // Prepare once (analysis, rule gathering), so every clone starts
        // ready. An evaluation error here is the input's, not the policy's.
        engine.set_input(Value::new_object());
        let warm_up = match has_query {
            true => Some(settings.query.clone()),
            false => rules.iter().next().cloned(),
        };
        if let Some(rule) = warm_up {
            let _ = engine.eval_rule(rule);
        }
        Ok(Self {
            template: engine,
            query: settings.query.clone(),
            reasons: declared(&settings.reasons),
            visible: declared(&settings.visible),
            result_deny: declared(&format!("{}.deny", settings.result)),
            result_redact: declared(&format!("{}.redact", settings.result)),
            tests,
        })
    }

    /// Whether the policy declares a `visible` rule.
    pub fn has_visibility(&self) -> bool {
        self.visible.is_some()
    }

    /// Decide one request: the `visible` rule (if declared) must be true,
    /// then the query must be `true`.
    pub fn decide(&self, input: Value) -> Decision {
        let mut engine = self.template.clone();
        engine.set_input(input);
        if let Some(visible) = &self.visible
            && !matches!(evaluate(&mut engine, visible), Ok(Value::Bool(true)))
        {
            return Decision::Hidden;
        }
        let cause = match evaluate(&mut engine, &self.query) {
            Ok(Value::Bool(true)) => return Decision::Allow,
            Ok(Value::Bool(false)) => DenyCause::False,
            Ok(Value::Undefined) => DenyCause::Undefined,
            Ok(_) => DenyCause::NotBoolean,
            Err(error) => {
                tracing::warn!(query = %self.query, %error, "policy evaluation failed; denying");
                DenyCause::Error
            }
        };
        let reasons = match &self.reasons {
            Some(rule) => evaluate(&mut engine, rule)
                .map(|value| strings(&value))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        Decision::Deny { reasons, cause }
    }

    /// Whether the policy judges results.
    pub fn judges_results(&self) -> bool {
        self.result_deny.is_some() || self.result_redact.is_some()
    }

    /// Judge one result: `input` is the request's input document with
    /// `result` and `findings`. Fails closed.
    pub fn judge_result(&self, input: Value) -> ResultDecision {
        let mut engine = self.template.clone();
        engine.set_input(input);
        let failed = |rule: &str, error: String| {
            tracing::warn!(rule, %error, "result policy evaluation failed; withholding the result");
            ResultDecision::Deny(vec!["the result policy could not decide".to_owned()])
        };
        let deny = match &self.result_deny {
            Some(rule) => match evaluate(&mut engine, rule) {
                Ok(value) => strings(&value),
                Err(error) => return failed(rule, error),
            },
            None => Vec::new(),
        };
        let redact = match &self.result_redact {
            Some(rule) => match evaluate(&mut engine, rule) {
                Ok(Value::Undefined) => None,
                Ok(value) => serde_json::to_value(&value).ok(),
                Err(error) => return failed(rule, error),
            },
            None => None,
        };
        super::result::decision(deny, redact)
    }

    /// Whether a target is shown at discovery (always, without a `visible` rule).
    pub fn shows(&self, input: Value) -> bool {
        let Some(visible) = &self.visible else {
            return true;
        };
        let mut engine = self.template.clone();
        engine.set_input(input);
        matches!(evaluate(&mut engine, visible), Ok(Value::Bool(true)))
    }

    /// Run every `test_*` rule, as `opa test` does: a test passes when it
    /// evaluates to `true`.
    pub fn run_tests(&self) -> Vec<TestOutcome> {
        self.tests
            .iter()
            .map(|name| {
                let mut engine = self.template.clone();
                engine.set_input(Value::Undefined);
                let result = evaluate(&mut engine, name);
                TestOutcome {
                    name: name.clone(),
                    passed: matches!(result, Ok(Value::Bool(true))),
                    error: result.err(),
                }
            })
            .collect()
    }

    /// Run the tests; a failure is a load error.
    pub fn check_tests(&self) -> Result<usize, PolicyError> {
        let outcomes = self.run_tests();
        let failed: Vec<&str> = outcomes
            .iter()
            .filter(|t| !t.passed)
            .map(|t| t.name.as_str())
            .collect();
        if failed.is_empty() {
            Ok(outcomes.len())
        } else {
            Err(PolicyError::TestsFailed(failed.join(", ")))
        }
    }
}

fn evaluate(engine: &mut Engine, rule: &str) -> Result<Value, String> {
    engine
        .eval_rule(rule.to_string())
        .map_err(|e| e.to_string())
}

/// The strings of a set or array (a policy's reasons), sorted.
fn strings(value: &Value) -> Vec<String> {
    let items: Vec<&Value> = match value {
        Value::Set(set) => set.iter().collect(),
        Value::Array(array) => array.iter().collect(),
        Value::String(_) => vec![value],
        _ => Vec::new(),
    };
    let mut strings: Vec<String> = items
        .into_iter()
        .filter_map(|v| v.as_string().ok().map(|s| s.to_string()))
        .collect();
    strings.sort();
    strings
}

/// Every rule path the loaded modules declare (`data.pkg.rule`).
fn declared_rules(engine: &mut Engine) -> Result<BTreeSet<String>, PolicyError> {
    let packages = engine
        .get_packages()
        .map_err(|e| PolicyError::Compile(e.to_string()))?;
    let mut rules = BTreeSet::new();
    for (package, module) in packages.iter().zip(engine.get_modules().iter()) {
        for rule in &module.policy {
            let text = rule.span().text();
            let text = text
                .strip_prefix("default")
                .map(str::trim_start)
                .unwrap_or(text);
            let name: String = text
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                rules.insert(format!("{package}.{name}"));
            }
        }
    }
    Ok(rules)
}

/// The `.rego` files `paths` name: files as given, directories searched
/// recursively; sorted, so the load order is stable.
pub fn rego_files(paths: &[PathBuf], base_dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let mut files = Vec::new();
    for path in paths {
        collect(&base_dir.join(path), &mut files)?;
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), PolicyError> {
    let unreadable = |e: std::io::Error| PolicyError::Read {
        path: path.display().to_string(),
        problem: e.to_string(),
    };
    if !path.is_dir() {
        std::fs::metadata(path).map_err(unreadable)?;
        files.push(path.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(path).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?.path();
        if entry.is_dir() {
            collect(&entry, files)?;
        } else if entry.extension().is_some_and(|e| e == "rego") {
            files.push(entry);
        }
    }
    Ok(())
}

/// Files named `data.json`, `data.yaml` or `data.yml` under `dir`.
fn find_data_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            find_data_files(&path, found);
        } else if path
            .file_name()
            .is_some_and(|n| n == "data.json" || n == "data.yaml" || n == "data.yml")
        {
            found.push(path);
        }
    }
}

fn read(path: &Path, within: &Path) -> Result<String, PolicyError> {
    read_within(path, within).map_err(|e| PolicyError::Read {
        path: path.display().to_string(),
        problem: e.to_string(),
    })
}

/// A JSON or YAML data file (by extension), which must hold an object.
fn read_data(path: &Path, within: &Path) -> Result<Value, PolicyError> {
    let text = read(path, within)?;
    let problem = |problem: String| PolicyError::Data {
        path: path.display().to_string(),
        problem,
    };
    let json: serde_json::Value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| problem(scrub(&e.to_string())))?
    } else {
        yaml_serde::from_str(&text).map_err(|e| problem(scrub(&e.to_string())))?
    };
    if !json.is_object() {
        return Err(problem("must hold an object".into()));
    }
    Ok(Value::from(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rego: &str, timeout_ms: u64) -> RegoPolicy {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.rego"), rego).unwrap();
        let mut settings = RegoSettings::new(vec![dir.path().join("p.rego")], Vec::new());
        settings.timeout = std::time::Duration::from_millis(timeout_ms);
        RegoPolicy::load(&settings, Path::new("")).unwrap()
    }

    fn input(mode: &str) -> Value {
        Value::from(serde_json::json!({ "mode": mode }))
    }

    #[test]
    fn a_runaway_evaluation_hits_the_time_limit_and_denies() {
        let slow = policy(
            "package mcp.authz\nimport rego.v1\nallow if count([1 | some i in numbers.range(1, 5000); some j in numbers.range(1, 5000)]) > 0\n",
            20,
        );
        let mut engine = slow.template.clone();
        engine.set_input(input("slow"));
        let started = std::time::Instant::now();
        let error = evaluate(&mut engine, "data.mcp.authz.allow").unwrap_err();
        assert!(error.to_lowercase().contains("time"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(matches!(
            slow.decide(input("slow")),
            Decision::Deny {
                cause: DenyCause::Error,
                ..
            }
        ));
    }

    #[test]
    fn visibility_is_consulted_only_when_declared() {
        let plain = policy(
            "package mcp.authz\nimport rego.v1\nallow if input.mode == \"ok\"\n",
            100,
        );
        assert!(!plain.has_visibility());
        assert!(plain.shows(input("anything")));
        assert_eq!(plain.decide(input("ok")), Decision::Allow);
        let hiding = policy(
            "package mcp.authz\nimport rego.v1\ndefault visible := false\nvisible if input.mode != \"secret\"\nallow if visible\n",
            100,
        );
        assert!(hiding.has_visibility());
        assert!(!hiding.shows(input("secret")));
        assert_eq!(hiding.decide(input("secret")), Decision::Hidden);
        assert_eq!(hiding.decide(input("open")), Decision::Allow);
    }

    #[test]
    fn a_policy_without_the_query_rule_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.rego"), "package other\nx := 1\n").unwrap();
        let settings = RegoSettings::new(vec![dir.path().to_path_buf()], Vec::new());
        assert!(matches!(
            RegoPolicy::load(&settings, Path::new("")),
            Err(PolicyError::NoQuery(_))
        ));
    }
}
