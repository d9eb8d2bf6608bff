//! The cloud IAM against a real AWS API implementation (moto): per-call
//! STS credentials, SigV4 to an upstream that verifies every signature,
//! and the failure of STS.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::aws::{Moto, StsRecorder};
use crate::common::sigv4::Verifier;
use crate::common::upstream::{aws_headers_upstream, sigv4_upstream};
use crate::common::{ANALYST_TOKEN, ControlPlane, TESTER_TOKEN, denying, sha256_hex};

const ROLE: &str = "arn:aws:iam::123456789012:role/mcp-marketdata";

/// The control plane's own AWS identity, as the standard chain reads it
/// from the environment (moto takes any).
const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
];

/// A catalog with one server behind IAM, whose `echo` both agents may
/// call, and one that takes the credentials in headers, whose `echo` is
/// `echo_direct`.
fn catalog(url: &str, headers_url: &str, sts: &str) -> String {
    format!(
        r#"environment: test
policy: allow-all
servers:
  aws:
    http: {{url: "{url}"}}
    credential:
      provider: aws-sts
      role_arn: "{ROLE}"
      region: us-east-1
      endpoint_url: "{sts}"
      sign: sigv4
      service: execute-api
      session_policy: '{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:us-east-1:123456789012:*/*/POST/{{tool}}"}}]}}'
  direct:
    http: {{url: "{headers_url}"}}
    credential:
      provider: aws-sts
      role_arn: "{ROLE}"
      region: us-east-1
      endpoint_url: "{sts}"
      deliver: headers
tools:
  echo: {{server: aws}}
  echo_direct: {{server: direct, upstream_name: echo}}
roles:
  tester: [echo, echo_direct]
agents:
  tester-1: {{role: tester, token_sha256: {}}}
  agent-42: {{role: tester, token_sha256: {}}}
"#,
        sha256_hex(TESTER_TOKEN),
        sha256_hex(ANALYST_TOKEN),
    )
}

