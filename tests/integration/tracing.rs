//! One W3C trace id from the agent, through the control plane, to the MCP
//! server and back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::{Value, json};

use crate::common::upstream::test_upstream;
use crate::common::{ANALYST_TOKEN, ControlPlane, TESTER_TOKEN, echo_catalog};

const CALLER_SPAN: &str = "00f067aa0ba902b7";
const TRACESTATE: &str = "congo=t61rcWkgMzE";

fn traceparent(trace: &str) -> String {
    format!("00-{trace}-{CALLER_SPAN}-01")
}

/// `POST /invoke` as an agent whose span `CALLER_SPAN` of `trace` calls.
async fn invoke_traced(
    cp: &ControlPlane,
    token: &str,
    trace: &str,
    body: Value,
) -> reqwest::Response {
    cp.http
        .post(cp.url("/invoke"))
        .bearer_auth(token)
        .header("traceparent", traceparent(trace))
        .header("tracestate", TRACESTATE)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_http_upstream_gets_the_callers_trace_with_the_control_planes_span_as_parent() {
    let upstream = test_upstream(0).await;
    let cp = ControlPlane::start(&echo_catalog(&upstream.url));
    cp.wait_all_ready().await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = invoke_traced(
        &cp,
        TESTER_TOKEN,
        trace,
        json!({"action": "echo", "payload": {}}),
    )
    .await;
    let returned = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["trace_id"], trace);
    assert!(returned.starts_with(&format!("00-{trace}-")), "{returned}");

    let record = cp.audit_record(trace).await;
    let span = record["span_id"].as_str().unwrap().to_string();
    assert_ne!(span, CALLER_SPAN, "the control plane has its own span");
    assert_eq!(returned, format!("00-{trace}-{span}-01"));
    // The upstream's parent is the control plane's span for that call.
    let upstream_span = record["upstream_span_id"].as_str().unwrap();
    assert_ne!(upstream_span, span);
    let call = upstream
        .seen()
        .into_iter()
        .find(|s| s.method == "tools/call")
        .unwrap();
    let expected = format!("00-{trace}-{upstream_span}-01");
    assert_eq!(call.traceparent_header.as_deref(), Some(expected.as_str()));
    assert_eq!(call.traceparent_meta.as_deref(), Some(expected.as_str()));
    // The caller's tracestate travels along unchanged.
    assert_eq!(call.tracestate_header.as_deref(), Some(TRACESTATE));
}

/// An OTLP/HTTP receiver: the spans it was sent.
async fn otlp_receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let kept = spans.clone();
    let handler = move |body: axum::body::Bytes| {
        let spans = kept.clone();
        async move {
            let request = ExportTraceServiceRequest::decode(body).unwrap();
            for resource in request.resource_spans {
                for scope in resource.scope_spans {
                    spans.lock().unwrap().extend(scope.spans);
                }
            }
            (
                [("content-type", "application/x-protobuf")],
                Vec::<u8>::new(),
            )
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().route("/v1/traces", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, spans)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| match &a.value.as_ref()?.value {
            Some(any_value::Value::StringValue(text)) => Some(text.clone()),
            _ => None,
        })
}

#[tokio::test]
async fn spans_are_exported_over_otlp_with_parent_and_child_links() {
    let (collector, spans) = otlp_receiver().await;
    let upstream = test_upstream(0).await;
    let catalog = format!(
        "{}telemetry:\n  otlp_endpoint: \"{collector}\"\n",
        echo_catalog(&upstream.url)
    );
    let cp = ControlPlane::start(&catalog);
    cp.wait_all_ready().await;
    let trace = "6bf92f3577b34da6a3ce929d0e0e4736";
    let response = invoke_traced(
        &cp,
        TESTER_TOKEN,
        trace,
        json!({"action": "echo", "payload": {}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let record = cp.audit_record(trace).await;
    let trace_bytes = hex::decode(trace).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let (server, client) = loop {
        let ours: Vec<Span> = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_bytes)
            .cloned()
            .collect();
        let kind = |k: SpanKind| ours.iter().find(|s| s.kind == k as i32).cloned();
        if let (Some(server), Some(client)) = (kind(SpanKind::Server), kind(SpanKind::Client)) {
            break (server, client);
        }
        assert!(Instant::now() < deadline, "spans never arrived: {ours:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        hex::encode(&server.span_id),
        record["span_id"].as_str().unwrap()
    );
    assert_eq!(hex::encode(&server.parent_span_id), CALLER_SPAN);
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(
        hex::encode(&client.span_id),
        record["upstream_span_id"].as_str().unwrap()
    );
    assert_eq!(server.name, "tools/call echo");
    assert_eq!(
        attribute(&server, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(
        attribute(&server, "gen_ai.tool.name").as_deref(),
        Some("echo")
    );
    assert_eq!(
        attribute(&server, "gen_ai.operation.name").as_deref(),
        Some("execute_tool")
    );
    assert_eq!(
        attribute(&client, "mcp.control_plane.server").as_deref(),
        Some("testsrv")
    );
}

#[tokio::test]
async fn a_stdio_example_server_logs_the_trace_id_it_received() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let response = invoke_traced(
        &cp,
        ANALYST_TOKEN,
        trace,
        json!({"action": "read_positions", "payload": {"account": "ACC-001"}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    // The server's own log line, relayed from its stderr.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logged = cp.stderr_text().lines().any(|line| {
            serde_json::from_str::<Value>(line).is_ok_and(|v| {
                let text = |m: &Value| m.as_str().is_some_and(|m| m.contains(trace));
                v["target"] == "upstream_stderr"
                    && (text(&v["fields"]["message"]) || text(&v["message"]))
            })
        });
        if logged {
            break;
        }
        assert!(Instant::now() < deadline, "{}", cp.stderr_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
