//! The cost of one policy decision with the shipped example policy
//! (`examples/trading/policies`), including building the input document:
//! the work the Rego stage adds to every call. And the cost of judging a
//! result (small and 1 MiB) with the example's result rule: the work the
//! results stage adds (the result as JSON, the detectors over it, the
//! rule's input and evaluation, and the redaction of a key it finds).
//!
//! `cargo bench --bench policy`

use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_control_plane::config::RegoSettings;
use mcp_control_plane::identity::Caller;
use mcp_control_plane::policy::input::{self, RequestFacts, TargetFacts};
use mcp_control_plane::policy::{Decision, RegoPolicy};
use mcp_control_plane::vocabulary::{Action, FrontDoor};
use serde_json::json;

/// The shipped example's policy, as `serve` loads it.
fn example_policy() -> RegoPolicy {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trading");
    let settings = RegoSettings::new(vec!["policies/".into()], vec!["policies/data.yaml".into()]);
    RegoPolicy::load(&settings, &example).unwrap()
}

/// A REST call's request facts.
const REQUEST: RequestFacts<'static> = RequestFacts {
    findings: &[],
    trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
    front_door: FrontDoor::Rest,
    action: Action::Call,
};

fn decide(c: &mut Criterion) {
    let policy = example_policy();
    let caller = Caller {
        agent_id: "agent-7".into(),
        role: "trader".into(),
        claims: None,
    };
    let tags: Vec<Arc<str>> = vec!["trading".into(), "write".into()];
    let target = TargetFacts {
        kind: "tool",
        name: "execute_trade",
        upstream_name: "execute_trade",
        server: "execution",
        tags: &tags,
        annotations: Default::default(),
    };
    let request = REQUEST;
    for (name, quantity, expected_allow) in
        [("allowed trade", 10, true), ("denied trade", 20_000, false)]
    {
        let arguments =
            json!({"account": "ACC-001", "symbol": "AAPL", "side": "buy", "quantity": quantity});
        let arguments = arguments.as_object().unwrap().clone();
        let decision = policy.decide(input::document(
            &caller,
            &target,
            Some(&arguments),
            "staging",
            &request,
        ));
        assert_eq!(decision == Decision::Allow, expected_allow);
        c.bench_function(&format!("policy decision ({name})"), |b| {
            b.iter(|| {
                let document =
                    input::document(&caller, &target, Some(&arguments), "staging", &request);
                policy.decide(std::hint::black_box(document))
            })
        });
    }
}

fn judge_results(c: &mut Criterion) {
    use mcp_control_plane::guardrails::detect::{self, Part};
    use mcp_control_plane::guardrails::redact;
    use mcp_control_plane::policy::result::ResultDecision;
    use rmcp::model::{CallToolResult, ContentBlock};

    let policy = example_policy();
    let caller = Caller {
        agent_id: "agent-42".into(),
        role: "analyst".into(),
        claims: None,
    };
    let target = TargetFacts {
        kind: "tool",
        name: "read_positions",
        upstream_name: "read_positions",
        server: "marketdata",
        tags: &[],
        annotations: Default::default(),
    };
    let request = REQUEST;
    let arguments = json!({"account": "ACC-001"}).as_object().unwrap().clone();
    let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
    let line = "ACC-001 AAPL 120 shares at 187.44, NVDA 40 shares at 902.10, desk EQ-1\n";
    let big = format!("{}{key}", line.repeat((1 << 20) / line.len()));
    for (name, text) in [
        ("small result", format!("{line}{key}")),
        ("1 MiB result", big),
    ] {
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content =
            Some(json!({"positions": [{"symbol": "AAPL", "quantity": 120}]}));
        let judge = || {
            let mut value = serde_json::to_value(&result).unwrap();
            let mut findings = Vec::new();
            detect::scan(&value, Part::Result, &mut findings);
            let mut input =
                input::document(&caller, &target, Some(&arguments), "staging", &request);
            let object = input.as_object_mut().unwrap();
            object.insert("result".into(), regorus::Value::from(value.clone()));
            object.insert(
                "findings".into(),
                regorus::Value::from(serde_json::to_value(&findings).unwrap()),
            );
            let ResultDecision::Redact(redactions) = policy.judge_result(input) else {
                panic!("the example redacts the key");
            };
            redact::apply(&mut value, &redactions);
            serde_json::from_value::<CallToolResult>(value).unwrap()
        };
        assert!(!serde_json::to_string(&judge()).unwrap().contains("MIIE"));
        c.bench_function(&format!("result rule: judge and redact a {name}"), |b| {
            b.iter(judge)
        });
        c.bench_function(&format!("detectors: scan a {name}"), |b| {
            let value = serde_json::to_value(&result).unwrap();
            b.iter(|| {
                let mut findings = Vec::new();
                detect::scan(std::hint::black_box(&value), Part::Result, &mut findings);
                findings
            })
        });
    }
}

criterion_group!(benches, decide, judge_results);
criterion_main!(benches);