fn tags(params: &HashMap<String, String>) -> HashMap<String, String> {
    (1..=10)
        .filter_map(|i| {
            let key = params.get(&format!("Tags.member.{i}.Key"))?;
            let value = params.get(&format!("Tags.member.{i}.Value"))?;
            Some((key.clone(), value.clone()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_call_gets_scoped_sts_credentials_and_every_request_is_signed_with_them() {
    let moto = Moto::start().await;
    let sts = StsRecorder::start(&moto).await;
    let verifier = Verifier::new(sts.clone());
    let upstream = sigv4_upstream(verifier.clone()).await;
    let direct_gate = Verifier::new(sts.clone());
    let direct = aws_headers_upstream(direct_gate.clone()).await;
    let policies = tempfile::tempdir().unwrap();
    let text = denying(
        &catalog(&upstream.url, &direct.url, &sts.url),
        policies.path(),
    );
    let cp = ControlPlane::start_with_env(&text, AWS_ENV);
    cp.wait_all_ready().await;

    // Each server's own session (handshake, listing) is one AssumeRole,
    // named after the control plane.
    let own = sts.assume_roles();
    assert_eq!(own.len(), 2, "{own:?}");
    assert!(
        own.iter()
            .all(|r| r.params["RoleSessionName"] == "mcp-control-plane")
    );

    // A call the policy denies assumes no role and reaches no server.
    let (status, body) = cp.call(TESTER_TOKEN, "echo", json!({"deny": true})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "policy_denied");
    assert_eq!(sts.assume_roles().len(), 2);
    assert_eq!(upstream.calls(), 0);

    // The first call of an agent and tool: one AssumeRole, scoped to it.
    let (status, body) = cp.call(TESTER_TOKEN, "echo", json!({"n": 1})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let calls = sts.assume_roles();
    assert_eq!(calls.len(), 3, "{calls:?}");
    let call = &calls[2].params;
    assert_eq!(call["RoleArn"], ROLE);
    assert_eq!(call["RoleSessionName"], "tester-1");
    assert_eq!(call["DurationSeconds"], "900");
    let expected: HashMap<String, String> = [
        ("agent", "tester-1"),
        ("role", "tester"),
        ("server", "aws"),
        ("tool", "echo"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(tags(call), expected);
    let policy: Value = serde_json::from_str(&call["Policy"]).unwrap();
    assert_eq!(
        policy["Statement"][0]["Resource"],
        "arn:aws:execute-api:us-east-1:123456789012:*/*/POST/echo"
    );
    assert_eq!(calls[2].status, 200);

    // A second call within the credentials' lifetime: none.
    let (status, body) = cp.call(TESTER_TOKEN, "echo", json!({"n": 2})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(sts.assume_roles().len(), 3);

    // The server that takes the credentials themselves gets them in its
    // headers, from a session of its own for the agent and that tool.
    let (status, body) = cp.call(TESTER_TOKEN, "echo_direct", json!({"n": 1})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let calls = sts.assume_roles();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(tags(&calls[3].params)["server"], "direct");
    assert_eq!(tags(&calls[3].params)["tool"], "echo");
    assert!(direct_gate.verified() >= 2, "{}", direct_gate.verified());
    assert_eq!(direct_gate.rejected(), Vec::<String>::new());
    assert_eq!(direct.calls(), 1);

    // A burst of another agent's first calls at once: one AssumeRole.
    let burst = (0..5).map(|n| cp.call(ANALYST_TOKEN, "echo_direct", json!({"n": n})));
    for (status, body) in futures::future::join_all(burst).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let calls = sts.assume_roles();
    assert_eq!(calls.len(), 5, "{calls:?}");
    assert_eq!(calls[4].params["RoleSessionName"], "agent-42");
    assert_eq!(direct.calls(), 6);

    // Every request the upstream received verified, and the calls were
    // signed with the agent's own session (not the control plane's).
    assert!(verifier.verified() >= 4, "{}", verifier.verified());
    assert_eq!(verifier.rejected(), Vec::<String>::new());
    let keys = verifier.keys.lock().unwrap().clone();
    let distinct: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(distinct.len(), 2, "{keys:?}");
    assert_eq!(upstream.calls(), 2);

    // A signed request with its body changed is refused at the gate.
    let arrived = verifier.last_post.lock().unwrap().clone().unwrap();
    let tampered = String::from_utf8(arrived.body.to_vec())
        .unwrap()
        .replace("\"n\":2", "\"n\":3");
    assert_ne!(tampered.as_bytes(), &arrived.body[..]);
    let url = upstream.url.replace("/mcp", &arrived.path);
    let mut replay = reqwest::Client::new().post(&url).body(tampered);
    for (name, value) in arrived
        .headers
        .iter()
        .filter(|(n, _)| *n != "content-length")
    {
        replay = replay.header(name, value);
    }
    let refused = replay.send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        verifier.rejected(),
        vec!["the body is not the one signed".to_owned()]
    );
    assert_eq!(upstream.calls(), 2);

    // STS unreachable: another agent's first call has no credentials; it
    // is refused with credential_unavailable, the upstream never sees it,
    // and the audit record says why.
    sts.stop();
    let verified = verifier.verified();
    let (status, body) = cp.call(ANALYST_TOKEN, "echo", json!({"n": 4})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "credential_unavailable", "{body}");
    assert_eq!(verifier.verified(), verified);
    assert_eq!(upstream.calls(), 2);
    let record = cp.audit_record(body["trace_id"].as_str().unwrap()).await;
    assert_eq!(record["outcome"], "credential_unavailable", "{record}");
    assert_eq!(record["reasons"], "STS is unreachable", "{record}");
    // No secret reached the audit trail or the log.
    let logged = cp.stderr_text();
    for key in distinct {
        let secret = sts.secret_of(key).unwrap();
        assert!(!logged.contains(&secret), "a secret key was logged");
    }
    // The agent that already had credentials goes on.
    let (status, body) = cp.call(TESTER_TOKEN, "echo", json!({"n": 5})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A DynamoDB client of the test's own (not the control plane's code).
async fn dynamodb(moto: &Moto) -> aws_sdk_dynamodb::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version_latest()
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .http_client(http)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn run_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(crate::common::binary())
        .args(args)
        .envs(AWS_ENV.iter().copied())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_pushed_to_dynamodb_serves_the_example_and_follows_edits_to_the_table() {
    use aws_sdk_dynamodb::types::AttributeValue;

    let moto = Moto::start().await;
    let table = format!("catalog-{}", hex::encode(rand::random::<[u8; 4]>()));
    let url = format!(
        "dynamodb://{table}?region=us-east-1&endpoint_url={}&poll=200ms",
        moto.url
    );
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/trading/catalog.yaml");
    let pushed = run_cli(&["catalog", "push", "--config", example, "--to", &url]);
    let said = String::from_utf8_lossy(&pushed.stdout);
    assert!(
        pushed.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    assert!(said.starts_with("pushed "), "{said}");

    // Served from the table, the example is unchanged: the same upstreams,
    // the same listings, the same calls.
    let cp = ControlPlane::start_table(&url, AWS_ENV);
    let ready = cp.wait_all_ready().await;
    assert_eq!(ready["servers"].as_array().unwrap().len(), 4, "{ready}");
    let tests = crate::common::example_policy_tests();
    assert_eq!(ready["policy"]["tests_passed"], tests, "{ready}");
    let listed: Value = cp.get_tools(ANALYST_TOKEN, "").await.json().await.unwrap();
    assert_eq!(listed["tools"], json!(["read_positions", "run_report"]));
    let (status, body) = cp
        .call(
            ANALYST_TOKEN,
            "read_positions",
            json!({"account": "ACC-001"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Revoke an agent in the table: it takes effect.
    let client = dynamodb(&moto).await;
    client
        .delete_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("agents/agent-42".into()))
        .send()
        .await
        .unwrap();
    crate::live::wait_for("agent-42 revoked", async || {
        cp.get_tools(ANALYST_TOKEN, "").await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    let trader = crate::common::TRADER_TOKEN;
    assert_eq!(cp.get_tools(trader, "").await.status(), StatusCode::OK);

    // An invalid edit (a server with no transport) is refused; the
    // catalog in force stays.
    let version = cp.readyz().await["catalog"]["version"].clone();
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("servers/broken".into()))
        .item("body", AttributeValue::S(r#"{"timeout": "5s"}"#.into()))
        .send()
        .await
        .unwrap();
    let refused = cp
        .wait_readyz("the broken edit refused", |body| {
            body["catalog"]["reload_error"]
                .as_str()
                .is_some_and(|e| e.contains("servers.broken"))
        })
        .await;
    assert_eq!(refused["catalog"]["version"], version, "{refused}");
    assert_eq!(cp.get_tools(trader, "").await.status(), StatusCode::OK);
    assert_eq!(
        cp.get_tools(ANALYST_TOKEN, "").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Pulled back out: the table's catalog as YAML, the edits in it.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("catalog.yaml");
    let pulled = run_cli(&[
        "catalog",
        "pull",
        "--from",
        &url,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let yaml: Value = yaml_serde::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(yaml["agents"].get("agent-42").is_none(), "{yaml}");
    assert_eq!(yaml["agents"]["agent-7"]["role"], "trader");
    assert!(out.path().join("policies/authz.rego").is_file());
}
