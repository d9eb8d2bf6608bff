//! The cost of one policy decision with the shipped example policy
//! (`examples/trading/policies`), including building the input document:
//! the work the Rego stage adds to every call.
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

fn decide(c: &mut Criterion) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trading");
    let settings = RegoSettings::new(vec!["policies/".into()], vec!["policies/data.yaml".into()]);
    let policy = RegoPolicy::load(&settings, &example).unwrap();
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
    let request = RequestFacts {
        findings: &[],
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
        front_door: FrontDoor::Rest,
        action: Action::Call,
    };
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

criterion_group!(benches, decide);
criterion_main!(benches);
