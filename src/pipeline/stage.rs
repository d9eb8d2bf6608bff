//! The shape every stage has, and how a request runs through a list of
//! them.
//!
//! A stage acts twice: on the way in ([`Stage::request`]), where it may
//! refuse, wait, or note what later stages need; and on the way back
//! ([`Stage::response`]), where it sees the answer (or the refusal) and
//! may change it or count it. As in a stack of layers, the way back runs
//! innermost first, and only through the stages whose way in ran (the one
//! that refused included): a refusal travels back like an answer.

use futures::future::BoxFuture;
use rmcp::model::ServerResult;

use super::{Exchange, PipelineError};

/// What the stages return: the upstream's answer, or why there is none.
pub type Answer = Result<ServerResult, PipelineError>;

pub trait Stage: Send + Sync {
    /// The stage's name, for logs and for readers of the list.
    fn name(&self) -> &'static str;

    /// On the way in: `Err` refuses the request. Stages that only act on
    /// the way back let every request in.
    fn request<'a, 'e>(
        &'a self,
        _exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// On the way back, with the answer so far. Most stages only act on the
    /// way in.
    fn response<'a, 'e>(
        &'a self,
        _exchange: &'a mut Exchange<'e>,
        _answer: &'a mut Answer,
    ) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// Run `exchange` through `stages`, then `inner` (the upstream, or a
/// listing) if every stage let it in, then back out.
pub async fn run<'e>(
    stages: &[Box<dyn Stage>],
    exchange: &mut Exchange<'e>,
    inner: impl AsyncFnOnce(&mut Exchange<'e>) -> Answer,
) -> Answer {
    let mut entered = 0;
    let mut refusal = None;
    for stage in stages {
        entered += 1;
        if let Err(error) = stage.request(exchange).await {
            tracing::debug!(stage = stage.name(), %error, "request refused");
            refusal = Some(error);
            break;
        }
    }
    let mut answer = match refusal {
        Some(error) => Err(error),
        None => inner(exchange).await,
    };
    for stage in stages[..entered].iter().rev() {
        stage.response(exchange, &mut answer).await;
    }
    answer
}
