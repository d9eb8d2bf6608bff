//! The same policy and input give the same decision here as in OPA: the
//! shipped example policy, decided by the control plane's engine (regorus)
//! and by the real OPA engine (the OPA Go library, `tests/clients/opa_decide.py`)
//! on generated inputs, edge values included (numbers as strings, zero,
//! negative, fractional and huge numbers, missing and null arguments).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use mcp_control_plane::policy::{Decision, DenyCause, RegoPolicy};
use serde_json::{Map, Value, json};

use crate::clients::clients_dir;

const EXAMPLE_POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/trading/policies");

/// How many inputs each seed gives.
const INPUTS: usize = 400;

/// A small deterministic generator (xorshift64), so a run that finds a
/// difference finds it again.
struct Pick(u64);

impl Pick {
    fn one<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        &items[(self.0 % items.len() as u64) as usize]
    }

    /// Set `key` in `arguments` to one of `values`; `None` leaves it out.
    fn argument(
        &mut self,
        arguments: &mut Map<String, Value>,
        key: &str,
        values: &[Option<Value>],
    ) {
        if let Some(value) = self.one(values) {
            arguments.insert(key.into(), value.clone());
        }
    }
}

/// Input documents as the control plane builds them (README, "Policy"),
/// over the example's tools, agents and environments.
fn inputs(seed: u64) -> Vec<Value> {
    let mut pick = Pick(seed);
    let numbers = |more: &[Value]| -> Vec<Option<Value>> {
        let mut values: Vec<_> = [json!(1), json!(10), json!(1000), json!(20000), json!(0)]
            .into_iter()
            .chain([json!(-5), json!(0.5), json!("12"), json!("0"), json!(1e308)])
            .chain([Value::Null, json!(1e-300), json!(true)])
            .chain(more.iter().cloned())
            .map(Some)
            .collect();
        values.push(None);
        values
    };
    let quantities = numbers(&[json!(5000)]);
    let prices = numbers(&[json!(100), json!(2000), json!(-3), json!(0.01)]);
    let names = |names: &[&str]| -> Vec<Option<Value>> {
        (names.iter().map(|n| Some(json!(n))))
            .chain([None])
            .collect()
    };
    let symbols = names(&["AAPL", "NVDA", "ZZZ"]);
    let sides = names(&["buy", "sell", "hold"]);
    let desks = names(&["fx", "rates", "equities"]);
    let findings = [
        json!([]),
        json!([{"kind": "private_key", "part": "arguments", "path": "/note"}]),
        json!([{"kind": "email", "part": "arguments", "path": "/note"}]),
        json!([{"kind": "aws_access_key", "part": "result", "path": "/text"}]),
    ];
    (0..INPUTS)
        .map(|_| {
            let tool = *pick.one(&[
                "execute_trade",
                "execute_trade",
                "execute_trade",
                "read_positions",
                "run_report",
                "other",
            ]);
            let mut arguments = Map::new();
            match tool {
                "execute_trade" => {
                    arguments.insert("account".into(), json!("ACC-001"));
                    pick.argument(&mut arguments, "symbol", &symbols);
                    pick.argument(&mut arguments, "side", &sides);
                    pick.argument(&mut arguments, "quantity", &quantities);
                    pick.argument(&mut arguments, "limit_price", &prices);
                }
                "run_report" => pick.argument(&mut arguments, "desk", &desks),
                _ => {
                    arguments.insert("account".into(), json!("ACC-001"));
                }
            }
            let (agent, role) = *pick.one(&[("agent-7", "trader"), ("agent-42", "analyst")]);
            json!({
                "agent": {"id": agent, "role": role, "claims": {}},
                "tool": {"kind": "tool", "name": tool, "upstream_name": tool, "server": "s", "tags": []},
                "arguments": arguments,
                "environment": pick.one(&["production", "staging"]),
                "findings": pick.one(&findings),
                "request": {"trace_id": "t", "time": "2026-11-25T12:00:00Z",
                            "timestamp": 1795608000, "front_door": "rest", "action": "call"},
            })
        })
        .collect()
}

