//! The console's pages, rendered on the server as plain HTML: no script is
//! needed to read them, every value is escaped, and nothing secret
//! (tokens, keys, static credentials, headers) is ever put in one.

use std::fmt::Write;

use crate::discovery::quarantine::Quarantined;
use crate::upstream::ServerStatus;

/// `text` safe in HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: the navigation (with the sign-out form carrying the
/// session's CSRF token) when signed in, then `body`.
pub fn page(title: &str, signed_in: Option<(&str, &str)>, body: &str) -> String {
    let nav = match signed_in {
        Some((admin, csrf)) => format!(
            r#"<nav aria-label="Console"><a href="/ui/">Overview</a> <a href="/ui/access">Who can see what</a> <a href="/ui/audit">Audit</a> <a href="/ui/charts">Charts</a> <a href="/ui/playground">Policy playground</a>
<form method="post" action="/ui/logout" class="inline"><input type="hidden" name="csrf" value="{}"><button type="submit">Sign out {}</button></form></nav>"#,
            escape(csrf),
            escape(admin)
        ),
        None => String::new(),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · MCP Control Plane</title><link rel="stylesheet" href="/ui/assets/console.css"></head>
<body><header><h1>MCP Control Plane</h1>{nav}</header><main id="main">{body}</main></body></html>"#,
        title = escape(title),
    )
}

/// The sign-in form; `problem` says why the last attempt failed.
pub fn login(problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!(r#"<p role="alert" class="problem">{}</p>"#, escape(p)))
        .unwrap_or_default();
    let body = format!(
        r#"<h2>Sign in</h2>{problem}
<form method="post" action="/ui/login"><label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="off" required autofocus>
<button type="submit">Sign in</button></form>"#
    );
    page("Sign in", None, &body)
}

/// What the overview shows of one upstream: its status, and where it is
/// (an admin may see addresses and commands, never headers or secrets).
pub struct Upstream<'a> {
    pub status: &'a ServerStatus,
    pub transport: &'static str,
    pub address: String,
    pub circuit: Option<&'static str>,
    /// Its recent latency (a weighted mean of its last requests).
    pub latency_ms: Option<f64>,
}

/// The catalog in force, its policy, its upstreams and its quarantine.
pub struct Overview<'a> {
    pub version: &'a str,
    pub loaded_at: &'a str,
    pub reload_error: Option<&'a str>,
    pub policy_mode: &'a str,
    pub tests_passed: usize,
    pub upstreams: Vec<Upstream<'a>>,
    pub quarantined: Vec<Quarantined>,
}

pub fn overview(overview: &Overview<'_>, admin: &str, csrf: &str, problem: Option<&str>) -> String {
    let mut body = String::from("<h2>Overview</h2>");
    if let Some(problem) = problem {
        let _ = write!(
            body,
            "<p role=\"alert\" class=\"problem\">{}</p>",
            escape(problem)
        );
    }
    body.push_str("<section aria-labelledby=\"catalog\"><h3 id=\"catalog\">Catalog</h3><dl>");
    let _ = write!(
        body,
        "<dt>Version</dt><dd data-field=\"version\">{}</dd><dt>Loaded</dt><dd>{}</dd><dt>Reload error</dt><dd>{}</dd><dt>Policy</dt><dd>{} ({} tests pass)</dd></dl></section>",
        escape(overview.version),
        escape(overview.loaded_at),
        escape(overview.reload_error.unwrap_or("none")),
        escape(overview.policy_mode),
        overview.tests_passed,
    );
    body.push_str("<section aria-labelledby=\"upstreams\"><h3 id=\"upstreams\">Upstreams</h3><table><thead><tr><th scope=\"col\">Server</th><th scope=\"col\">State</th><th scope=\"col\">Transport</th><th scope=\"col\">Protocol</th><th scope=\"col\">Address</th><th scope=\"col\">Tools offered</th><th scope=\"col\">Missing</th><th scope=\"col\">Circuit</th><th scope=\"col\">Recent latency</th></tr></thead><tbody>");
    for upstream in &overview.upstreams {
        let status = upstream.status;
        let state = serde_json::to_value(status.state).ok();
        let state = state.as_ref().and_then(|s| s.as_str()).unwrap_or("unknown");
        let missing: Vec<&str> = status.missing_tools.iter().map(|t| &**t).collect();
        let _ = write!(
            body,
            "<tr data-server=\"{name}\"><th scope=\"row\">{name}</th><td class=\"state-{state}\">{state}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            upstream.transport,
            escape(status.protocol.as_deref().unwrap_or("")),
            escape(&upstream.address),
            status.tools_offered,
            escape(&missing.join(", ")),
            upstream.circuit.unwrap_or("none"),
            upstream
                .latency_ms
                .map_or("none yet".to_owned(), |ms| format!("{ms:.1} ms")),
            name = escape(&status.name),
        );
    }
    body.push_str("</tbody></table></section>");
    if !overview.quarantined.is_empty() {
        body.push_str(
            "<section aria-labelledby=\"quarantine\"><h3 id=\"quarantine\">Quarantined</h3><ul>",
        );
        for q in &overview.quarantined {
            let verdict = serde_json::to_value(q.verdict).ok();
            let verdict = verdict.as_ref().and_then(|v| v.as_str()).unwrap_or("");
            let _ = write!(
                body,
                "<li data-quarantined=\"{name}\">{name} on {}: {verdict} <form method=\"post\" action=\"/ui/approve\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"name\" value=\"{name}\"><button type=\"submit\">Approve</button></form></li>",
                escape(&q.server),
                escape(csrf),
                name = escape(&q.name),
            );
        }
        body.push_str("</ul></section>");
    }
    page("Overview", Some((admin, csrf)), &body)
}

