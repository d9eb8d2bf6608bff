//! Whole servers exposed without listing their tools (`servers.X.expose`):
//! a real upstream with 200 tools, a prefix and include/exclude globs;
//! tools the upstream adds at run time appear only where a grant covers
//! them, and a name two servers would give is held back, never shadowing
//! the tool that has it.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::common::many::{generated_names, many_tools_upstream};
use crate::common::{ANALYST_TOKEN, ControlPlane, TESTER_TOKEN, catalog, run_check};

/// A client that counts the `tools/list_changed` notifications it gets.
#[derive(Clone, Default)]
struct Listener(Arc<tokio::sync::Notify>);

impl ClientHandler for Listener {
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.0.notify_one();
    }
}

async fn invoke(cp: &ControlPlane, token: &str, tool: &str, payload: Value) -> StatusCode {
    cp.call(token, tool, payload).await.0
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_server_is_exposed_by_its_rule_and_what_it_adds_later_only_where_granted() {
    let github = many_tools_upstream(generated_names()).await;
    let mirror = many_tools_upstream(Vec::new()).await;
    let servers = format!(
        "  github:\n    http: {{url: \"{}\"}}\n    expose: {{prefix: gh_, include: [\"issue_*\", \"pull_*\"], exclude: [\"*_delete\"]}}\n  mirror:\n    http: {{url: \"{}\"}}\n    expose: {{prefix: gh_, include: [\"issue_*\"]}}\n",
        github.url, mirror.url
    );
    // Explicit entries keep working beside the rules.
    let tools_section = "  github_add: {server: github, upstream_name: admin_add}\n  mirror_add: {server: mirror, upstream_name: admin_add}\n";
    let text = catalog(
        &servers,
        tools_section,
        &["\"gh_issue_*\"", "github_add", "mirror_add"],
    )
    .replace("nobody: []", "nobody: {servers: [github]}");
    let cp = ControlPlane::start(&text);
    cp.wait_all_ready().await;

    // The tester's glob covers the 50 included issue tools, not the
    // excluded *_delete ones, the pulls or the repos.
    let issues: Vec<String> = (0..50).map(|i| format!("gh_issue_{i:02}")).collect();
    cp.wait_tools(TESTER_TOKEN, "the issue tools", |names| {
        names.iter().filter(|n| n.starts_with("gh_issue_")).count() == 50
    })
    .await;
    let mut expected = issues.clone();
    expected.extend(["github_add".to_owned(), "mirror_add".to_owned()]);
    assert_eq!(cp.tool_names(TESTER_TOKEN).await, expected);
    // A server grant covers every tool routed to github: exposed or explicit.
    let all = cp.tool_names(ANALYST_TOKEN).await;
    assert_eq!(all.len(), 101, "{all:?}");
    assert!(all.contains(&"gh_pull_49".to_owned()) && all.contains(&"github_add".to_owned()));
    assert!(
        !all.iter()
            .any(|n| n.starts_with("gh_repo_") || n.ends_with("_delete"))
    );
    // The name that is not a valid public name is held back and reported.
    let ready = cp
        .wait_readyz("the invalid name held back", |body| {
            body["catalog"]["held_back"].as_array().is_some()
        })
        .await;
    assert_eq!(
        ready["catalog"]["held_back"],
        json!([{
            "kind": "tool", "server": "github", "upstream_name": "issue_bad name",
            "name": "gh_issue_bad name",
            "reason": "not a valid public name (^[A-Za-z0-9_.-]{1,128}$)"
        }])
    );

    // A call reaches the upstream under its own name; an ungranted one never does.
    assert_eq!(
        invoke(&cp, TESTER_TOKEN, "gh_issue_07", json!({})).await,
        StatusCode::OK
    );
    assert_eq!(
        invoke(&cp, TESTER_TOKEN, "gh_pull_07", json!({})).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(github.handler.called(), ["issue_07"]);

    // Tools the upstream adds later: listed where a grant covers them, and
    // an open session is told its list changed.
    let listener = Listener::default();
    let config =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            cp.url("/mcp"),
        )
        .auth_header(TESTER_TOKEN);
    let session = listener
        .clone()
        .serve(rmcp::transport::StreamableHttpClientTransport::from_config(
            config,
        ))
        .await
        .unwrap();
    for added in ["issue_new", "pull_new", "repo_new"] {
        let payload = json!({"name": added});
        assert_eq!(
            invoke(&cp, TESTER_TOKEN, "github_add", payload).await,
            StatusCode::OK
        );
    }
    cp.wait_tools(ANALYST_TOKEN, "the new pull tool", |names| {
        names.contains(&"gh_pull_new".to_owned())
    })
    .await;
    let tester = cp.tool_names(TESTER_TOKEN).await;
    assert!(tester.contains(&"gh_issue_new".to_owned()), "{tester:?}");
    assert!(
        !tester.contains(&"gh_pull_new".to_owned()),
        "not granted: {tester:?}"
    );
    assert!(
        !cp.tool_names(ANALYST_TOKEN)
            .await
            .contains(&"gh_repo_new".to_owned())
    );
    tokio::time::timeout(Duration::from_secs(10), listener.0.notified())
        .await
        .expect("the session is told its tools changed");
    let listed = session.list_all_tools().await.unwrap();
    assert!(listed.iter().any(|t| t.name == "gh_issue_new"));
    let prompts = session.list_all_prompts().await.unwrap();
    assert!(prompts.is_empty(), "the tester has no prompt grant");
    // The server grant covers github's exposed prompt too.
    let config =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            cp.url("/mcp"),
        )
        .auth_header(ANALYST_TOKEN);
    let analyst = ()
        .serve(rmcp::transport::StreamableHttpClientTransport::from_config(
            config,
        ))
        .await
        .unwrap();
    let prompts = analyst.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["gh_issue_summary"]);
    analyst.cancel().await.unwrap();

    // The mirror starts offering a name github's tool has: it is held
    // back, and the name still leads to github.
    let payload = json!({"name": "issue_07"});
    assert_eq!(
        invoke(&cp, TESTER_TOKEN, "mirror_add", payload).await,
        StatusCode::OK
    );
    let ready = cp
        .wait_readyz("the colliding name held back", |body| {
            body["catalog"]["held_back"]
                .as_array()
                .is_some_and(|held| held.len() == 2)
        })
        .await;
    let held = &ready["catalog"]["held_back"][0];
    assert_eq!(
        (&held["name"], &held["server"], &held["reason"]),
        (
            &json!("gh_issue_07"),
            &json!("mirror"),
            &json!("server `github` already exposes that name")
        ),
        "{ready}"
    );
    assert_eq!(
        invoke(&cp, TESTER_TOKEN, "gh_issue_07", json!({})).await,
        StatusCode::OK
    );
    assert_eq!(mirror.handler.called(), ["admin_add"]);
    assert_eq!(github.handler.called().last().unwrap(), "issue_07");
    assert!(cp.stderr_text().contains("an exposed name is held back"));
    session.cancel().await.unwrap();
}

