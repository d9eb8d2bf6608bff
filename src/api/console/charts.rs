//! Charts of the last hour, drawn from the audit store as inline SVG (no
//! charting service, no script): calls per minute by outcome, and the
//! p50 and p99 latency of each tool. At most [`MAX_RECORDS`] records are
//! read (the newest hour's first ones beyond are left out, and the page
//! says so).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use humantime_serde::re::humantime;
use serde_json::Value;

use super::pages::{escape, page};
use super::timeline::epoch_ms;
use super::{App, session};
use crate::audit::query::{FilterSpec, MAX_LIMIT};
use crate::vocabulary::FrontDoor;

/// The most records one view of the charts reads.
pub const MAX_RECORDS: usize = 20 * MAX_LIMIT;
const MINUTES: usize = 60;
/// Series colours (readable on white), cycled over outcomes.
const PALETTE: [&str; 6] = [
    "#0a5d00", "#a00000", "#12355b", "#b35c00", "#6a1b9a", "#555555",
];

/// `GET /ui/charts`
pub async fn charts(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(session) = session(&app, &headers) else {
        return Redirect::to("/ui/").into_response();
    };
    let since = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(3600))
        .to_string();
    let ctx = super::super::request_context(&headers, FrontDoor::Rest);
    let spec = |cursor: Option<String>| FilterSpec {
        since: Some(since.clone()),
        limit: Some(MAX_LIMIT),
        cursor,
        ..FilterSpec::default()
    };
    // The read is recorded once, as the admin's; the pages after the first
    // continue it.
    let mut found = app
        .pipeline
        .read_audit_as(
            &ctx,
            session.admin.clone(),
            "ui/charts",
            spec(None).filter(),
        )
        .await;
    let mut records: Vec<Value> = Vec::new();
    let mut truncated = false;
    while let Ok(page) = found {
        records.extend(page.records);
        let (Some(cursor), Some(store)) = (page.next_cursor, app.audit.store()) else {
            break;
        };
        if records.len() >= MAX_RECORDS {
            truncated = true;
            break;
        }
        let next = spec(Some(cursor))
            .filter()
            .map_err(crate::pipeline::PipelineError::InvalidRequest);
        found = match next {
            Ok(filter) => store
                .query(&filter)
                .await
                .map_err(crate::pipeline::PipelineError::InvalidRequest),
            Err(error) => Err(error),
        };
    }
    let calls: Vec<&Value> = records.iter().filter(|r| r["action"] == "call").collect();
    let mut body = String::from("<h2>The last hour</h2>");
    if truncated {
        let _ = write!(
            body,
            "<p>Only the first {MAX_RECORDS} records of the hour are drawn.</p>"
        );
    }
    body.push_str(&per_minute(&calls));
    body.push_str(&latencies(&calls));
    Html(page("Charts", Some((&session.admin, &session.csrf)), &body)).into_response()
}

