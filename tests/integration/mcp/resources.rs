//! Prompts, resources, completions, subscriptions and list changes through
//! `/mcp`, per role.

use super::*;

/// The next resource update a watching session hears (other notifications
/// skipped), within 10 s.
async fn next_update(updates: &mut mpsc::UnboundedReceiver<String>) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), updates.recv())
            .await
            .expect("resource update")
            .unwrap();
        if message.starts_with("updated") {
            return message;
        }
    }
}

/// The test upstream's tool `tool` and its resources (set `docs`, every
/// `test://` URI), both granted to the tester.
fn docs_catalog(upstream_url: &str, tool: &str) -> String {
    let servers = format!("  svc:\n    http: {{url: {upstream_url}}}\n");
    catalog(&servers, &format!("  {tool}: {{server: svc}}\n"), &[tool])
        .replace(
            "tools:\n",
            "resources:\n  docs: {server: svc, uri_prefix: \"test://\"}\ntools:\n",
        )
        .replace(
            &format!("tester: [{tool}]"),
            &format!("tester: {{tools: [{tool}], resources: [docs]}}"),
        )
}

#[tokio::test(flavor = "multi_thread")]
async fn resources_prompts_and_completions_follow_each_roles_grants() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let (analyst, _) = connect(&cp, ANALYST_TOKEN).await;
    let (trader, _) = connect(&cp, TRADER_TOKEN).await;

    let uris = |resources: Vec<rmcp::model::Resource>| {
        resources.into_iter().map(|r| r.uri).collect::<Vec<_>>()
    };
    assert_eq!(
        uris(analyst.list_all_resources().await.unwrap()),
        ["research://notes/daily"]
    );
    let mut trader_uris = uris(trader.list_all_resources().await.unwrap());
    trader_uris.sort();
    assert_eq!(
        trader_uris,
        ["research://notes/daily", "research://restricted/limits"]
    );
    let templates = analyst.list_all_resource_templates().await.unwrap();
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].uri_template, "research://desks/{desk}/summary");
    assert!(
        trader
            .list_all_resource_templates()
            .await
            .unwrap()
            .is_empty()
    );

    let summary = read(&analyst, "research://desks/fx/summary").await.unwrap();
    let text = serde_json::to_string(&summary).unwrap();
    assert!(text.contains("Summary for the fx desk"), "{text}");
    // Outside the role (a narrower set carves it out), unknown, or an
    // address: the same refusal.
    let restricted = mcp_error(read(&analyst, "research://restricted/limits").await);
    let unknown = mcp_error(read(&analyst, "research://nowhere").await);
    let address = mcp_error(read(&analyst, "http://127.0.0.1:9/secret").await);
    for error in [&restricted, &unknown, &address] {
        assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
        assert_eq!(error.message, restricted.message);
    }
    // Byte for byte but the trace id and the URI asked for (SEP-2164).
    let alike = |error: &rmcp::ErrorData| {
        let mut data = error.data.clone().unwrap_or_default();
        data["trace_id"].take();
        data["uri"].take();
        (error.code, error.message.clone(), data)
    };
    assert_eq!(alike(&unknown), alike(&restricted));
    assert_eq!(alike(&address), alike(&restricted));
    let limits = read(&trader, "research://restricted/limits").await.unwrap();
    assert!(serde_json::to_string(&limits).unwrap().contains("Limits:"));

    let prompts = analyst.list_all_prompts().await.unwrap();
    assert_eq!(prompts.len(), 1);
    assert_eq!(prompts[0].name, "desk_briefing");
    assert!(trader.list_all_prompts().await.unwrap().is_empty());
    let arguments = json!({ "desk": "equities" }).as_object().unwrap().clone();
    let prompt = analyst
        .get_prompt(
            rmcp::model::GetPromptRequestParams::new("desk_briefing")
                .with_arguments(arguments.clone()),
        )
        .await
        .unwrap();
    assert!(
        serde_json::to_string(&prompt)
            .unwrap()
            .contains("briefing for the equities desk")
    );
    let refused = mcp_error(
        trader
            .get_prompt(
                rmcp::model::GetPromptRequestParams::new("desk_briefing").with_arguments(arguments),
            )
            .await,
    );
    assert_eq!(refused.code, ErrorCode::INVALID_PARAMS);
    // An unknown prompt gets exactly the forbidden one's answer.
    let unknown = mcp_error(
        trader
            .get_prompt(rmcp::model::GetPromptRequestParams::new("no_such_prompt"))
            .await,
    );
    assert_eq!(alike(&unknown), alike(&refused));
    assert!(refused.message.contains("prompt"), "{}", refused.message);

    let desks = analyst
        .complete_prompt_simple("desk_briefing", "desk", "e")
        .await
        .unwrap();
    assert_eq!(desks, ["equities"]);
    let desks = analyst
        .complete_resource_simple("research://desks/{desk}/summary", "desk", "f")
        .await
        .unwrap();
    assert_eq!(desks, ["fixed-income", "fx"]);
    let refused = mcp_error(
        trader
            .complete_prompt_simple("desk_briefing", "desk", "e")
            .await,
    );
    assert_eq!(refused.code, ErrorCode::INVALID_PARAMS);

    let actions = cp
        .audit_matching(3, |r| {
            r["action"] == "read_resource" && r["outcome"] == "denied_role"
        })
        .await;
    assert_eq!(actions.len(), 3, "{actions:?}");
}

