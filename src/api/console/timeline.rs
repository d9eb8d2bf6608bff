//! A trace drawn on a time axis, as inline SVG: one bar per audit record
//! (from its time for its latency) and one per fan-out leg that left (from
//! the moment its request went out), so an operator sees what ran in
//! parallel, what waited and where the time went.

use std::fmt::Write;

use humantime_serde::re::humantime;
use serde_json::Value;

use super::pages::escape;

const WIDTH: f64 = 720.0;
const LABEL: f64 = 220.0;
const ROW: f64 = 22.0;

/// One bar: a label, where it starts (ms since the epoch) and how long.
struct Bar {
    label: String,
    outcome: String,
    start: f64,
    ms: f64,
    leg: bool,
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub fn epoch_ms(time: &Value) -> Option<f64> {
    let time = humantime::parse_rfc3339_weak(time.as_str()?).ok()?;
    Some(
        time.duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64()
            * 1000.0,
    )
}

fn bars(records: &[Value]) -> Vec<Bar> {
    let text = |v: &Value, field: &str| v[field].as_str().unwrap_or("").to_owned();
    let mut bars = Vec::new();
    for record in records {
        let Some(start) = epoch_ms(&record["time"]) else {
            continue;
        };
        bars.push(Bar {
            label: format!("{} {}", text(record, "action"), text(record, "tool")),
            outcome: text(record, "outcome"),
            start,
            ms: record["latency_ms"].as_f64().unwrap_or(0.0),
            leg: false,
        });
        for leg in record["legs"].as_array().into_iter().flatten() {
            let Some(start) = epoch_ms(&leg["started"]) else {
                continue;
            };
            bars.push(Bar {
                label: format!(
                    "{} #{}",
                    text(leg, "server"),
                    leg["attempt"].as_u64().unwrap_or(1)
                ),
                outcome: text(leg, "outcome"),
                start,
                ms: leg["latency_ms"].as_f64().unwrap_or(0.0),
                leg: true,
            });
        }
    }
    bars
}

/// The SVG of a trace's records (empty when none has a time).
pub fn axis(records: &[Value]) -> String {
    let bars = bars(records);
    let Some(first) = bars.iter().map(|b| b.start).reduce(f64::min) else {
        return String::new();
    };
    let last = bars.iter().map(|b| b.start + b.ms).fold(first, f64::max);
    let span = (last - first).max(1.0);
    let scale = (WIDTH - LABEL) / span;
    let height = ROW * bars.len() as f64 + 20.0;
    let mut svg = format!(
        "<svg id=\"time-axis\" role=\"img\" aria-label=\"The trace on a time axis, {span:.1} ms in all\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\">"
    );
    for (row, bar) in bars.iter().enumerate() {
        let y = ROW * row as f64;
        let x = LABEL + (bar.start - first) * scale;
        let colour = if bar.outcome == "ok" {
            "#0a5d00"
        } else {
            "#a00000"
        };
        let _ = write!(
            svg,
            "<g data-offset-ms=\"{:.1}\" data-ms=\"{:.1}\"><text x=\"{}\" y=\"{:.1}\" font-size=\"12\">{}</text><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{} {} in {:.1} ms</title></rect></g>",
            bar.start - first,
            bar.ms,
            if bar.leg { 16 } else { 0 },
            y + 15.0,
            escape(&bar.label),
            y + 4.0,
            (bar.ms * scale).max(2.0),
            ROW - 8.0,
            escape(&bar.label),
            escape(&bar.outcome),
            bar.ms,
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{LABEL}\" y=\"{:.1}\" font-size=\"12\">0 ms</text><text x=\"{WIDTH}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{span:.1} ms</text></svg>",
        height - 4.0,
        height - 4.0,
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bars_sit_where_their_records_and_legs_started() {
        let records = [
            json!({"time": "2026-12-03T10:00:00.000Z", "action": "discovery", "tool": "", "outcome": "ok", "latency_ms": 2.0}),
            json!({"time": "2026-12-03T10:00:00.100Z", "action": "call", "tool": "quote", "outcome": "ok", "latency_ms": 50.0,
            "legs": [
                {"server": "a", "attempt": 1, "outcome": "ok", "latency_ms": 40.0, "started": "2026-12-03T10:00:00.105Z"},
                {"server": "b", "attempt": 1, "outcome": "denied", "latency_ms": 0.0, "started": null}
            ]}),
        ];
        let svg = axis(&records);
        assert!(
            svg.contains("aria-label=\"The trace on a time axis, 150.0 ms in all\""),
            "{svg}"
        );
        assert!(
            svg.contains("<g data-offset-ms=\"0.0\" data-ms=\"2.0\">"),
            "{svg}"
        );
        assert!(
            svg.contains("<g data-offset-ms=\"100.0\" data-ms=\"50.0\">"),
            "{svg}"
        );
        assert!(
            svg.contains("<g data-offset-ms=\"105.0\" data-ms=\"40.0\">"),
            "{svg}"
        );
        // A leg that never left has no place on the axis.
        assert_eq!(svg.matches("<g ").count(), 3, "{svg}");
        assert!(axis(&[]).is_empty());
    }
}
