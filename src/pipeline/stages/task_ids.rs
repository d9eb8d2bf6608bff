//! task_ids: a task an upstream started (SEP-2663 Tasks extension) is
//! known to its agent only by an id of the control plane's, so an agent
//! reaches its own tasks and no one else's.
//!
//! On the way back, the upstream's task id in a `CreateTaskResult` or a
//! `tasks/get` answer becomes a public one: the tool's public name, the
//! upstream's id, and a seal over both and the agent. A follow-up
//! (`tasks/get`, `tasks/update`, `tasks/cancel`) names the tool, so it is
//! resolved and authorized like a call to that tool (a grant withdrawn
//! ends access to its tasks); on the way in, its seal must be this agent's.
//! Another agent's id, a forged one, or one of another tool gets the answer
//! an unknown id gets, is recorded, and never reaches an upstream.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::BoxFuture;
use rmcp::model::ServerResult;

use crate::pipeline::seal::Seal;
use crate::pipeline::stage::{Answer, Stage};
use crate::pipeline::{Exchange, PipelineError};

/// Marks a public task id, and names its format.
const PREFIX: &str = "mcpcpt1.";

/// A public task id taken apart (the seal not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// The tool whose call started the task (public name).
    pub tool: String,
    /// The task's id on its upstream.
    pub upstream_id: String,
    tag: String,
}

impl TaskRef {
    /// Take `public` apart: `None` for anything not of our format.
    pub fn parse(public: &str) -> Option<Self> {
        let mut parts = public.strip_prefix(PREFIX)?.split('.');
        let mut text = || {
            let bytes = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
            String::from_utf8(bytes).ok()
        };
        let (tool, upstream_id) = (text()?, text()?);
        let tag = parts.next()?.to_string();
        parts.next().is_none().then_some(Self {
            tool,
            upstream_id,
            tag,
        })
    }
}

/// The answer to an id that is not the caller's, exactly as to an unknown one.
pub fn unknown_task() -> PipelineError {
    PipelineError::InvalidRequest("no such task".into())
}

pub struct TaskIds {
    seal: Seal,
}

impl TaskIds {
    pub fn new() -> Self {
        Self { seal: Seal::new() }
    }

    /// What a seal binds: the agent, the tool, the server that runs the
    /// task (of a tool with weighted targets, the one that served), and
    /// the server's id for it.
    fn parts<'x>(exchange: &'x Exchange<'_>, tool: &'x str, upstream_id: &'x str) -> [&'x [u8]; 4] {
        let server = exchange.server_name().map_or("", |name| name);
        [
            exchange.caller().agent_id.as_bytes(),
            tool.as_bytes(),
            server.as_bytes(),
            upstream_id.as_bytes(),
        ]
    }

    /// The public id of the upstream's task `upstream_id`, for this caller.
    fn public(&self, exchange: &Exchange<'_>, upstream_id: &str) -> String {
        let tool = exchange.target.map(|t| t.name()).unwrap_or_default();
        let tag = self.seal.tag(&Self::parts(exchange, tool, upstream_id));
        let (tool, id) = (
            URL_SAFE_NO_PAD.encode(tool),
            URL_SAFE_NO_PAD.encode(upstream_id),
        );
        format!("{PREFIX}{tool}.{id}.{tag}")
    }
}

impl Stage for TaskIds {
    fn name(&self) -> &'static str {
        "task_ids"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        let checked = match &exchange.task {
            None => Ok(()),
            Some(task) => {
                let parts = Self::parts(exchange, &task.tool, &task.upstream_id);
                match self.seal.verify(&parts, &task.tag) {
                    true => Ok(()),
                    false => Err(unknown_task()),
                }
            }
        };
        Box::pin(std::future::ready(checked))
    }

    fn response<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
        answer: &'a mut Answer,
    ) -> BoxFuture<'a, ()> {
        let task = match answer {
            Ok(ServerResult::CreateTaskResult(created)) => Some(&mut created.task),
            Ok(ServerResult::GetTaskResult(got)) => Some(&mut got.task.task),
            _ => None,
        };
        if let Some(task) = task {
            task.task_id = self.public(exchange, &task.task_id);
        }
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_of_our_format_are_taken_apart() {
        let id = format!(
            "{PREFIX}{}.{}.tag",
            URL_SAFE_NO_PAD.encode("slow.compute"),
            URL_SAFE_NO_PAD.encode("task-7")
        );
        let task = TaskRef::parse(&id).unwrap();
        assert_eq!(
            (task.tool.as_str(), task.upstream_id.as_str()),
            ("slow.compute", "task-7")
        );
        for foreign in [
            "task-7",
            "mcpcpt1.",
            "mcpcpt1.a.b",
            "mcpcpt1.!!.b.c",
            &format!("{id}.x"),
        ] {
            assert_eq!(TaskRef::parse(foreign), None, "{foreign}");
        }
    }
}
