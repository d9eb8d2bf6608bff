//! call: the innermost step, where a request that every stage let in
//! reaches its upstream. Its intent record is made durable first: nothing
//! reaches an upstream before its record does.

use std::time::{Instant, SystemTime};

use rmcp::model::{
    CancelTaskParams, ClientRequest, GetTaskParams, ReadResourceRequestParams, Reference, Request,
    UpdateTaskParams,
};

use crate::audit::record::UpstreamSpan;
use crate::pipeline::stage::Answer;
use crate::pipeline::{Exchange, Operation, TaskOp};
use crate::upstream::Continuation;

/// Send `operation` to the exchange's upstream and time it.
pub async fn call(exchange: &mut Exchange<'_>, operation: Operation) -> Answer {
    exchange.intent().await?;
    let (Some(to), Some(outbound)) = (exchange.authorized.as_ref(), exchange.outbound.take())
    else {
        unreachable!("resolve and credential run before the call");
    };
    exchange.contacted = true;
    exchange.sent = true;
    let upstreams = &exchange.snapshot.upstreams;
    let (started, calling) = (SystemTime::now(), Instant::now());
    let server = to.server;
    let name = &to.upstream_name;
    let Continuation {
        input_responses,
        request_state,
    } = std::mem::take(&mut exchange.continuation);
    let answer = match operation {
        Operation::CallTool(sinks) => {
            let arguments = exchange.arguments.take().unwrap_or_default();
            let continuation = Continuation {
                input_responses,
                request_state,
            };
            (upstreams.call_tool(server, name, arguments, continuation, sinks, outbound)).await
        }
        Operation::Subscribe(subscriber) => {
            upstreams
                .subscribe(server, name, subscriber, outbound)
                .await
        }
        Operation::Task(op) => {
            let task = exchange.task.as_ref().expect("a follow-up names its task");
            let id = task.upstream_id.clone();
            let request = match op {
                TaskOp::Get => ClientRequest::GetTaskRequest(Request::new(GetTaskParams::new(id))),
                TaskOp::Update(answers) => {
                    let params = UpdateTaskParams::new(id, answers);
                    ClientRequest::UpdateTaskRequest(Request::new(params))
                }
                TaskOp::Cancel => {
                    ClientRequest::CancelTaskRequest(Request::new(CancelTaskParams::new(id)))
                }
            };
            upstreams.request(server, request, outbound).await
        }
        Operation::Unsubscribe { session } => {
            upstreams.unsubscribe(server, name, session, outbound).await
        }
        Operation::ReadResource => {
            let mut params = ReadResourceRequestParams::new(name.to_string());
            params.input_responses = input_responses;
            params.request_state = request_state;
            let request = ClientRequest::ReadResourceRequest(Request::new(params));
            upstreams.request(server, request, outbound).await
        }
        Operation::GetPrompt(mut params) => {
            params.name = name.to_string();
            params.meta = None;
            params.input_responses = input_responses;
            params.request_state = request_state;
            let request = ClientRequest::GetPromptRequest(Request::new(params));
            upstreams.request(server, request, outbound).await
        }
        Operation::Complete(mut params) => {
            params.meta = None;
            // The prompt's upstream name, or the normalized URI that was authorized.
            match &mut params.r#ref {
                Reference::Prompt(prompt) => prompt.name = name.to_string(),
                Reference::Resource(resource) => resource.uri = name.to_string(),
                _ => {}
            }
            let request = ClientRequest::CompleteRequest(Request::new(params));
            upstreams.request(server, request, outbound).await
        }
    };
    exchange.called = Some(UpstreamSpan {
        span_id: exchange.upstream_span,
        started,
        seconds: calling.elapsed().as_secs_f64(),
    });
    Ok(answer?)
}
