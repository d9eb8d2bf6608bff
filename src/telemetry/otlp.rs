//! OpenTelemetry span export over OTLP (HTTP/protobuf).
//!
//! Spans are built from the audit record of each request, so there is one
//! place where a request's story is told: a `SERVER` span for the request
//! (its id is the span id of the request's trace context, its parent the
//! caller's span) and a `CLIENT` span for each request to an upstream (one,
//! or each attempt of a retried call, or each leg of a fan-out; its id is
//! the parent the upstream received in `traceparent`). Names and attributes follow OpenTelemetry's semantic
//! conventions for MCP and GenAI tool calls (`mcp.method.name`,
//! `gen_ai.tool.name`, `gen_ai.operation.name`). Export is batched on the
//! exporter's own thread; nothing on the request path waits for it.

use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor,
};

use crate::audit::{AuditRecord, Observer};
use crate::vocabulary::{Action, Outcome};

/// How often batched spans are sent.
const EXPORT_DELAY: Duration = Duration::from_millis(500);

pub struct SpanExport {
    processor: BatchSpanProcessor,
    scope: InstrumentationScope,
}

impl SpanExport {
    /// Export to the OTLP/HTTP collector at `endpoint` (`http://host:4318`).
    pub fn start(endpoint: &str) -> Result<Self, String> {
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .build()
            .map_err(|e| format!("OTLP exporter: {e}"))?;
        let batch = BatchConfigBuilder::default()
            .with_scheduled_delay(EXPORT_DELAY)
            .build();
        let mut processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch)
            .build();
        processor.set_resource(
            &Resource::builder()
                .with_service_name(env!("CARGO_PKG_NAME"))
                .build(),
        );
        let scope = InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Ok(Self { processor, scope })
    }

    /// The spans of one finished request.
    fn export(&self, record: &AuditRecord) {
        let trace_id = TraceId::from_bytes(record.trace.trace_id);
        let context = |span: [u8; 8]| {
            SpanContext::new(
                trace_id,
                SpanId::from_bytes(span),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            )
        };
        let method = method_name(record.action);
        let target = record.tool.as_deref().unwrap_or("");
        let name = if target.is_empty() {
            method.to_string()
        } else {
            format!("{method} {target}")
        };
        let mut attributes = vec![
            KeyValue::new("mcp.method.name", method),
            KeyValue::new("mcp.control_plane.outcome", record.outcome.as_str()),
            KeyValue::new("mcp.control_plane.front_door", record.front_door.as_str()),
            KeyValue::new(
                "deployment.environment.name",
                record.environment.to_string(),
            ),
        ];
        if record.action == Action::Call {
            attributes.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
            attributes.push(KeyValue::new("gen_ai.tool.name", target.to_string()));
        }
        if let Some(agent) = &record.agent_id {
            attributes.push(KeyValue::new(
                "mcp.control_plane.agent_id",
                agent.to_string(),
            ));
        }
        if let Some(server) = &record.server {
            attributes.push(KeyValue::new(
                "mcp.control_plane.server",
                server.to_string(),
            ));
        }
        let status = match record.outcome {
            Outcome::Ok => Status::Ok,
            other => {
                attributes.push(KeyValue::new("error.type", other.as_str()));
                Status::error(other.as_str())
            }
        };
        let end = record.time + Duration::from_secs_f64(record.latency_ms.max(0.0) / 1000.0);
        let server = SpanData {
            span_context: context(record.trace.span_id),
            parent_span_id: record
                .trace
                .parent_span_id
                .map_or(SpanId::INVALID, SpanId::from_bytes),
            parent_span_is_remote: record.trace.parent_span_id.is_some(),
            span_kind: SpanKind::Server,
            name: name.clone().into(),
            start_time: record.time,
            end_time: end,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        };
        self.processor.on_end(server);
        // One client span per request that left for an upstream: one, or
        // each attempt, or each leg of a fan-out.
        for leg in &record.legs {
            let Some(upstream) = leg.upstream else {
                continue;
            };
            let attributes = vec![
                KeyValue::new("mcp.method.name", method),
                KeyValue::new("mcp.control_plane.server", leg.server.to_string()),
                KeyValue::new("gen_ai.tool.name", leg.upstream_tool.to_string()),
            ];
            let status = match leg.outcome {
                Outcome::Ok => Status::Ok,
                other => Status::error(other.as_str()),
            };
            self.processor.on_end(SpanData {
                span_context: context(upstream.span_id),
                parent_span_id: SpanId::from_bytes(record.trace.span_id),
                parent_span_is_remote: false,
                span_kind: SpanKind::Client,
                name: name.clone().into(),
                start_time: upstream.started,
                end_time: upstream.started + Duration::from_secs_f64(upstream.seconds),
                attributes,
                dropped_attributes_count: 0,
                events: SpanEvents::default(),
                links: SpanLinks::default(),
                status,
                instrumentation_scope: self.scope.clone(),
            });
        }
    }

    /// Send what is batched (at shutdown).
    fn shutdown(&self) {
        let _ = self.processor.shutdown();
    }
}

impl Observer for SpanExport {
    fn observe(&self, record: &AuditRecord) {
        self.export(record);
    }

    fn close(&self) {
        self.shutdown();
    }
}

/// The MCP method a request corresponds to.
fn method_name(action: Action) -> &'static str {
    match action {
        Action::Discovery => "tools/list",
        Action::Call => "tools/call",
        Action::ReadResource => "resources/read",
        Action::GetPrompt => "prompts/get",
        Action::Complete => "completion/complete",
        Action::Subscribe => "resources/subscribe",
        Action::Unsubscribe => "resources/unsubscribe",
        Action::Connect => "connect",
        Action::AdminQuery => "admin/audit",
        Action::Task => "tasks",
        Action::Quarantine => "quarantine",
        Action::Approve => "approve",
        Action::SignIn => "ui/login",
    }
}
