//! The console in a real browser (Chromium, driven by playwright-core) on
//! the shipped example: sign-in with the admin token only, the cookie's
//! flags and the CSP, every upstream ready and one turning down when its
//! process is killed, a real call found by its trace id and its timeline,
//! "who can see what" matching `/tools`, and the playground's denial.

use std::process::Command;

use serde_json::{Value, json};

use crate::common::browser::run_console_script;
use crate::common::{ANALYST_TOKEN, Background, ControlPlane, binary, free_port};

const ADMIN_TOKEN: &str = "admin-demo-token";

#[tokio::test(flavor = "multi_thread")]
async fn the_console_works_in_a_real_browser() {
    // The example, with its research server over HTTP in a process of the
    // test's own, so that it can be killed and stays down.
    let port = free_port();
    let research = Background::spawn(Command::new(binary()).args([
        "example-server",
        "research",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--no-verify",
    ]));
    let cp = ControlPlane::start_example_with(|catalog| {
        catalog.replace(
            "  research:\n    stdio:\n      command: $SELF\n      args: [example-server, research]\n",
            // Pinged every second: its loss is noticed at once.
            &format!("  research:\n    http:\n      url: http://127.0.0.1:{port}/mcp\n    ping_interval: 1s\n"),
        )
    });
    cp.wait_all_ready().await;

    // A real call through REST, to find in the audit page.
    let body = json!({"action": "read_positions", "payload": {"account": "ACC-001"}});
    let response = cp.invoke(Some(ANALYST_TOKEN), body).await;
    assert!(response.status().is_success());
    let trace_id = response.json::<Value>().await.unwrap()["trace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    cp.audit_record(&trace_id).await;
    let listed: Value = cp.get_tools(ANALYST_TOKEN, "").await.json().await.unwrap();
    let servers: Vec<String> = (cp.readyz().await["servers"].as_array().unwrap().iter())
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    let base = cp.admin_url("");
    let output = run_console_script(
        "signin",
        &[
            ("BASE_URL", base.clone()),
            ("AGENT_URL", cp.url("")),
            ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
            ("AGENT_TOKEN", ANALYST_TOKEN.into()),
            ("SERVERS", servers.join(",")),
            ("TRACE_ID", trace_id),
            ("TRACE_TOOL", "read_positions".into()),
            ("ACCESS_AGENT", "agent-42".into()),
            ("ACCESS_TOOLS", listed["tools"].to_string()),
        ],
    );
    assert!(
        output.contains("ok: the playground shows the notional-limit denial"),
        "{output}"
    );

    // Its process killed, research turns down.
    drop(research);
    cp.wait_readyz("research down", |body| {
        (body["servers"].as_array().into_iter().flatten())
            .any(|s| s["name"] == "research" && s["state"] == "down")
    })
    .await;
    let output = run_console_script(
        "down",
        &[
            ("BASE_URL", base),
            ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
            ("DOWN", "research".into()),
        ],
    );
    assert!(output.contains("ok: research is down"), "{output}");
}