/// For one tool, what each agent's role grants and its listing shows.
pub struct Reach {
    pub agent: String,
    pub role: String,
    pub granted: bool,
    pub listed: bool,
}

/// The tool picker and, for the tool picked, who may use it.
pub struct ByTool<'a> {
    pub tools: &'a [String],
    pub picked: Option<&'a str>,
    pub reach: &'a [Reach],
}

/// Who can see what: an agent picker and, for the agent picked, exactly
/// the tools its own listing would show; a tool picker and, for the tool
/// picked, which agents' roles grant it and whether the policy shows it.
pub fn access(
    agents: &[(String, String)],
    picked: Option<(&str, &[String])>,
    by_tool: &ByTool<'_>,
    admin: &str,
    csrf: &str,
) -> String {
    let mut body = String::from(
        "<h2>Who can see what</h2><form method=\"get\" action=\"/ui/access\"><label for=\"agent\">Agent</label><select id=\"agent\" name=\"agent\">",
    );
    for (id, role) in agents {
        let selected = if picked.is_some_and(|(p, _)| p == id) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<option value=\"{id}\"{selected}>{id} ({role})</option>",
            id = escape(id),
            role = escape(role)
        );
    }
    body.push_str("</select><button type=\"submit\">Show</button></form>");
    if let Some((agent, tools)) = picked {
        let _ = write!(
            body,
            "<h3>Tools {} may see</h3><ul id=\"tools\">",
            escape(agent)
        );
        for tool in tools {
            let _ = write!(body, "<li>{}</li>", escape(tool));
        }
        body.push_str("</ul>");
    }
    body.push_str("<form method=\"get\" action=\"/ui/access\"><label for=\"tool\">Tool</label><select id=\"tool\" name=\"tool\">");
    for tool in by_tool.tools {
        let selected = if by_tool.picked == Some(tool.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<option value=\"{t}\"{selected}>{t}</option>",
            t = escape(tool)
        );
    }
    body.push_str("</select><button type=\"submit\">Show</button></form>");
    if let Some(tool) = by_tool.picked {
        let _ = write!(
            body,
            "<h3>Who may use {}</h3><table id=\"reach\"><thead><tr><th scope=\"col\">Agent</th><th scope=\"col\">Role</th><th scope=\"col\">Role grants it</th><th scope=\"col\">Listed (visible rule, quarantine)</th></tr></thead><tbody>",
            escape(tool)
        );
        let yes = |b: bool| if b { "yes" } else { "no" };
        for reach in by_tool.reach {
            let _ = write!(
                body,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&reach.agent),
                escape(&reach.role),
                yes(reach.granted),
                yes(reach.listed),
            );
        }
        body.push_str("</tbody></table>");
    }
    page("Who can see what", Some((admin, csrf)), &body)
}

/// The console's style sheet: plain, readable contrast, fits a laptop and
/// a wide monitor.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#111;background:#fff}\
header{background:#12355b;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;align-items:center;gap:1rem}\
header h1{font-size:1.1rem;margin:0}nav a{color:#fff;margin-right:1rem}\
main{padding:1rem;max-width:90rem}table{border-collapse:collapse;width:100%}\
th,td{border:1px solid #999;padding:.3rem .5rem;text-align:left;overflow-wrap:anywhere}\
.state-ready{color:#0a5d00}.state-down{color:#a00000;font-weight:bold}\
.problem{color:#a00000}.inline{display:inline}\
a:focus,button:focus,input:focus,select:focus{outline:3px solid #f5a623}\
code{word-break:break-all}label{display:block;margin-top:.5rem}.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}.filters label{margin:0}.decision-deny,.decision-forbidden,.decision-hidden{color:#a00000}.decision-allow{color:#0a5d00}.timeline li{margin:.4rem 0}#time-axis{max-width:60rem}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_escaped() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
        let by_tool = ByTool {
            tools: &[],
            picked: None,
            reach: &[],
        };
        let page = access(&[("<a>".into(), "r".into())], None, &by_tool, "ops", "c");
        assert!(!page.contains("<a>") && page.contains("&lt;a&gt;"));
    }
}
