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

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::BoxFuture;
use ring::hmac;
use rmcp::model::ServerResult;
use subtle::ConstantTimeEq;

use crate::pipeline::stage::{Answer, Stage};
use crate::pipeline::{Exchange, PipelineError};
use crate::vocabulary::Target;

/// Marks a sealed state, and names the seal's format.
const PREFIX: &str = "mcpcp1.";
/// Bytes of the HMAC kept in a seal.
const TAG_BYTES: usize = 16;

pub struct RequestState {
    key: hmac::Key,
}

impl RequestState {
    pub fn new() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .expect("the system's random source is available");
        Self { key }
    }

    /// What a seal binds: the agent, the action, the target, the state.
    fn tag(&self, exchange: &Exchange<'_>, state: &str) -> hmac::Tag {
        let target = exchange.target();
        let target = target.as_ref().map(Target::name).unwrap_or_default();
        let mut context = hmac::Context::with_key(&self.key);
        for part in [
            exchange.caller().agent_id.as_bytes(),
            exchange.action.as_str().as_bytes(),
            target.as_bytes(),
            state.as_bytes(),
        ] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        context.sign()
    }

    fn seal(&self, exchange: &Exchange<'_>, state: &str) -> String {
        let tag = self.tag(exchange, state);
        let tag = URL_SAFE_NO_PAD.encode(&tag.as_ref()[..TAG_BYTES]);
        format!("{PREFIX}{tag}.{state}")
    }

    /// The upstream's state inside `sealed`, if the seal was made for this
    /// agent and request.
    fn open<'s>(&self, exchange: &Exchange<'_>, sealed: &'s str) -> Option<&'s str> {
        let (tag, state) = sealed.strip_prefix(PREFIX)?.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let expected = self.tag(exchange, state);
        let matches = bool::from(expected.as_ref()[..TAG_BYTES].ct_eq(&tag));
        matches.then_some(state)
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
