//! Roles that grant by glob (`tools: ["svc_e*"]`) and by server
//! (`servers: [other]`): what they list is exactly what they may call, and
//! `check` warns about a grant that covers nothing. The catalog's word on
//! a tool (title, annotations) is what agents see and policies read.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::upstream::test_upstream;
use crate::common::{ANALYST_TOKEN, ControlPlane, TESTER_TOKEN, catalog, run_check};

#[tokio::test(flavor = "multi_thread")]
async fn glob_and_server_grants_list_and_allow_the_same_tools() {
    let one = test_upstream(0).await;
    let two = test_upstream(0).await;
    let servers = format!(
        "  svc:\n    http: {{url: \"{}\"}}\n  other:\n    http: {{url: \"{}\"}}\n",
        one.url, two.url
    );
    let tools = "  svc_echo: {server: svc, upstream_name: echo}\n  svc_fail: {server: svc, upstream_name: fail}\n  other_echo: {server: other, upstream_name: echo}\n";
    let text = catalog(&servers, tools, &["\"svc_e*\""])
        .replace("nobody: []", "nobody: {servers: [other]}");
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;

    let names = async |token| {
        let body: serde_json::Value = cp.get_tools(token, "").await.json().await.unwrap();
        let mut names: Vec<String> = (body["tools"].as_array().unwrap().iter())
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(TESTER_TOKEN).await, ["svc_echo"]);
    assert_eq!(names(ANALYST_TOKEN).await, ["other_echo"]);
    let call = async |token, tool: &str| {
        cp.invoke(Some(token), json!({"action": tool, "payload": {}}))
            .await
            .status()
    };
    assert_eq!(call(TESTER_TOKEN, "svc_echo").await, StatusCode::OK);
    assert_eq!(call(TESTER_TOKEN, "svc_fail").await, StatusCode::FORBIDDEN);
    assert_eq!(
        call(TESTER_TOKEN, "other_echo").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(call(ANALYST_TOKEN, "other_echo").await, StatusCode::OK);
    assert_eq!(call(ANALYST_TOKEN, "svc_echo").await, StatusCode::FORBIDDEN);
    assert_eq!((one.calls(), two.calls()), (1, 1));
}

#[test]
fn check_warns_about_grants_that_cover_nothing_and_refuses_bad_ones() {
    let servers = "  svc:\n    http: {url: \"http://127.0.0.1:9/mcp\"}\n  idle:\n    http: {url: \"http://127.0.0.1:8/mcp\"}\n";
    let tools = "  echo: {server: svc}\n";
    let text = catalog(servers, tools, &["echo", "\"gh_*\""])
        .replace("nobody: []", "nobody: {servers: [idle]}");
    let (ok, output, path) = run_check("catalog.yaml", &text);
    assert!(ok, "{output}");
    let file = path.display();
    assert!(
        output.contains(&format!(
            "warning: {file}: roles.tester.tools[1]: the glob `gh_*` matches no tool"
        )),
        "{output}"
    );
    assert!(
        output.contains(&format!(
            "warning: {file}: roles.nobody.servers[0]: the catalog routes no tool, prompt or resource set to `idle`"
        )),
        "{output}"
    );

    let bad = text
        .replace("\"gh_*\"", "\"[gh\"")
        .replace("servers: [idle]", "servers: [nowhere]");
    let (ok, output, _) = run_check("catalog.yaml", &bad);
    assert!(!ok, "{output}");
    assert!(
        output.contains("roles.tester.tools[1]: not a valid glob"),
        "{output}"
    );
    assert!(
        output.contains("roles.nobody.servers[0]: unknown server `nowhere`"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_catalogs_title_and_annotations_reach_the_client_and_the_policy() {
    let upstream = test_upstream(0).await;
    let dir = tempfile::tempdir().unwrap();
    // Only tools the catalog says are read-only may be called.
    let policy = "package mcp.authz\n\nimport rego.v1\n\nallow if input.tool.annotations.readOnlyHint == true\n\nreasons contains sprintf(\"annotations %v\", [input.tool.annotations]) if not allow\n";
    std::fs::write(dir.path().join("authz.rego"), policy).unwrap();
    let servers = format!("  svc:\n    http: {{url: \"{}\"}}\n", upstream.url);
    let tools = "  echo: {server: svc, title: Echo back, annotations: {readOnlyHint: true, openWorldHint: false}}\n  fail: {server: svc, annotations: {destructiveHint: true}}\n";
    let text = catalog(&servers, tools, &["echo", "fail"]).replace(
        "policy: allow-all\n",
        &format!(
            "policy:\n  files: [\"{}\"]\n",
            dir.path().join("authz.rego").display()
        ),
    );
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;

    let body: serde_json::Value = (cp.get_tools(TESTER_TOKEN, "?detail=true").await)
        .json()
        .await
        .unwrap();
    let definition = |name: &str| {
        (body["definitions"].as_array().unwrap().iter())
            .find(|d| d["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {body}"))
    };
    let echo = definition("echo");
    assert_eq!(echo["title"], "Echo back", "{echo}");
    assert_eq!(
        echo["annotations"],
        json!({"readOnlyHint": true, "openWorldHint": false})
    );
    assert_eq!(
        definition("fail")["annotations"],
        json!({"destructiveHint": true})
    );

    let call = async |tool: &str| {
        cp.invoke(Some(TESTER_TOKEN), json!({"action": tool, "payload": {}}))
            .await
    };
    assert_eq!(call("echo").await.status(), StatusCode::OK);
    let refused = call("fail").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused: serde_json::Value = refused.json().await.unwrap();
    let text = refused.to_string();
    assert!(
        text.contains("destructiveHint"),
        "the policy saw the catalog's hints: {text}"
    );
    assert_eq!(upstream.calls(), 1);
}

/// An rmcp client session with `cp` at `path` (`/mcp` or `/mcp/<endpoint>`).
async fn mcp_client(
    cp: &ControlPlane,
    path: &str,
) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let config =
        StreamableHttpClientTransportConfig::with_uri(cp.url(path)).auth_header(TESTER_TOKEN);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn virtual_endpoints_serve_their_subset_of_what_the_role_may_use() {
    let upstream = test_upstream(0).await;
    let servers = format!("  svc:\n    http: {{url: \"{}\"}}\n", upstream.url);
    let tools = "  echo: {server: svc}\n  fail: {server: svc}\n  progress: {server: svc}\n";
    let text = format!(
        "{}endpoints:\n  research: {{tools: [echo, fail]}}\n  trading: {{tools: [\"p*\"]}}\n",
        catalog(&servers, tools, &["echo", "progress"])
    );
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;

    let listed = async |path: &str| {
        let answer = (cp.http.get(cp.url(path)))
            .bearer_auth(TESTER_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        let body: serde_json::Value = answer.json().await.unwrap();
        body["tools"].clone()
    };
    assert_eq!(listed("/tools").await, json!(["echo", "progress"]));
    // The role's view, narrowed: `fail` is the endpoint's but not the role's.
    assert_eq!(listed("/endpoints/research/tools").await, json!(["echo"]));
    assert_eq!(listed("/tools?endpoint=research").await, json!(["echo"]));
    assert_eq!(
        listed("/endpoints/trading/tools").await,
        json!(["progress"])
    );
    // An endpoint that does not exist looks like an empty one.
    assert_eq!(listed("/endpoints/nowhere/tools").await, json!([]));

    let names = |tools: Vec<rmcp::model::Tool>| -> Vec<String> {
        tools.into_iter().map(|t| t.name.to_string()).collect()
    };
    let research = mcp_client(&cp, "/mcp/research").await;
    assert_eq!(names(research.list_all_tools().await.unwrap()), ["echo"]);
    let call = |tool: &str| rmcp::model::CallToolRequestParams::new(tool.to_owned());
    assert!(research.call_tool(call("echo")).await.is_ok());
    // Outside the endpoint: refused exactly as a tool outside the role is.
    let outside = format!(
        "{:?}",
        research.call_tool(call("progress")).await.unwrap_err()
    );
    let ungranted = format!("{:?}", research.call_tool(call("fail")).await.unwrap_err());
    let masked = |text: &str| {
        text.split("trace_id")
            .next()
            .unwrap()
            .replace("progress", "fail")
    };
    assert_eq!(masked(&outside), masked(&ungranted));
    assert_eq!(upstream.calls(), 1);

    let everything = mcp_client(&cp, "/mcp").await;
    assert_eq!(
        names(everything.list_all_tools().await.unwrap()),
        ["echo", "progress"]
    );
    let nowhere = mcp_client(&cp, "/mcp/nowhere").await;
    assert!(nowhere.list_all_tools().await.unwrap().is_empty());

    // A session answers only at the endpoint it was opened on.
    let post = async |path: &str, session: Option<&str>, message: serde_json::Value| {
        let mut request = (cp.http.post(cp.url(path)))
            .bearer_auth(TESTER_TOKEN)
            .header("accept", "application/json, text/event-stream")
            .json(&message);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send().await.unwrap()
    };
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let opened = post("/mcp/research", None, initialize).await;
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert!(
        post("/mcp/research", Some(&session), initialized)
            .await
            .status()
            .is_success()
    );
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let elsewhere = post("/mcp", Some(&session), list.clone()).await;
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
    let at_home = post("/mcp/research", Some(&session), list).await;
    assert_eq!(at_home.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_search_finds_only_the_roles_tools_and_call_tool_goes_through_the_pipeline() {
    let upstream = test_upstream(0).await;
    let servers = format!("  svc:\n    http: {{url: \"{}\"}}\n", upstream.url);
    let tools = "  echo: {server: svc, description: Repeat the message back to the caller}\n  \
                 progress: {server: svc, description: Report progress while a long job runs}\n  \
                 fail: {server: svc, description: Repeat nothing and fail the message}\n";
    let text = catalog(&servers, tools, &["echo", "progress"]).replace(
        "tester: [echo, progress]",
        "tester: {tools: [echo, progress], discovery: search}",
    );
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;
    let client = mcp_client(&cp, "/mcp").await;
    let listed: Vec<String> = (client.list_all_tools().await.unwrap().into_iter())
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(listed, ["search_tools", "call_tool"]);

    let search = |query: &str| {
        let arguments = json!({"query": query}).as_object().unwrap().clone();
        let params =
            rmcp::model::CallToolRequestParams::new("search_tools").with_arguments(arguments);
        let peer = client.peer().clone();
        async move {
            let result = peer.call_tool(params).await.unwrap();
            let found = result.structured_content.unwrap();
            (found["tools"].as_array().unwrap().iter())
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        search("repeat the message")
            .await
            .first()
            .map(String::as_str),
        Some("echo")
    );
    assert_eq!(
        search("long running job progress")
            .await
            .first()
            .map(String::as_str),
        Some("progress")
    );
    // `fail` matches "fail the message" best, but the role lacks it.
    let found = search("fail the message").await;
    assert!(!found.contains(&"fail".to_owned()), "{found:?}");

    let call_tool = |name: &str| {
        let arguments = json!({"name": name, "arguments": {"message": "hi"}});
        let arguments = arguments.as_object().unwrap().clone();
        rmcp::model::CallToolRequestParams::new("call_tool").with_arguments(arguments)
    };
    let answer = client.call_tool(call_tool("echo")).await.unwrap();
    let text = &answer.content[0].as_text().unwrap().text;
    assert!(text.contains("hi"), "{text}");
    let record = cp
        .audit_matching(1, |r| r["action"] == "call" && r["tool"] == "echo")
        .await;
    assert_eq!(record[0]["via"], "call_tool", "{}", record[0]);
    // Through call_tool, a tool outside the role is refused as directly.
    let through = format!(
        "{:?}",
        client.call_tool(call_tool("fail")).await.unwrap_err()
    );
    let direct = client.call_tool(rmcp::model::CallToolRequestParams::new("fail"));
    let direct = format!("{:?}", direct.await.unwrap_err());
    let masked = |text: &str| text.split("trace_id").next().unwrap().to_owned();
    assert_eq!(masked(&through), masked(&direct));
    assert_eq!(upstream.calls(), 1);

    // A malformed built-in call is refused, and recorded.
    let bare = rmcp::model::CallToolRequestParams::new("search_tools");
    let refused = format!("{:?}", client.call_tool(bare).await.unwrap_err());
    assert!(refused.contains("needs `query`"), "{refused}");
    let recorded = cp
        .audit_matching(1, |r| r["tool"] == "search_tools" && r["outcome"] != "ok")
        .await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
}
