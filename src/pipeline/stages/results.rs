//! results: on the way back, each tool result is judged before it leaves.
//! The detectors run over it (their findings join the arguments' in the
//! audit record), then, if the policy declares the result rule
//! ([`crate::policy::result`]), the rule decides on the request's input
//! document with `result` and every finding: the result passes, is
//! withheld (403 / JSON-RPC -32013 `result_denied`, with the policy's
//! reasons; the agent never sees it), or leaves with the parts the rule
//! names replaced by `[redacted]` (the audit record lists paths and kinds,
//! never what was removed). Bounded by the policy's timeout; it fails
//! closed.

use futures::future::BoxFuture;
use rmcp::model::{CallToolResult, ServerResult};

use crate::guardrails::detect::{self, Part};
use crate::guardrails::redact;
use crate::pipeline::stage::{Answer, Stage};
use crate::pipeline::{Exchange, PipelineError};
use crate::policy::result::ResultDecision;

pub struct Results;

impl Stage for Results {
    fn name(&self) -> &'static str {
        "results"
    }

    fn response<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
        answer: &'a mut Answer,
    ) -> BoxFuture<'a, ()> {
        judge(exchange, answer);
        Box::pin(std::future::ready(()))
    }
}

fn judge(exchange: &mut Exchange<'_>, answer: &mut Answer) {
    let Ok(ServerResult::CallToolResult(result)) = answer else {
        return;
    };
    let Ok(mut value) = serde_json::to_value(&*result) else {
        return;
    };
    let before = exchange.findings.len();
    detect::scan(&value, Part::Result, &mut exchange.findings);
    if exchange.findings.len() > before {
        exchange.record().findings = exchange.findings.clone();
    }
    let Some(input) = exchange.policy_input.take() else {
        return;
    };
    let snapshot = exchange.snapshot.clone();
    let decision = snapshot.policies.judge_result(|| {
        let mut input = input;
        if let Ok(object) = input.as_object_mut() {
            object.insert("result".into(), regorus::Value::from(value.clone()));
            let findings = serde_json::to_value(&exchange.findings).unwrap_or_default();
            object.insert("findings".into(), regorus::Value::from(findings));
        }
        input
    });
    match decision {
        ResultDecision::Pass => {}
        ResultDecision::Deny(reasons) => {
            exchange.record().reasons = reasons.clone();
            *answer = Err(PipelineError::ResultDenied(reasons));
        }
        ResultDecision::Redact(redactions) => {
            let applied = redact::apply(&mut value, &redactions);
            match serde_json::from_value::<CallToolResult>(value) {
                Ok(redacted) => {
                    exchange.record().redactions = applied;
                    *answer = Ok(ServerResult::CallToolResult(redacted));
                }
                // A redaction that leaves no valid result (the rule
                // replaced a required field) withholds it.
                Err(_) => {
                    let reasons = vec!["the redacted result is not a valid result".to_owned()];
                    exchange.record().reasons = reasons.clone();
                    *answer = Err(PipelineError::ResultDenied(reasons));
                }
            }
        }
    }
}
