//! Tool calls through `/mcp`: both lifecycles, refusals, progress,
//! cancellation, timeouts and requests relayed back to the caller.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_result_carries_the_trace_of_the_callers_meta_traceparent() {
    use rmcp::model::RequestParamsMeta;
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let session = connect_stateless(&cp, ANALYST_TOKEN).await;
    let mut params = call("read_positions", json!({ "account": "ACC-001" }));
    params.set_traceparent("00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    let result = session.call_tool(params).await.unwrap();
    let traceparent = result.meta.unwrap()["traceparent"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        traceparent.starts_with("00-5bf92f3577b34da6a3ce929d0e0e4736-"),
        "{traceparent}"
    );
    let record = cp.audit_record("5bf92f3577b34da6a3ce929d0e0e4736").await;
    assert_eq!(record["front_door"], "mcp");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_denial_is_a_json_rpc_error_with_the_policys_reasons() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let session = connect_stateless(&cp, TRADER_TOKEN).await;
    let order = json!({ "account": "ACC-001", "symbol": "AAPL", "side": "buy", "quantity": 20_000, "limit_price": 100 });
    let error = mcp_error(session.call_tool(call("execute_trade", order)).await);
    assert_eq!(error.code.0, -32013);
    let data = error.data.unwrap();
    assert_eq!(data["code"], "policy_denied");
    assert_eq!(
        data["reasons"],
        json!(["order notional 2000000 exceeds the desk limit of 1000000"])
    );
    let record = cp.audit_record(data["trace_id"].as_str().unwrap()).await;
    assert_eq!(
        (record["front_door"].as_str(), record["outcome"].as_str()),
        (Some("mcp"), Some("denied_policy"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_role_lists_and_calls_its_tools_over_both_lifecycles() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let (analyst, _) = connect(&cp, ANALYST_TOKEN).await;
    let info = analyst.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "mcp-control-plane");
    assert_eq!(tool_names(&analyst).await, ["read_positions", "run_report"]);
    let tools = analyst.list_all_tools().await.unwrap();
    let text = serde_json::to_string(&tools).unwrap();
    for needle in [
        "marketdata",
        "research",
        "execution",
        "http://",
        "$SELF",
        "example-server",
    ] {
        assert!(
            !text.contains(needle),
            "tools/list reveals {needle}: {text}"
        );
    }
    let result = analyst
        .call_tool(call(
            "read_positions",
            json!({ "account": "ACC-002", "symbol": "XOM" }),
        ))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false));
    assert_eq!(
        result.structured_content.unwrap()["positions"][0]["quantity"],
        1000
    );

    let trader = connect_stateless(&cp, TRADER_TOKEN).await;
    assert_eq!(
        tool_names(&trader).await,
        ["execute_trade", "read_positions"]
    );
    let result = trader
        .call_tool(call(
            "execute_trade",
            json!({ "account": "ACC-001", "symbol": "MSFT", "side": "sell", "quantity": 5, "limit_price": 420.5 }),
        ))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["order_type"], "limit");

    let calls = cp
        .audit_matching(2, |r| r["front_door"] == "mcp" && r["action"] == "call")
        .await;
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0]["agent_id"], "agent-42");
    assert_eq!(calls[0]["server"], "marketdata");
    assert_eq!(calls[1]["agent_id"], "agent-7");
    assert_eq!(calls[1]["outcome"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn forbidden_and_unknown_tools_get_the_same_error_and_tool_errors_are_results() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let (analyst, _) = connect(&cp, ANALYST_TOKEN).await;
    let forbidden = mcp_error(analyst.call_tool(call("execute_trade", json!({}))).await);
    let unknown = mcp_error(analyst.call_tool(call("launch_missiles", json!({}))).await);
    assert_eq!(forbidden.code, ErrorCode::INVALID_PARAMS);
    assert_eq!(forbidden.code, unknown.code);
    assert_eq!(forbidden.message, unknown.message);
    assert_eq!(forbidden.data.as_ref().unwrap()["code"], "forbidden");
    assert_eq!(unknown.data.as_ref().unwrap()["code"], "forbidden");
    let trace_id = forbidden.data.as_ref().unwrap()["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(cp.audit_record(&trace_id).await["outcome"], "denied_role");

    let (trader, _) = connect(&cp, TRADER_TOKEN).await;
    // The server's own refusal (an account it does not know) is a result.
    let result = trader
        .call_tool(call("read_positions", json!({ "account": "ACC-404" })))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_reaches_the_client_under_its_own_token() {
    let (_upstream, cp) = test_catalog().await;
    let (session, mut progress) = connect(&cp, TESTER_TOKEN).await;
    // The client stamps its own progress token on the request.
    let handle = session
        .peer()
        .send_request_with_option(
            ClientRequest::CallToolRequest(Request::new(call("progress", json!({})))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let response = handle.await_response().await.unwrap();
    let ServerResult::CallToolResult(result) = response else {
        panic!("unexpected {response:?}");
    };
    assert_eq!(
        result.content[0].as_text().unwrap().text,
        "progress token seen: true"
    );
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let p = tokio::time::timeout(Duration::from_secs(5), progress.recv())
            .await
            .expect("progress notification")
            .unwrap();
        seen.push(p);
    }
    assert!(seen.iter().all(|p| p.progress_token == token), "{seen:?}");
    // rmcp hands each notification to its own task, so the order may vary.
    seen.sort_by(|a, b| a.progress.total_cmp(&b.progress));
    assert_eq!(
        seen.iter().map(|p| p.progress).collect::<Vec<_>>(),
        [1.0, 2.0]
    );
    assert_eq!(seen[1].message.as_deref(), Some("step 2"));
    assert_eq!(seen[1].total, Some(2.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_cancellation_cancels_the_upstream_call() {
    let (upstream, cp) = test_catalog().await;
    let (session, _) = connect(&cp, TESTER_TOKEN).await;
    let handle = session
        .peer()
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(call("hang", json!({})))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.calls() == 0 {
        assert!(
            Instant::now() < deadline,
            "the call never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.cancel(Some("changed my mind".into())).await.unwrap();
    while upstream.cancellations() == 0 {
        assert!(
            Instant::now() < deadline,
            "the upstream never saw the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let record = loop {
        let found = cp.audit_records().into_iter().find(|r| r["tool"] == "hang");
        if let Some(record) = found {
            break record;
        }
        assert!(Instant::now() < deadline, "no audit record");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(record["outcome"], "cancelled");
    assert_eq!(record["front_door"], "mcp");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_timeout_is_a_clean_json_rpc_error() {
    let (upstream, cp) = test_catalog().await;
    let (session, _) = connect(&cp, TESTER_TOKEN).await;
    let error = mcp_error(session.call_tool(call("hang", json!({}))).await);
    assert_eq!(error.code, ErrorCode(-32011));
    assert_eq!(error.data.as_ref().unwrap()["code"], "upstream_timeout");
    let text = format!("{error:?}");
    assert!(
        !text.contains(&upstream.url) && !text.contains("127.0.0.1"),
        "{text}"
    );
    // The upstream was told to stop.
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.cancellations() == 0 {
        assert!(
            Instant::now() < deadline,
            "the timed-out call was not cancelled upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    session
        .peer()
        .send_request(ClientRequest::PingRequest(Default::default()))
        .await
        .unwrap();
}

/// A client that answers in its own name, with the channels of what it receives.
struct Answering {
    session: Session,
    events: mpsc::UnboundedReceiver<String>,
    progress: mpsc::UnboundedReceiver<ProgressNotificationParam>,
}

impl Answering {
    async fn connect(cp: &ControlPlane, name: &'static str) -> Self {
        let (progress, progress_rx) = mpsc::unbounded_channel();
        let (changed, events) = mpsc::unbounded_channel();
        let client = Client {
            progress,
            changed: Some(changed),
            answers: Some(name),
        };
        let session = client.serve(transport(cp, TESTER_TOKEN)).await.unwrap();
        let level = rmcp::model::SetLevelRequestParams::new(rmcp::model::LoggingLevel::Info);
        session.set_level(level).await.unwrap();
        Self {
            session,
            events,
            progress: progress_rx,
        }
    }

    /// The text of a successful call.
    async fn text(&self, tool: &str, arguments: Value) -> String {
        let answer = self.session.call_tool(call(tool, arguments)).await.unwrap();
        let text = answer.content[0].as_text().unwrap().text.clone();
        assert_eq!(answer.is_error, Some(false), "{text}");
        text
    }

    /// Call `progress` under a progress token of its own; the token.
    async fn progress_call(&self) -> rmcp::model::ProgressToken {
        let request = ClientRequest::CallToolRequest(Request::new(call("progress", json!({}))));
        let options = PeerRequestOptions::no_options();
        let handle = self
            .session
            .peer()
            .send_request_with_option(request, options);
        let handle = handle.await.unwrap();
        let token = handle.progress_token.clone();
        handle.await_response().await.unwrap();
        token
    }

    /// Wait for `count` progress notifications; every one must carry `token`.
    async fn expect_progress(&mut self, count: usize, token: &rmcp::model::ProgressToken) {
        for _ in 0..count {
            let next = tokio::time::timeout(Duration::from_secs(30), self.progress.recv());
            let seen = next.await.expect("progress notification").unwrap();
            assert_eq!(&seen.progress_token, token, "{seen:?}");
        }
    }

    /// Every event up to and including `last`.
    async fn events_until(&mut self, last: &str) -> Vec<String> {
        let mut events = Vec::new();
        while events.last().map(String::as_str) != Some(last) {
            let next = tokio::time::timeout(Duration::from_secs(30), self.events.recv());
            events.push(
                next.await
                    .unwrap_or_else(|_| panic!("{last}: {events:?}"))
                    .unwrap(),
            );
        }
        events
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstreams_requests_and_notifications_reach_only_the_calling_client() {
    // `auto` speaks 2026-07-28 to this server, which asks for input in its
    // result; the control plane asks the calling client on its session.
    only_the_caller_hears("auto").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_initialize_era_upstreams_requests_reach_only_the_calling_client() {
    // On 2025-11-25 the server sends its own requests on the call's stream,
    // and the control plane relays them by the call they name.
    only_the_caller_hears("2025-11-25").await;
}

async fn only_the_caller_hears(protocol: &str) {
    let upstream = test_upstream(0).await;
    let servers = format!(
        "  svc:\n    http: {{url: {}}}\n    protocol: \"{protocol}\"\n    forward_logs: true\n",
        upstream.url
    );
    let tools = "  ask: {server: svc}\n  chatty: {server: svc}\n  progress: {server: svc}\n  hang: {server: svc}\n";
    let cp = ControlPlane::start(&catalog(
        &servers,
        tools,
        &["ask", "chatty", "progress", "hang"],
    ));
    cp.wait_all_ready().await;
    // Two clients of one agent answering differently, sharing the control
    // plane's connection to the upstream: a message relayed to the wrong
    // client shows as the wrong answer, or as an event the bystander saw
    // before its own.
    let mut caller = Answering::connect(&cp, "the caller").await;
    let mut bystander = Answering::connect(&cp, "the bystander").await;

    // Logs, one call at a time: this upstream sends them on its standalone
    // stream, which names no call, so they are relayed only while a single
    // call is in flight (`upstream/relay.rs`).
    caller
        .text("chatty", json!({ "message": "the caller" }))
        .await;
    let caller_log = "log Info \"working for the caller\"";
    assert_eq!(caller.events_until(caller_log).await, [caller_log]);
    (bystander.text("chatty", json!({ "message": "the bystander" }))).await;
    let own_log = "log Info \"working for the bystander\"";
    assert_eq!(bystander.events_until(own_log).await, [own_log]);

    // Requests and progress while the bystander has a call in flight too.
    let holds: Vec<_> = (0..2)
        .map(|_| {
            let held = bystander.session.peer().clone();
            tokio::spawn(async move { held.call_tool(call("hang", json!({}))).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while upstream.calls() < 4 {
        assert!(Instant::now() < deadline, "the held calls never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Rounds: a relay that picks one of the calls in flight by the order
    // of a hash map would pick the right one every time only rarely.
    for _ in 0..5 {
        let sampled = caller.text("ask", json!({})).await;
        assert!(sampled.contains("42, sampled by the caller"), "{sampled}");
        let elicited = caller.text("ask", json!({ "message": "elicit" })).await;
        assert!(elicited.contains(r#""by":"the caller""#), "{elicited}");
        assert_eq!(
            caller.events_until("elicitation").await,
            ["sampling", "elicitation"]
        );
    }
    let token = caller.progress_call().await;
    caller.expect_progress(2, &token).await;
    // The bystander's own progress comes after all of the caller's: any
    // of the caller's that reached it would be in its channel first.
    let own = bystander.progress_call().await;
    bystander.expect_progress(2, &own).await;
    assert!(bystander.progress.try_recv().is_err());
    assert!(bystander.events.try_recv().is_err());
    assert!(caller.events.try_recv().is_err());
    holds.iter().for_each(|hold| hold.abort());

    // A client without the capability: the upstream gets the spec's error at once.
    let (progress, _) = mpsc::unbounded_channel();
    let plain = Client {
        progress,
        changed: None,
        answers: None,
    };
    let plain = plain.serve(transport(&cp, TESTER_TOKEN)).await.unwrap();
    for arguments in [json!({}), json!({ "message": "elicit" })] {
        let answer = plain.call_tool(call("ask", arguments));
        let answer = tokio::time::timeout(Duration::from_secs(10), answer);
        let answer = answer.await.expect("no hang").unwrap();
        assert_eq!(answer.is_error, Some(true));
        assert_eq!(
            answer.content[0].as_text().unwrap().text,
            "client refused: -32601"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn call_logs_reach_the_caller_only_where_the_catalog_allows() {
    let loud = test_upstream(0).await;
    let quiet = test_upstream(0).await;
    let servers = format!(
        "  loud:\n    http: {{url: {}}}\n    forward_logs: true\n  quiet:\n    http: {{url: {}}}\n",
        loud.url, quiet.url
    );
    let tools = "  chatty: {server: loud}\n  hushed: {server: quiet, upstream_name: chatty}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["chatty", "hushed"]));
    cp.wait_all_ready().await;
    let (session, mut messages) = watching(&cp, TESTER_TOKEN).await;
    session
        .set_level(rmcp::model::SetLevelRequestParams::new(
            rmcp::model::LoggingLevel::Info,
        ))
        .await
        .unwrap();
    session.call_tool(call("hushed", json!({}))).await.unwrap();
    session.call_tool(call("chatty", json!({}))).await.unwrap();
    // Every log message that reaches the client, up to the allowed call's
    // `working` (the hushed call ran first: its messages would be earlier).
    // (Generous: on a loaded machine, a compiler hogging both cores, the
    // message once did not come through within 10 s.)
    let mut logs = Vec::new();
    while !logs.iter().any(|log: &String| log.contains("working")) {
        let next = tokio::time::timeout(Duration::from_secs(30), messages.recv()).await;
        let message = next.expect("the allowed call's log message").unwrap();
        if message.starts_with("log") {
            logs.push(message);
        }
    }
    // Only the allowed server's message at or above the chosen level.
    assert_eq!(logs, ["log Info \"working\""]);
}

/// The reference server on 2026-07-28 writes a call's log messages and
/// progress and then its answer in one go: every one reaches the caller,
/// although the control plane reads the answer right after them and hands
/// each notification to a task of its own (rmcp does; see
/// `upstream/ordered.rs`).
#[tokio::test(flavor = "multi_thread")]
async fn notifications_sent_just_before_the_answer_all_reach_the_caller() {
    const ROUNDS: usize = 12;
    let (_server, port) = crate::reference::reference_server();
    let servers = format!(
        "  reference:\n    http: {{url: \"http://127.0.0.1:{port}/mcp\"}}\n    forward_logs: true\n"
    );
    let tools = "  logging: {server: reference, upstream_name: test_tool_with_logging}\n\
                 \x20 progress: {server: reference, upstream_name: test_tool_with_progress}\n";
    let cp = ControlPlane::start(&catalog(&servers, tools, &["logging", "progress"]));
    let ready = cp.wait_all_ready().await;
    assert_eq!(ready["servers"][0]["protocol"], "2026-07-28", "{ready}");
    let (progress, mut progressed) = mpsc::unbounded_channel();
    let (changed, mut events) = mpsc::unbounded_channel();
    let client = Client {
        progress,
        changed: Some(changed),
        answers: None,
    };
    let session = client.serve(transport(&cp, TESTER_TOKEN)).await.unwrap();
    let level = rmcp::model::SetLevelRequestParams::new(rmcp::model::LoggingLevel::Info);
    session.set_level(level).await.unwrap();
    // The client's own rmcp hands notifications to tasks too, so they may
    // come after the answer here; none may be lost.
    let wait = Duration::from_secs(10);
    for round in 0..ROUNDS {
        session.call_tool(call("logging", json!({}))).await.unwrap();
        for _ in 0..3 {
            let event = tokio::time::timeout(wait, events.recv()).await;
            let event = event.unwrap_or_else(|_| panic!("round {round}: a log message lost"));
            assert!(event.unwrap().starts_with("log Info"));
        }
        let request = ClientRequest::CallToolRequest(Request::new(call("progress", json!({}))));
        let handle = session
            .peer()
            .send_request_with_option(request, PeerRequestOptions::no_options());
        let handle = handle.await.unwrap();
        let token = handle.progress_token.clone();
        handle.await_response().await.unwrap();
        for _ in 0..3 {
            let step = tokio::time::timeout(wait, progressed.recv()).await;
            let step = step.unwrap_or_else(|_| panic!("round {round}: a progress report lost"));
            assert_eq!(step.unwrap().progress_token, token);
        }
    }
}