#[test]
fn check_refuses_a_catalog_name_a_rule_could_give_another_tool() {
    let servers = "  github:\n    http: {url: \"http://127.0.0.1:9/mcp\"}\n    expose: {prefix: gh_, include: [\"issue_*\"]}\n  docs:\n    http: {url: \"http://127.0.0.1:8/mcp\"}\n";
    // A grant may name a tool the rule could expose; a glob over the
    // prefix is no "matches nothing" warning.
    let good = catalog(
        servers,
        "  search: {server: docs}\n",
        &["gh_issue_read", "\"gh_*\""],
    );
    let (ok, output, _) = run_check("catalog.yaml", &good);
    assert!(ok, "{output}");
    assert!(!output.contains("matches no tool"), "{output}");
    let bad = catalog(
        servers,
        "  gh_issue_read: {server: docs}\n",
        &["gh_issue_read"],
    );
    let (ok, output, _) = run_check("catalog.yaml", &bad);
    assert!(!ok, "{output}");
    assert!(
        output.contains("tools.gh_issue_read: servers.github.expose would give this name to github's tool `issue_read`"),
        "{output}"
    );
    let unknown = catalog(servers, "  search: {server: docs}\n", &["gh_pull_read"]);
    let (ok, output, _) = run_check("catalog.yaml", &unknown);
    assert!(
        !ok && output.contains("unknown tool `gh_pull_read`"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_fits_one_page_by_default_and_pages_at_the_configured_size() {
    // A client that ignores `nextCursor` sees the first page only: by
    // default it holds every tool of a large server; the bound stays,
    // settable per deployment.
    let github = many_tools_upstream(generated_names()).await;
    let servers = format!(
        "  github:\n    http: {{url: \"{}\"}}\n    expose: {{}}\n",
        github.url
    );
    let granted = catalog(&servers, "", &[]).replace("tester: []", "tester: {servers: [github]}");
    for http in ["", "http: {mcp_page_size: 40}\n"] {
        let cp = ControlPlane::start(&format!("{granted}{http}"));
        cp.wait_all_ready().await;
        let arrived = |names: &[String]| names.iter().any(|name| name == "repo_49");
        cp.wait_tools(TESTER_TOKEN, "the server's tools", arrived)
            .await;
        let listed = cp.tool_names(TESTER_TOKEN).await.len();
        assert!(listed > 150, "{listed}");
        let config =
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                cp.url("/mcp"),
            )
            .auth_header(TESTER_TOKEN);
        let transport = rmcp::transport::StreamableHttpClientTransport::from_config(config);
        let session = ().serve(transport).await.unwrap();
        let page = session.list_tools(None).await.unwrap();
        let first_page = if http.is_empty() { listed } else { 40 };
        assert_eq!(page.tools.len(), first_page, "{http}");
        assert_eq!(page.next_cursor.is_some(), !http.is_empty(), "{http}");
        // Every page together is the whole listing either way.
        let all = session.list_all_tools().await.unwrap().len();
        assert_eq!(all, listed, "{http}");
    }
}
