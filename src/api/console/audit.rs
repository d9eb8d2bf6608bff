//! The audit trail in the console: a search (by agent, tool, outcome, time
//! range and trace id, through the same query and recording as
//! `/admin/audit`, paginated) and one trace's records as a timeline
//! (discovery, calls, fan-out legs, denials with their reasons).

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::Value;

use super::pages::{escape, page};
use super::{App, session};
use crate::audit::query::FilterSpec;
use crate::vocabulary::FrontDoor;

/// `GET /ui/audit?agent_id=&tool=&outcome=&since=&until=&trace_id=&cursor=`
pub async fn search(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Query(spec): Query<FilterSpec>,
) -> Response {
    let Some(session) = session(&app, &headers) else {
        return Redirect::to("/ui/").into_response();
    };
    let asked = raw.unwrap_or_default();
    let fields = [
        ("agent_id", spec.agent_id.clone()),
        ("tool", spec.tool.clone()),
        ("outcome", spec.outcome.clone()),
        ("since", spec.since.clone()),
        ("until", spec.until.clone()),
        ("trace_id", spec.trace_id.clone()),
    ];
    // An empty field of the form is no filter.
    let blank = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    let limited = FilterSpec {
        trace_id: blank(spec.trace_id),
        agent_id: blank(spec.agent_id),
        tool: blank(spec.tool),
        outcome: blank(spec.outcome),
        since: blank(spec.since),
        until: blank(spec.until),
        limit: Some(spec.limit.unwrap_or(50).min(200)),
        cursor: blank(spec.cursor),
    };
    let ctx = super::super::request_context(&headers, FrontDoor::Rest);
    let page_of = app
        .pipeline
        .read_audit_as(&ctx, session.admin.clone(), &asked, limited.filter())
        .await;
    let mut body = String::from(
        "<h2>Audit trail</h2><form method=\"get\" action=\"/ui/audit\" class=\"filters\">",
    );
    for (name, value) in &fields {
        let _ = write!(
            body,
            "<label for=\"{name}\">{name}</label><input id=\"{name}\" name=\"{name}\" value=\"{}\">",
            escape(value.as_deref().unwrap_or(""))
        );
    }
    body.push_str("<button type=\"submit\">Search</button></form>");
    match page_of {
        Err(error) => {
            let _ = write!(
                body,
                "<p role=\"alert\" class=\"problem\">{}</p>",
                escape(&error.to_string())
            );
        }
        Ok(found) => {
            body.push_str("<table id=\"records\"><thead><tr><th scope=\"col\">Time</th><th scope=\"col\">Trace</th><th scope=\"col\">Agent</th><th scope=\"col\">Action</th><th scope=\"col\">Tool</th><th scope=\"col\">Outcome</th><th scope=\"col\">ms</th><th scope=\"col\">Reasons</th></tr></thead><tbody>");
            for record in &found.records {
                let text = |field: &str| escape(record[field].as_str().unwrap_or(""));
                let trace = text("trace_id");
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td><a href=\"/ui/trace/{trace}\">{trace}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td></tr>",
                    text("time"),
                    text("agent_id"),
                    text("action"),
                    text("tool"),
                    text("outcome"),
                    record["latency_ms"].as_f64().unwrap_or(0.0),
                    escape(&reasons(record)),
                );
            }
            body.push_str("</tbody></table>");
            if let Some(cursor) = &found.next_cursor {
                let mut next: Vec<(String, String)> = url::form_urlencoded::parse(asked.as_bytes())
                    .into_owned()
                    .filter(|(k, _)| k != "cursor")
                    .collect();
                next.push(("cursor".into(), cursor.clone()));
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(next)
                    .finish();
                let _ = write!(
                    body,
                    "<p><a rel=\"next\" href=\"/ui/audit?{}\">Next page</a></p>",
                    escape(&query)
                );
            }
        }
    }
    body.push_str("<section aria-labelledby=\"live\"><h3 id=\"live\">Live</h3><ol id=\"tail\" aria-live=\"polite\"></ol></section><script src=\"/ui/assets/console.js\"></script>");
    Html(page(
        "Audit trail",
        Some((&session.admin, &session.csrf)),
        &body,
    ))
    .into_response()
}

/// A record's reasons as one line (stores keep a list; the log a string).
fn reasons(record: &Value) -> String {
    match &record["reasons"] {
        Value::Array(items) => (items.iter().filter_map(Value::as_str))
            .collect::<Vec<_>>()
            .join("; "),
        Value::String(text) => text.clone(),
        _ => String::new(),
    }
}

/// `GET /ui/trace/{trace_id}`: every record of one trace, in order.
pub async fn trace(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(trace_id): Path<String>,
) -> Response {
    let Some(session) = session(&app, &headers) else {
        return Redirect::to("/ui/").into_response();
    };
    let spec = FilterSpec {
        trace_id: Some(trace_id.clone()),
        limit: Some(500),
        ..FilterSpec::default()
    };
    let ctx = super::super::request_context(&headers, FrontDoor::Rest);
    let asked = format!("trace_id={trace_id}");
    let found = app
        .pipeline
        .read_audit_as(&ctx, session.admin.clone(), &asked, spec.filter())
        .await;
    let mut body = format!("<h2>Trace <code>{}</code></h2>", escape(&trace_id));
    match found {
        Err(error) => {
            let _ = write!(
                body,
                "<p role=\"alert\" class=\"problem\">{}</p>",
                escape(&error.to_string())
            );
        }
        Ok(found) if found.records.is_empty() => body.push_str("<p>No records of this trace.</p>"),
        Ok(found) => {
            body.push_str(&super::timeline::axis(&found.records));
            body.push_str("<ol id=\"timeline\" class=\"timeline\">");
            for record in &found.records {
                let text = |field: &str| escape(record[field].as_str().unwrap_or(""));
                let _ = write!(
                    body,
                    "<li data-outcome=\"{outcome}\"><time>{}</time> <strong>{}</strong> {} by {} at {}: <span class=\"outcome\">{outcome}</span> in {:.1} ms",
                    text("time"),
                    text("action"),
                    text("tool"),
                    text("agent_id"),
                    text("server"),
                    record["latency_ms"].as_f64().unwrap_or(0.0),
                    outcome = text("outcome"),
                );
                let why = reasons(record);
                if !why.is_empty() {
                    let _ = write!(body, "<p class=\"reasons\">{}</p>", escape(&why));
                }
                if let Some(legs) = record["legs"].as_array().filter(|legs| !legs.is_empty()) {
                    body.push_str("<ul class=\"legs\">");
                    for leg in legs {
                        let text = |field: &str| escape(leg[field].as_str().unwrap_or(""));
                        let _ = write!(
                            body,
                            "<li>{} attempt {}: {} in {:.1} ms</li>",
                            text("server"),
                            leg["attempt"].as_u64().unwrap_or(1),
                            text("outcome"),
                            leg["latency_ms"].as_f64().unwrap_or(0.0),
                        );
                    }
                    body.push_str("</ul>");
                }
                body.push_str("</li>");
            }
            body.push_str("</ol>");
        }
    }
    Html(page("Trace", Some((&session.admin, &session.csrf)), &body)).into_response()
}
