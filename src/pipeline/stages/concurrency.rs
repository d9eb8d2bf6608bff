//! concurrency: a call takes one of its server's slots before it goes on
//! ([`crate::router::concurrency`]), waiting in the server's bounded queue
//! for at most the server's timeout (and never past the request's
//! deadline: a call whose time runs out there times out, 504), or is
//! refused at once with 503
//! `upstream_busy`. The slot is given back on the way back (or when the
//! request is abandoned).

use futures::future::BoxFuture;

use crate::pipeline::stage::{Answer, Stage};
use crate::pipeline::{Exchange, PipelineError};
use crate::router::concurrency::Busy;
use crate::upstream::UpstreamError;

pub struct Concurrency;

impl Stage for Concurrency {
    fn name(&self) -> &'static str {
        "concurrency"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        Box::pin(async move {
            let Some(to) = &exchange.authorized else {
                return Ok(());
            };
            let server = exchange.snapshot.catalog.server(to.server);
            let Some(gate) = exchange.snapshot.gates.of(&server.name) else {
                return Ok(());
            };
            let gate = gate.clone();
            let wait = exchange
                .remaining()
                .map_or(server.timeout, |r| r.min(server.timeout));
            match gate.enter(wait).await {
                Ok(slot) => {
                    exchange.slot = Some(slot);
                    Ok(())
                }
                Err(Busy::Full) => {
                    exchange.record().reasons = vec![format!(
                        "all {} slots of the server in use and its queue full",
                        gate.in_flight()
                    )];
                    Err(PipelineError::UpstreamBusy)
                }
                // Waiting for its slot took all the time the call had: it
                // timed out, before reaching the server.
                Err(Busy::WaitedOut) => {
                    exchange.record().reasons =
                        vec!["no slot of the server came free in time".into()];
                    Err(PipelineError::Upstream(UpstreamError::Timeout))
                }
            }
        })
    }

    fn response<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
        _answer: &'a mut Answer,
    ) -> BoxFuture<'a, ()> {
        exchange.slot = None;
        Box::pin(std::future::ready(()))
    }
}