/// Calls per minute of the last hour, stacked by outcome.
fn per_minute(calls: &[&Value]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0;
    let mut counts: BTreeMap<String, [u32; MINUTES]> = BTreeMap::new();
    for call in calls {
        let Some(at) = epoch_ms(&call["time"]) else {
            continue;
        };
        let ago = ((now - at).max(0.0) / 60_000.0) as usize;
        if ago < MINUTES {
            let outcome = call["outcome"].as_str().unwrap_or("unknown").to_owned();
            counts.entry(outcome).or_insert([0; MINUTES])[MINUTES - 1 - ago] += 1;
        }
    }
    let peak = (0..MINUTES)
        .map(|m| counts.values().map(|c| c[m]).sum::<u32>())
        .max()
        .unwrap_or(0)
        .max(1);
    let (width, height) = (720.0, 200.0);
    let bar = width / MINUTES as f64;
    let mut svg = format!(
        "<section aria-labelledby=\"per-minute\"><h3 id=\"per-minute\">Calls per minute by outcome</h3><svg id=\"calls-per-minute\" role=\"img\" aria-label=\"Calls per minute by outcome, peak {peak}\" viewBox=\"0 0 {width} {}\" width=\"100%\">",
        height + 20.0
    );
    let mut base = [0u32; MINUTES];
    for (i, (outcome, series)) in counts.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        for (minute, &count) in series.iter().enumerate().filter(|(_, c)| **c > 0) {
            let y = height * f64::from(base[minute] + count) / f64::from(peak);
            let h = height * f64::from(count) / f64::from(peak);
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{} {}</title></rect>",
                minute as f64 * bar,
                height - y,
                bar - 1.0,
                count,
                escape(outcome),
            );
            base[minute] += count;
        }
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{}\" font-size=\"12\">60 min ago</text><text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\">now</text></svg><ul class=\"legend\">",
        height + 16.0,
        width,
        height + 16.0
    );
    for (i, (outcome, series)) in counts.iter().enumerate() {
        let total: u32 = series.iter().sum();
        let colour = PALETTE[i % PALETTE.len()];
        let _ = write!(
            svg,
            "<li data-outcome=\"{o}\"><svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect width=\"12\" height=\"12\" fill=\"{colour}\"/></svg> {o}: {total}</li>",
            o = escape(outcome)
        );
    }
    svg.push_str("</ul></section>");
    svg
}

/// The `q` quantile of sorted `values`.
fn quantile(values: &[f64], q: f64) -> f64 {
    let rank = ((values.len() as f64 - 1.0) * q).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// p50 and p99 latency per tool, the 20 most called.
fn latencies(calls: &[&Value]) -> String {
    let mut by_tool: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for call in calls {
        if let (Some(tool), Some(ms)) = (call["tool"].as_str(), call["latency_ms"].as_f64()) {
            by_tool.entry(tool.to_owned()).or_default().push(ms);
        }
    }
    let mut tools: Vec<(String, Vec<f64>)> = by_tool.into_iter().collect();
    tools.sort_by_key(|(_, ms)| std::cmp::Reverse(ms.len()));
    tools.truncate(20);
    let stats: Vec<(String, usize, f64, f64)> = (tools.into_iter())
        .map(|(tool, mut ms)| {
            ms.sort_by(f64::total_cmp);
            (tool, ms.len(), quantile(&ms, 0.5), quantile(&ms, 0.99))
        })
        .collect();
    let peak = stats.iter().map(|s| s.3).fold(1.0, f64::max);
    let row = 24.0;
    let (label, width) = (200.0, 520.0);
    let mut svg = format!(
        "<section aria-labelledby=\"latency\"><h3 id=\"latency\">Latency per tool (p50, p99)</h3><svg id=\"latency-per-tool\" role=\"img\" aria-label=\"p50 and p99 latency per tool\" viewBox=\"0 0 {} {}\" width=\"100%\">",
        label + width + 120.0,
        row * stats.len().max(1) as f64
    );
    for (i, (tool, count, p50, p99)) in stats.iter().enumerate() {
        let y = i as f64 * row;
        let _ = write!(
            svg,
            "<g data-tool=\"{t}\" data-p50=\"{p50:.1}\" data-p99=\"{p99:.1}\"><text x=\"0\" y=\"{:.1}\" font-size=\"12\">{t}</text><rect x=\"{label}\" y=\"{:.1}\" width=\"{:.1}\" height=\"8\" fill=\"#b35c00\"><title>p99 {p99:.1} ms</title></rect><rect x=\"{label}\" y=\"{:.1}\" width=\"{:.1}\" height=\"8\" fill=\"#12355b\"><title>p50 {p50:.1} ms</title></rect><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{p50:.1} / {p99:.1} ms ({count})</text></g>",
            y + 16.0,
            y + 2.0,
            width * p99 / peak,
            y + 11.0,
            width * p50 / peak,
            label + width + 4.0,
            y + 16.0,
            t = escape(tool),
        );
    }
    svg.push_str("</svg></section>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_the_ranked_value() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), 51.0);
        assert_eq!(quantile(&values, 0.99), 99.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
    }
}
