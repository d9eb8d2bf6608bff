//! The two surfaces: agents reach one address that tells them nothing
//! discovery hides (no metrics, no detailed readiness, no console, no admin
//! API); operators reach another, loopback by default.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ANALYST_TOKEN, ControlPlane, TRADER_TOKEN, binary, catalog};

const ADMIN_TOKEN: &str = "admin-demo-token";

#[tokio::test(flavor = "multi_thread")]
async fn the_agents_address_tells_nothing_discovery_hides() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;
    let trade = json!({"account": "ACC-001", "symbol": "AAPL", "side": "buy", "quantity": 1});
    let (status, _) = cp.call(TRADER_TOKEN, "execute_trade", trade).await;
    assert_eq!(status, StatusCode::OK);
    // The analyst is never told that `execute_trade` exists...
    let tools = cp.tool_names(ANALYST_TOKEN).await;
    assert!(!tools.contains(&"execute_trade".to_owned()), "{tools:?}");

    // ...and the agents' address has nothing that would tell it.
    for path in ["/metrics", "/ui/", "/ui/login", "/admin/audit"] {
        let response = cp.http.get(cp.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("execute_trade"), "{path}: {body}");
    }
    let with_token = (cp.http.get(cp.url("/admin/audit")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), StatusCode::NOT_FOUND);
    let ready = cp.http.get(cp.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );
    let healthy = cp.http.get(cp.url("/healthz")).send().await.unwrap();
    assert_eq!(healthy.status(), StatusCode::OK);

    // The operators' address has it all.
    let metrics = cp.metrics().await;
    assert!(metrics.contains("tool=\"execute_trade\""), "{metrics}");
    let detail = cp.readyz().await;
    assert_eq!(detail["status"], "ready");
    assert!(detail["servers"].as_array().unwrap().len() >= 3, "{detail}");
    let audit = (cp.http.get(cp.admin_url("/admin/audit?limit=1")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(audit.status(), StatusCode::OK);
    // And no agent route is served there.
    let tools = (cp.http.get(cp.admin_url("/tools")))
        .bearer_auth(ANALYST_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(tools.status(), StatusCode::NOT_FOUND);
}

/// Sign in to the console with `Host` and `Origin` as given: the status.
async fn sign_in(cp: &ControlPlane, host: &str, origin: &str) -> StatusCode {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = (client.post(cp.admin_url("/ui/login")))
        .header("host", host)
        .header("origin", origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    response.status()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_trusts_its_own_origin_never_the_requests_host() {
    let cp = ControlPlane::start_example();
    // A page of another site that names itself as the host is refused.
    let forged = sign_in(&cp, "evil.example", "http://evil.example").await;
    assert_eq!(forged, StatusCode::FORBIDDEN);
    // The agents' address is not the console's origin either.
    let agents = format!("http://{}", cp.addr);
    assert_eq!(
        sign_in(&cp, &cp.addr.to_string(), &agents).await,
        StatusCode::FORBIDDEN
    );
    // The admin listener's own origin, by address or by name, signs in.
    let port = cp.admin_addr.port();
    let own = format!("http://{}", cp.admin_addr);
    assert_eq!(
        sign_in(&cp, &cp.admin_addr.to_string(), &own).await,
        StatusCode::SEE_OTHER
    );
    let by_name = format!("http://localhost:{port}");
    assert_eq!(
        sign_in(&cp, &format!("localhost:{port}"), &by_name).await,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_admin_origin_is_the_only_one_the_console_accepts() {
    let catalog = catalog("", "", &[]).replace(
        "policy: allow-all\n",
        &format!(
            "policy: allow-all\nhttp: {{admin_origin: \"https://ops.example.com\"}}\n\
             admins:\n  ops: {{token_sha256: {}}}\n",
            crate::common::sha256_hex(ADMIN_TOKEN)
        ),
    );
    let cp = ControlPlane::start(&catalog);
    let own = format!("http://{}", cp.admin_addr);
    let host = cp.admin_addr.to_string();
    assert_eq!(sign_in(&cp, &host, &own).await, StatusCode::FORBIDDEN);
    let configured = "https://ops.example.com";
    assert_eq!(
        sign_in(&cp, "ops.example.com", configured).await,
        StatusCode::SEE_OTHER
    );
}

#[test]
fn two_instances_on_one_machine_do_not_collide_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.yaml");
    std::fs::write(&path, catalog("", "", &[])).unwrap();
    let start = |n: usize| {
        let mut child = Command::new(binary())
            .args(["--log-level", "warn", "serve", "--config"])
            .arg(&path)
            .args(["--listen", "127.0.0.1:0", "--key-file"])
            .arg(dir.path().join(format!("key-{n}.pem")))
            .env_remove("MCP_CP_ADMIN_LISTEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let agents = lines.next().unwrap().unwrap();
        let admin = lines.next().unwrap().unwrap();
        let admin: std::net::SocketAddr = (admin.strip_prefix("admin listening on "))
            .unwrap_or_else(|| panic!("{agents} / {admin}"))
            .parse()
            .unwrap();
        (child, admin)
    };
    let (mut first, first_admin) = start(1);
    let (mut second, second_admin) = start(2);
    assert!(first_admin.ip().is_loopback() && second_admin.ip().is_loopback());
    assert_ne!(first_admin, second_admin);
    assert!(first.try_wait().unwrap().is_none(), "the first one runs");
    assert!(second.try_wait().unwrap().is_none(), "the second one runs");
    for child in [&mut first, &mut second] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
