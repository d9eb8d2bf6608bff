//! circuit: a server whose circuit breaker is open is not called
//! ([`crate::router::breaker`]). On the way in the breaker lets the call
//! through or refuses it at once (503 `upstream_circuit_open`, before a
//! credential is minted); on the way back it hears how the call went.

use futures::future::BoxFuture;

use crate::pipeline::stage::{Answer, Stage};
use crate::pipeline::{Exchange, PipelineError};
use crate::router::breaker::Finished;
use crate::upstream::UpstreamError;

pub struct Circuit;

impl Stage for Circuit {
    fn name(&self) -> &'static str {
        "circuit"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        Box::pin(std::future::ready(admit(exchange)))
    }

    fn response<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
        answer: &'a mut Answer,
    ) -> BoxFuture<'a, ()> {
        if let Some(ticket) = exchange.circuit.take() {
            ticket.finish(finished(exchange.sent, answer));
        }
        Box::pin(std::future::ready(()))
    }
}

fn admit(exchange: &mut Exchange<'_>) -> Result<(), PipelineError> {
    let Some(server) = exchange.server_name() else {
        return Ok(());
    };
    let Some(breaker) = exchange.snapshot.breakers.of(server) else {
        return Ok(());
    };
    match breaker.admit() {
        Some(ticket) => {
            exchange.circuit = Some(ticket);
            Ok(())
        }
        None => {
            exchange.record().reasons = vec![format!(
                "circuit open; a probe may go in {} ms",
                breaker.retry_in().as_millis()
            )];
            Err(PipelineError::CircuitOpen)
        }
    }
}

/// How the call went, for the breaker: only what the server did (or
/// failed to do) counts. A tool's `isError` result is an answer.
fn finished(sent: bool, answer: &Answer) -> Finished {
    match answer {
        _ if !sent => Finished::NotSent,
        Ok(_) => Finished::Succeeded,
        // The catalog names a tool the server does not offer (now): not
        // the server failing.
        Err(PipelineError::Upstream(UpstreamError::ToolUnavailable)) => Finished::NotSent,
        // Time-outs, a lost or absent connection, JSON-RPC errors, answers
        // that are no answer.
        Err(PipelineError::Upstream(_)) => Finished::Failed,
        // The server answered; something after it refused.
        Err(_) => Finished::Succeeded,
    }
}
