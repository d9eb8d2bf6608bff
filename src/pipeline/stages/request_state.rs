//! request_state: binds an upstream's `requestState` (SEP-2322 multi
//! round-trip requests) to the agent and the request it was issued for.
//!
//! An upstream that answers `input_required` hands the client an opaque
//! state to echo on its retry. The state is the upstream's to interpret and
//! to protect against tampering; what only the control plane can see is who
//! echoes it. So on the way back the state is sealed: prefixed with an HMAC
//! over the agent, the action, the target and the state itself. On the way
//! in, a retry's state must carry a seal made for this agent and this
//! request, and reaches the upstream exactly as the upstream issued it. A
//! state replayed by another agent, for another tool, or forged is refused
//! and recorded, and never reaches the upstream.
//!
//! The key is random per process: a retry must reach the replica that
//! sealed its state (a shared key comes with replicas that share state).

use futures::future::BoxFuture;
use rmcp::model::ServerResult;

use crate::pipeline::seal::Seal;
use crate::pipeline::stage::{Answer, Stage};
use crate::pipeline::{Exchange, PipelineError};

/// Marks a sealed state, and names the seal's format.
const PREFIX: &str = "mcpcp1.";

pub struct RequestState {
    seal: Seal,
}

impl RequestState {
    pub fn new() -> Self {
        Self { seal: Seal::new() }
    }

    /// What a seal binds: the agent, the action, the target, the server
    /// that issued the state (of a tool with weighted targets, the one
    /// that served), the state.
    fn parts<'x>(exchange: &'x Exchange<'_>, state: &'x str) -> [&'x [u8]; 5] {
        let target = exchange.target().map(|t| t.name()).unwrap_or_default();
        let server = exchange.server_name().map_or("", |name| name);
        [
            exchange.caller().agent_id.as_bytes(),
            exchange.action.as_str().as_bytes(),
            target.as_bytes(),
            server.as_bytes(),
            state.as_bytes(),
        ]
    }

    fn seal(&self, exchange: &Exchange<'_>, state: &str) -> String {
        let tag = self.seal.tag(&Self::parts(exchange, state));
        format!("{PREFIX}{tag}.{state}")
    }

    /// The upstream's state inside `sealed`, if the seal was made for this
    /// agent and request.
    fn open<'s>(&self, exchange: &Exchange<'_>, sealed: &'s str) -> Option<&'s str> {
        let (tag, state) = sealed.strip_prefix(PREFIX)?.split_once('.')?;
        (self.seal.verify(&Self::parts(exchange, state), tag)).then_some(state)
    }
}

impl Stage for RequestState {
    fn name(&self) -> &'static str {
        "request_state"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        let opened = match exchange.continuation.request_state.take() {
            None => Ok(()),
            Some(sealed) => match self.open(exchange, &sealed) {
                Some(state) => {
                    exchange.continuation.request_state = Some(state.to_string());
                    Ok(())
                }
                None => Err(PipelineError::InvalidRequest(
                    "`requestState` was not issued for this caller and request".into(),
                )),
            },
        };
        Box::pin(std::future::ready(opened))
    }

    fn response<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
        answer: &'a mut Answer,
    ) -> BoxFuture<'a, ()> {
        if let Ok(ServerResult::InputRequiredResult(result)) = answer
            && let Some(state) = result.request_state.take()
        {
            result.request_state = Some(self.seal(exchange, &state));
        }
        Box::pin(std::future::ready(()))
    }
}