/// A decision in the terms both engines share: hidden, allowed, or denied
/// with reasons (`None` when the evaluation failed, in either engine: a
/// denial, with no reasons to compare).
#[derive(Debug, PartialEq)]
enum Verdict {
    Hidden,
    Allow,
    Deny(Option<BTreeSet<String>>),
}

fn ours(policy: &RegoPolicy, input: &Value) -> Verdict {
    let input = regorus::Value::from_json_str(&input.to_string()).unwrap();
    match policy.decide(input) {
        Decision::Allow => Verdict::Allow,
        Decision::Hidden => Verdict::Hidden,
        Decision::Deny {
            cause: DenyCause::Error,
            ..
        } => Verdict::Deny(None),
        Decision::Deny { reasons, .. } => {
            Verdict::Deny(Some(reasons.iter().map(|r| numbers(r)).collect()))
        }
    }
}

/// `reason` with each number written one way: `sprintf("%v")` writes a
/// large float as `100000000` here and `1e+08` in OPA.
fn numbers(reason: &str) -> String {
    let words = reason.split(' ').map(|word| match word.parse::<f64>() {
        Ok(number) => number.to_string(),
        Err(_) => word.to_owned(),
    });
    words.collect::<Vec<_>>().join(" ")
}

fn opas(decided: &Value) -> Verdict {
    if decided["visible"] != true {
        return Verdict::Hidden;
    }
    if decided["allow"] == true {
        return Verdict::Allow;
    }
    if decided["allow"].get("error").is_some() || decided["reasons"].get("error").is_some() {
        return Verdict::Deny(None);
    }
    let reasons = (decided["reasons"].as_array().into_iter().flatten())
        .map(|reason| numbers(reason.as_str().unwrap()))
        .collect();
    Verdict::Deny(Some(reasons))
}

/// OPA's decisions on `inputs`, for the policies under `dir`.
fn decided_by_opa(dir: &Path, inputs: &[Value]) -> Vec<Value> {
    let clients = clients_dir();
    let data = std::fs::read_to_string(dir.join("data.yaml")).unwrap();
    let data: Value = yaml_serde::from_str(&data).unwrap();
    let data_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(data_file.path(), data.to_string()).unwrap();
    let mut opa = Command::new(clients.join("venv/bin/python"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/opa_decide.py"
        ))
        .arg(dir)
        .arg(data_file.path())
        .env("OPA_BINDINGS", clients.join("opa/lib"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = opa.stdin.take().unwrap();
    let lines: String = inputs.iter().map(|input| format!("{input}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(lines.as_bytes()).unwrap());
    let decided: Vec<Value> = BufReader::new(opa.stdout.take().unwrap())
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    writer.join().unwrap();
    assert!(opa.wait().unwrap().success());
    assert_eq!(decided.len(), inputs.len(), "OPA decided every input");
    decided
}

#[test]
fn the_example_policy_decides_as_opa_decides() {
    let dir = Path::new(EXAMPLE_POLICIES);
    let policy = RegoPolicy::load_dir(dir).unwrap();
    let inputs: Vec<_> = [0x5eed_0f0a, 7, 1 << 40]
        .into_iter()
        .flat_map(inputs)
        .collect();
    let decided = decided_by_opa(dir, &inputs);
    let mut differences = Vec::new();
    let mut kinds = BTreeSet::new();
    for (input, opa) in inputs.iter().zip(&decided) {
        let (here, there) = (ours(&policy, input), opas(opa));
        kinds.insert(format!("{here:?}").split('(').next().unwrap().to_owned());
        let agree = match (&here, &there) {
            (Verdict::Deny(None), Verdict::Deny(_)) | (Verdict::Deny(_), Verdict::Deny(None)) => {
                true
            }
            _ => here == there,
        };
        if !agree {
            differences.push(format!(
                "{}\n  here: {here:?}\n  OPA:  {there:?}",
                input["arguments"]
            ));
        }
    }
    // The inputs reach every kind of decision, or the comparison says little.
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert!(
        differences.is_empty(),
        "{} of {} decisions differ from OPA's:\n{}",
        differences.len(),
        inputs.len(),
        differences.join("\n")
    );
}