// `resources/subscribe` belongs to the initialize-based revisions tested here.
#[allow(deprecated)]
#[tokio::test(flavor = "multi_thread")]
async fn resource_updates_reach_only_subscribed_sessions_over_one_upstream_subscription() {
    use crate::common::upstream::DOC_URI;
    let upstream = test_upstream(0).await;
    let yaml = docs_catalog(&upstream.url, "touch");
    let cp = ControlPlane::start(&yaml);
    cp.wait_all_ready().await;
    let (first, mut first_updates) = watching(&cp, TESTER_TOKEN).await;
    let (second, mut second_updates) = watching(&cp, TESTER_TOKEN).await;
    let (bystander, mut bystander_updates) = watching(&cp, TESTER_TOKEN).await;
    let uris: Vec<_> = first
        .list_all_resources()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.uri)
        .collect();
    assert_eq!(uris, [DOC_URI]);
    for session in [&first, &second] {
        session
            .subscribe(rmcp::model::SubscribeRequestParams::new(DOC_URI))
            .await
            .unwrap();
    }
    assert_eq!(
        upstream.subscriptions(),
        1,
        "one upstream subscription for both sessions"
    );
    // A session without the grant cannot subscribe.
    let (outsider, _) = watching(&cp, ANALYST_TOKEN).await;
    let refused = mcp_error(
        outsider
            .subscribe(rmcp::model::SubscribeRequestParams::new(DOC_URI))
            .await,
    );
    assert_eq!(refused.code, ErrorCode::INVALID_PARAMS);

    bystander.call_tool(call("touch", json!({}))).await.unwrap();
    for updates in [&mut first_updates, &mut second_updates] {
        assert_eq!(next_update(updates).await, format!("updated {DOC_URI}"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(message) = bystander_updates.try_recv() {
        assert!(
            !message.starts_with("updated"),
            "an unsubscribed session got {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_whose_view_changes_hear_tools_list_changed() {
    let port = crate::common::free_port();
    let servers = format!("  svc:\n    http: {{url: \"http://127.0.0.1:{port}/mcp\"}}\n");
    let cp = ControlPlane::start(&catalog(&servers, "  echo: {server: svc}\n", &["echo"]));
    cp.wait_readyz("svc down", |b| b["status"] == "ready").await;
    let (tester, mut tester_changes) = watching(&cp, TESTER_TOKEN).await;
    let (nobody, mut nobody_changes) = watching(&cp, ANALYST_TOKEN).await;
    assert!(tool_names(&tester).await.is_empty(), "the server is down");

    let _upstream = test_upstream(port).await;
    let change = tokio::time::timeout(Duration::from_secs(30), tester_changes.recv())
        .await
        .expect("tools/list_changed")
        .unwrap();
    assert_eq!(change, "tools", "{}", cp.stderr_text());
    assert_eq!(tool_names(&tester).await, ["echo"]);
    // The other role sees nothing of that server: it is not told anything.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(nobody_changes.try_recv().is_err());
    assert!(tool_names(&nobody).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn stateless_clients_hear_list_changes_through_subscriptions_listen() {
    let port = crate::common::free_port();
    let servers = format!("  svc:\n    http: {{url: \"http://127.0.0.1:{port}/mcp\"}}\n");
    let cp = ControlPlane::start(&catalog(&servers, "  echo: {server: svc}\n", &["echo"]));
    cp.wait_readyz("first attempt", |b| b["status"] == "ready")
        .await;
    let filter = || {
        rmcp::model::SubscriptionFilter::builder()
            .tools_list_changed()
            .build()
    };
    let tester = connect_stateless(&cp, TESTER_TOKEN).await;
    let mut changes = tester
        .peer()
        .listen(filter())
        .await
        .expect("subscriptions/listen");
    let nobody = connect_stateless(&cp, ANALYST_TOKEN).await;
    let mut nobody_changes = nobody.peer().listen(filter()).await.unwrap();

    let _upstream = test_upstream(port).await;
    let notification = tokio::time::timeout(Duration::from_secs(30), changes.next())
        .await
        .expect("a notification on the listen stream")
        .unwrap();
    assert!(
        matches!(
            notification,
            Some(rmcp::model::ServerNotification::ToolListChangedNotification(_))
        ),
        "{notification:?}"
    );
    assert_eq!(tool_names(&tester).await, ["echo"]);
    // A role that sees nothing of that server hears nothing.
    let quiet = tokio::time::timeout(Duration::from_millis(500), nobody_changes.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_uris_are_normalized_before_they_are_matched_and_sent() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let (analyst, _) = connect(&cp, ANALYST_TOKEN).await;
    // Dot segments, spelled or escaped, cannot leave the analyst's notes:
    // the normalized URI is what is authorized and what the server gets.
    for uri in [
        "research://notes/../restricted/limits",
        "research://notes/%2e%2e/restricted/limits",
        "research://notes/./../restricted/limits",
        "RESEARCH://NOTES/a/../../restricted/limits",
    ] {
        let answer = read(&analyst, uri).await;
        assert!(
            !format!("{answer:?}").contains("Limits:"),
            "{uri}: {answer:?}"
        );
        let records = cp
            .audit_matching(1, |r| r["action"] == "read_resource" && r["tool"] == uri)
            .await;
        assert_eq!(
            records[0]["upstream_tool"], "research://notes/restricted/limits",
            "{uri}"
        );
    }
    let daily = read(&analyst, "research://notes/x/../daily").await.unwrap();
    assert!(format!("{daily:?}").contains("research://notes/daily"));
    // What would still mean different things to different servers is refused.
    for uri in [
        "research://notes/..%2frestricted/limits",
        "research://notes/..\\restricted\\limits",
        "research://notes/%zz",
    ] {
        let error = mcp_error(read(&analyst, uri).await);
        assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{uri}");
        let records = cp
            .audit_matching(1, |r| r["action"] == "read_resource" && r["tool"] == uri)
            .await;
        assert_eq!(records[0]["outcome"], "bad_request", "{uri}");
    }
    let subscribe = analyst
        .subscribe(rmcp::model::SubscribeRequestParams::new(
            "research://notes/..%2Frestricted/limits",
        ))
        .await;
    assert_eq!(mcp_error(subscribe).code, ErrorCode::INVALID_PARAMS);
}

#[tokio::test]
async fn a_forwarded_resource_is_never_public_to_caches_and_keeps_its_freshness() {
    use crate::common::upstream::DOC_URI;
    let upstream = test_upstream(0).await;
    let yaml = docs_catalog(&upstream.url, "echo");
    let cp = ControlPlane::start(&yaml);
    cp.wait_all_ready().await;
    // The upstream says `public` for a minute; whether an agent may read it
    // is decided per agent here, so a shared cache must not keep it.
    let stateless = connect_stateless(&cp, TESTER_TOKEN).await;
    let result = stateless
        .read_resource(rmcp::model::ReadResourceRequestParams::new(DOC_URI))
        .await
        .unwrap();
    assert_eq!(result.cache_scope, Some(rmcp::model::CacheScope::Private));
    assert_eq!(result.ttl_ms, Some(60_000));
    // The server named itself in the result's `_meta`: the agent never
    // learns which server answered.
    let text = serde_json::to_string(&result).unwrap();
    assert!(!text.contains("secret-upstream"), "{text}");
}

// `resources/subscribe` belongs to the initialize-based revisions tested here.
#[allow(deprecated)]
#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_are_renewed_when_the_upstream_comes_back() {
    use crate::common::free_port;
    use crate::common::upstream::DOC_URI;
    let port = free_port();
    let upstream = test_upstream(port).await;
    let yaml = docs_catalog(&upstream.url, "touch");
    let cp = ControlPlane::start(&yaml);
    cp.wait_all_ready().await;
    let (session, mut updates) = watching(&cp, TESTER_TOKEN).await;
    session
        .subscribe(rmcp::model::SubscribeRequestParams::new(DOC_URI))
        .await
        .unwrap();
    assert_eq!(upstream.subscriptions(), 1);

    // The server goes away (and a call notices), then comes back empty.
    drop(upstream);
    let failed = session.call_tool(call("touch", json!({}))).await;
    assert!(failed.is_err() || failed.unwrap().is_error == Some(true));
    let upstream = test_upstream(port).await;
    // Renewed on the new session: by its listen stream (2026-07-28).
    crate::live::wait_for("the renewed subscription", async || {
        upstream.subscriptions() == 1
    })
    .await;

    // The session hears of updates from the new session, without asking again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let touched = loop {
        match session.call_tool(call("touch", json!({}))).await {
            Ok(result) if result.is_error != Some(true) => break result,
            other => assert!(std::time::Instant::now() < deadline, "{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(touched.is_error, Some(true));
    assert_eq!(
        next_update(&mut updates).await,
        format!("updated {DOC_URI}")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stateless_clients_hear_resource_updates_on_their_listen_stream() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&docs_catalog(&upstream.url, "touch"));
    cp.wait_all_ready().await;
    let tester = connect_stateless(&cp, TESTER_TOKEN).await;
    let filter = rmcp::model::SubscriptionFilter::builder()
        .resource_subscription(crate::common::upstream::DOC_URI)
        .resource_subscription("secret://vault/keys")
        .build();
    let mut updates = tester
        .peer()
        .listen(filter)
        .await
        .expect("subscriptions/listen");
    // The allowed URI is subscribed upstream; the other is refused and recorded.
    let refused = cp
        .audit_matching(1, |r| {
            r["action"] == "subscribe" && r["outcome"] == "denied_role"
        })
        .await;
    assert_eq!(refused[0]["tool"], "secret://vault/keys");
    let subscribed = cp
        .audit_matching(1, |r| r["action"] == "subscribe" && r["outcome"] == "ok")
        .await;
    assert_eq!(subscribed[0]["tool"], crate::common::upstream::DOC_URI);

    tester.call_tool(call("touch", json!({}))).await.unwrap();
    let update = tokio::time::timeout(Duration::from_secs(10), updates.next())
        .await
        .expect("an update on the listen stream")
        .unwrap();
    let Some(rmcp::model::ServerNotification::ResourceUpdatedNotification(update)) = update else {
        panic!("not a resource update: {update:?}");
    };
    assert_eq!(update.params.uri, crate::common::upstream::DOC_URI);
    // Closing the stream ends its subscription upstream (its last subscriber).
    drop(updates);
    tester.cancel().await.unwrap();
    // (The test server has no `resources/unsubscribe`: its refusal is recorded.)
    let ended = cp.audit_matching(1, |r| r["action"] == "unsubscribe").await;
    assert_eq!(ended[0]["tool"], crate::common::upstream::DOC_URI);
}

/// Issue 31: a URI that would tell the agent where something lives is
/// refused at the role check, even inside a granted set, and the server is
/// never asked.
#[tokio::test(flavor = "multi_thread")]
async fn a_uri_that_reveals_an_address_is_refused_inside_a_granted_set() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&docs_catalog(&upstream.url, "echo"));
    cp.wait_all_ready().await;
    let (tester, _) = connect(&cp, TESTER_TOKEN).await;
    // The granted set's own URI is read: the positive control.
    assert!(read(&tester, "test://doc").await.is_ok());
    let asked = upstream.seen().len();
    for uri in [
        "test://10.0.0.7/doc",
        "test://[fd00::1]/doc",
        "test://doc.internal:8443/doc",
        "test://admin@doc/doc",
    ] {
        let error = mcp_error(read(&tester, uri).await);
        assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{uri}");
        let records = cp
            .audit_matching(1, |r| r["action"] == "read_resource" && r["tool"] == uri)
            .await;
        assert_eq!(records.len(), 1, "{uri}");
        assert_eq!(records[0]["outcome"], "denied_role", "{uri}");
    }
    assert_eq!(upstream.seen().len(), asked, "the server was asked");
}
