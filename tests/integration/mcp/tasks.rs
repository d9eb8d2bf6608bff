//! Tasks (SEP-2663) through the control plane: a tool call that becomes a
//! task upstream, its follow-ups under the control plane's own task ids,
//! and another agent refused them.

use std::time::Duration;

use rmcp::model::{
    CancelTaskParams, ClientCapabilities, ClientRequest, ErrorCode, GetTaskParams, Request,
    RequestMetaObject, ServerResult, TaskPayload, TaskStatus,
};
use rmcp::service::PeerRequestOptions;
use serde_json::json;

use super::{Session, call, connect_stateless, mcp_error};
use crate::common::upstream::conformance_upstream;
use crate::common::{ControlPlane, TESTER_TOKEN, sha256_hex};

const OTHER_TOKEN: &str = "second-tester-token";

/// The fixture's task tools on a 2026-07-28 session; two agents of one role.
async fn jobs() -> ControlPlane {
    let fixture = conformance_upstream().await;
    let catalog = format!(
        "environment: test\npolicy: allow-all\n\
         servers:\n  jobs: {{http: {{url: \"{fixture}\"}}, protocol: \"2026-07-28\"}}\n\
         tools:\n  slow_compute: {{server: jobs}}\n\
         roles:\n  tester: [slow_compute]\n\
         agents:\n  tester-1: {{role: tester, token_sha256: {}}}\n  tester-2: {{role: tester, token_sha256: {}}}\n",
        sha256_hex(TESTER_TOKEN),
        sha256_hex(OTHER_TOKEN),
    );
    let cp = ControlPlane::start(&catalog);
    cp.wait_all_ready().await;
    cp
}

/// Options that declare the tasks extension for one request (SEP-2575).
fn declaring_tasks() -> PeerRequestOptions {
    let mut meta = RequestMetaObject::default();
    meta.set_client_capabilities(ClientCapabilities::builder().enable_tasks().build());
    let mut options = PeerRequestOptions::no_options();
    options.meta = Some(meta);
    options
}

async fn send(
    session: &Session,
    request: ClientRequest,
) -> Result<ServerResult, rmcp::ServiceError> {
    let handle = (session.peer())
        .send_request_with_option(request, declaring_tasks())
        .await?;
    handle.await_response().await
}

async fn start(session: &Session, seconds: f64) -> String {
    let params = call("slow_compute", json!({"seconds": seconds, "label": "pi"}));
    match send(
        session,
        ClientRequest::CallToolRequest(Request::new(params)),
    )
    .await
    {
        Ok(ServerResult::CreateTaskResult(created)) => created.task.task_id,
        other => panic!("no task: {other:?}"),
    }
}

fn get(id: &str) -> ClientRequest {
    ClientRequest::GetTaskRequest(Request::new(GetTaskParams::new(id)))
}

/// `tasks/get` until the task leaves `working`.
async fn settled(session: &Session, id: &str) -> rmcp::model::GetTaskResult {
    for _ in 0..100 {
        match send(session, get(id)).await {
            Ok(ServerResult::GetTaskResult(got)) if got.task.status() != TaskStatus::Working => {
                return got;
            }
            Ok(ServerResult::GetTaskResult(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("tasks/get: {other:?}"),
        }
    }
    panic!("the task never settled");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_lives_under_an_id_of_the_control_plane_that_only_its_agent_can_use() {
    let cp = jobs().await;
    let owner = connect_stateless(&cp, TESTER_TOKEN).await;
    let id = start(&owner, 0.2).await;
    assert!(id.starts_with("mcpcpt1."), "{id}");
    let done = settled(&owner, &id).await;
    assert_eq!(done.task.task.task_id, id, "the answer names the public id");
    let TaskPayload::Completed { result } = &done.task.payload else {
        panic!("not completed: {done:?}");
    };
    assert_eq!(result["content"][0]["text"], "computed pi");

    // Another agent of the same role, and a forged id: "no such task",
    // recorded, never sent upstream.
    let other = connect_stateless(&cp, OTHER_TOKEN).await;
    let foreign = mcp_error(send(&other, get(&id)).await);
    assert_eq!(foreign.code, ErrorCode::INVALID_PARAMS);
    let forged = format!("{}x", &id[..id.len() - 1]);
    let forged = mcp_error(send(&owner, get(&forged)).await);
    assert_eq!(
        (forged.code, &forged.message),
        (foreign.code, &foreign.message)
    );
    let refused = cp
        .audit_matching(2, |r| {
            r["action"] == "task" && r["outcome"] == "bad_request"
        })
        .await;
    assert!(
        refused.iter().any(|r| r["agent_id"] == "tester-2"),
        "{refused:?}"
    );

    // Cancelled while it runs.
    let long = start(&owner, 30.0).await;
    let cancel = ClientRequest::CancelTaskRequest(Request::new(CancelTaskParams::new(&long)));
    send(&owner, cancel).await.unwrap();
    assert_eq!(
        settled(&owner, &long).await.task.status(),
        TaskStatus::Cancelled
    );
    let followed = cp
        .audit_matching(3, |r| r["action"] == "task" && r["outcome"] == "ok")
        .await;
    // At least the three follow-ups made above, each named after its tool.
    assert!(followed.len() >= 3, "{followed:?}");
    assert!(
        followed.iter().all(|r| r["tool"] == "slow_compute"),
        "{followed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_without_the_tasks_extension_gets_its_result_directly() {
    let cp = jobs().await;
    let session = connect_stateless(&cp, TESTER_TOKEN).await;
    let answer = session
        .call_tool(call("slow_compute", json!({"seconds": 0, "label": "e"})))
        .await
        .unwrap();
    assert_eq!(answer.content[0].as_text().unwrap().text, "computed e");
}
