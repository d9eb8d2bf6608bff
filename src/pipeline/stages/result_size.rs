//! result_size: on the way back from each leg, a tool result larger (as
//! JSON) than its tool's `max_result_bytes`, else its server's, fails the
//! call cleanly (502 / JSON-RPC -32019 `result_too_large`, recorded)
//! instead of flooding the agent. Without a limit nothing is counted.

use futures::future::BoxFuture;
use rmcp::model::ServerResult;

use crate::guardrails::result_size::json_len;
use crate::pipeline::stage::{Answer, Stage};
use crate::pipeline::{Exchange, PipelineError};

pub struct ResultSize;

impl Stage for ResultSize {
    fn name(&self) -> &'static str {
        "result_size"
    }

    fn response<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
        answer: &'a mut Answer,
    ) -> BoxFuture<'a, ()> {
        limit(exchange, answer);
        Box::pin(std::future::ready(()))
    }
}

fn limit(exchange: &mut Exchange<'_>, answer: &mut Answer) {
    let (Ok(ServerResult::CallToolResult(result)), Some(to)) = (&*answer, &exchange.authorized)
    else {
        return;
    };
    let server = exchange.snapshot.catalog.guards(to.server).max_result_bytes;
    let Some(max) = to.max_result_bytes.or(server) else {
        return;
    };
    let size = json_len(result);
    if size > max {
        exchange.record().reasons =
            vec![format!("result of {size} bytes, over the limit of {max}")];
        *answer = Err(PipelineError::ResultTooLarge(max));
    }
}
