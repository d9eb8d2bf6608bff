//! detect: on the way in, the built-in detectors ([`crate::guardrails::detect`])
//! run over a call's arguments. Their findings (kind and path, never what
//! matched) go to the policy as `input.findings`, so a rule can deny a
//! call whose arguments carry a private key, and into the audit record.

use futures::future::BoxFuture;
use serde_json::Value;

use crate::guardrails::detect::{self, Part};
use crate::pipeline::stage::Stage;
use crate::pipeline::{Exchange, PipelineError};
use crate::vocabulary::Action;

pub struct Detect;

impl Stage for Detect {
    fn name(&self) -> &'static str {
        "detect"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        scan_arguments(exchange);
        Box::pin(std::future::ready(Ok(())))
    }
}

fn scan_arguments(exchange: &mut Exchange<'_>) {
    let (Action::Call, Some(arguments)) = (exchange.action, exchange.arguments.take()) else {
        return;
    };
    // Moved into a JSON value and back: the arguments are not copied.
    let value = Value::Object(arguments);
    detect::scan(&value, Part::Arguments, &mut exchange.findings);
    if let Value::Object(arguments) = value {
        exchange.arguments = Some(arguments);
    }
    if !exchange.findings.is_empty() {
        exchange.record().findings = exchange.findings.clone();
    }
}
