//! The policy playground: pick an agent, a tool and arguments, and see the
//! decision, its cause and the policy's reasons, from the policy in force
//! and the input document a real call would have (the engine `policy
//! eval` uses). Nothing is called.

use std::fmt::Write;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use rmcp::model::JsonObject;

use super::pages::{escape, page};
use super::{App, field, session, signed_form};
use crate::identity::Caller;
use crate::policy::Decision;

/// `GET /ui/playground`: the form.
pub async fn form_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(session) = session(&app, &headers) else {
        return Redirect::to("/ui/").into_response();
    };
    let body = render(&app, &session.csrf, None, None, "{}", None);
    Html(page(
        "Policy playground",
        Some((&session.admin, &session.csrf)),
        &body,
    ))
    .into_response()
}

/// `POST /ui/playground`: the decision.
pub async fn decide(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let (session, form) = match signed_form(&app, &headers, &body) {
        Ok(signed) => signed,
        Err(refused) => return *refused,
    };
    let (agent, tool) = (
        field(&form, "agent").unwrap_or(""),
        field(&form, "tool").unwrap_or(""),
    );
    let arguments = field(&form, "arguments").unwrap_or("{}");
    let snapshot = app.live.current();
    let role = (snapshot.catalog.agents())
        .find(|a| &*a.id == agent)
        .map(|a| a.role.clone());
    let outcome = match (role, serde_json::from_str::<JsonObject>(arguments)) {
        (None, _) => Err("no such agent".to_owned()),
        (_, Err(error)) => Err(format!("the arguments are not a JSON object: {error}")),
        (Some(role), Ok(parsed)) => {
            let caller = Caller {
                agent_id: agent.into(),
                role,
                claims: None,
            };
            Ok(app.pipeline.evaluate(&caller, tool, parsed))
        }
    };
    let result = match outcome {
        Err(problem) => format!(
            "<p role=\"alert\" class=\"problem\">{}</p>",
            escape(&problem)
        ),
        Ok(Err(_)) => decision(
            "forbidden",
            Some("role"),
            &["the agent's role does not grant this tool".to_owned()],
        ),
        Ok(Ok(Decision::Allow)) => decision("allow", None, &[]),
        Ok(Ok(Decision::Hidden)) => decision("hidden", Some("visible"), &[]),
        Ok(Ok(Decision::Deny { reasons, cause })) => {
            decision("deny", Some(cause.as_str()), &reasons)
        }
    };
    let body = render(
        &app,
        &session.csrf,
        Some(agent),
        Some(tool),
        arguments,
        Some(&result),
    );
    Html(page(
        "Policy playground",
        Some((&session.admin, &session.csrf)),
        &body,
    ))
    .into_response()
}

fn decision(word: &str, cause: Option<&str>, reasons: &[String]) -> String {
    let mut out = format!(
        "<section id=\"decision\" aria-live=\"polite\"><h3>Decision: <span class=\"decision-{word}\">{word}</span></h3>"
    );
    if let Some(cause) = cause {
        let _ = write!(out, "<p>Cause: <code>{}</code></p>", escape(cause));
    }
    if !reasons.is_empty() {
        out.push_str("<ul class=\"reasons\">");
        for reason in reasons {
            let _ = write!(out, "<li>{}</li>", escape(reason));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
    out
}

fn render(
    app: &App,
    csrf: &str,
    agent: Option<&str>,
    tool: Option<&str>,
    arguments: &str,
    result: Option<&str>,
) -> String {
    let snapshot = app.live.current();
    let mut agents: Vec<String> = snapshot
        .catalog
        .agents()
        .map(|a| a.id.to_string())
        .collect();
    agents.sort();
    let mut tools: Vec<String> = snapshot
        .catalog
        .tools()
        .map(|t| t.public_name.to_string())
        .collect();
    tools.sort();
    let options = |names: &[String], picked: Option<&str>| {
        (names.iter())
            .map(|name| {
                let selected = if picked == Some(name.as_str()) {
                    " selected"
                } else {
                    ""
                };
                format!(
                    "<option value=\"{n}\"{selected}>{n}</option>",
                    n = escape(name)
                )
            })
            .collect::<String>()
    };
    format!(
        "<h2>Policy playground</h2><form method=\"post\" action=\"/ui/playground\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<label for=\"agent\">Agent</label><select id=\"agent\" name=\"agent\">{}</select>\
<label for=\"tool\">Tool</label><select id=\"tool\" name=\"tool\">{}</select>\
<label for=\"arguments\">Arguments (JSON)</label><textarea id=\"arguments\" name=\"arguments\" rows=\"6\" cols=\"60\">{}</textarea>\
<button type=\"submit\">Decide</button></form>{}",
        escape(csrf),
        options(&agents, agent),
        options(&tools, tool),
        escape(arguments),
        result.unwrap_or(""),
    )
}
