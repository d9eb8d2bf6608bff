//! `check`: a valid catalog passes; each kind of mistake is reported with the
//! file, the path inside it and what is wrong.

use crate::common::{binary, run_check, sha256_hex};

fn valid_yaml() -> String {
    format!(
        "environment: production\n\
         servers:\n  md:\n    stdio: {{command: md-server, args: [--fast]}}\n  ex:\n    http: {{url: \"http://127.0.0.1:9/mcp\"}}\n    timeout: 5s\n\
         tools:\n  read_positions: {{server: md}}\n  trade: {{server: ex, upstream_name: execute_trade}}\n\
         roles:\n  analyst: [read_positions]\n\
         agents:\n  a1: {{role: analyst, token_sha256: {}}}\n",
        sha256_hex("t")
    )
}

#[test]
fn the_shipped_example_and_a_valid_catalog_pass() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/trading/catalog.yaml");
    let output = std::process::Command::new(binary())
        .args(["check", "--config", example])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let (ok, text, _) = run_check("catalog.yaml", &valid_yaml());
    assert!(ok, "{text}");
    assert!(
        text.contains("valid (2 servers, 2 tools, 1 roles, 1 agents)"),
        "{text}"
    );
}

#[test]
fn json_catalogs_are_accepted() {
    let json = serde_json::json!({
        "environment": "dev",
        "servers": { "md": { "stdio": { "command": "md" } } },
        "tools": { "read_positions": { "server": "md" } },
        "roles": { "analyst": ["read_positions"] },
        "agents": { "a1": { "role": "analyst", "token_sha256": sha256_hex("t") } }
    });
    let (ok, text, _) = run_check("catalog.json", &json.to_string());
    assert!(ok, "{text}");
}

/// Replace `from` in the valid catalog and expect `check` to fail, naming
/// `path` and saying `message`.
fn assert_invalid(from: &str, to: &str, path: &str, message: &str) {
    let yaml = valid_yaml();
    assert!(yaml.contains(from), "fixture lacks {from:?}");
    let (ok, text, _) = run_check("bad.yaml", &yaml.replacen(from, to, 1));
    assert!(!ok, "accepted: {to}");
    assert!(text.contains("bad.yaml"), "no file name: {text}");
    assert!(text.contains(path), "no path {path:?}: {text}");
    assert!(text.contains(message), "no message {message:?}: {text}");
}

#[test]
fn each_kind_of_mistake_is_reported_precisely() {
    assert_invalid(
        "timeout: 5s",
        "timout: 5s",
        "servers.ex",
        "unknown field `timout`",
    );
    assert_invalid(
        "timeout: 5s",
        "timeout: soon",
        "servers.ex.timeout",
        "invalid",
    );
    assert_invalid(
        "server: md}",
        "server: nope}",
        "tools.read_positions.server",
        "unknown server `nope`",
    );
    assert_invalid(
        "analyst: [read_positions]",
        "analyst: [read_positions, ghost]",
        "roles.analyst.tools[1]",
        "unknown tool `ghost`",
    );
    assert_invalid(
        "analyst: [read_positions]",
        "analyst: [read_positions, read_positions]",
        "roles.analyst.tools[1]",
        "listed twice",
    );
    assert_invalid(
        "{role: analyst,",
        "{role: admin,",
        "agents.a1.role",
        "unknown role `admin`",
    );
    assert_invalid(
        &sha256_hex("t"),
        "not-a-hash",
        "agents.a1.token_sha256",
        "64 lower-case hex",
    );
    assert_invalid(
        "  trade: {",
        "  \"bad name!\": {",
        "tools.bad name!",
        "must match ^[A-Za-z0-9_.-]{1,128}$",
    );
    assert_invalid(
        "upstream_name: execute_trade",
        "upstream_name: \"a b\"",
        "tools.trade.upstream_name",
        "must match",
    );
    assert_invalid(
        "http: {url: \"http://127.0.0.1:9/mcp\"}",
        "http: {url: \"ftp://x/mcp\"}",
        "servers.ex.http.url",
        "http:// or https://",
    );
    assert_invalid(
        "    stdio: {command: md-server, args: [--fast]}\n",
        "    stdio: {command: md-server}\n    http: {url: \"http://x/mcp\"}\n",
        "servers.md",
        "exactly one of `stdio`, `http` and `sse`",
    );
    assert_invalid(
        "http: {url: \"http://127.0.0.1:9/mcp\"}",
        "sse: {url: \"http://127.0.0.1:9/sse\"}\n    protocol: \"2026-07-28\"",
        "servers.ex.protocol",
        "not spoken over the legacy SSE transport",
    );
    assert_invalid(
        "http: {url: \"http://127.0.0.1:9/mcp\"}",
        "sse: {url: \"file:///sse\"}",
        "servers.ex.sse.url",
        "http:// or https://",
    );
    assert_invalid(
        "    stdio: {command: md-server, args: [--fast]}\n",
        "    timeout: 1s\n",
        "servers.md",
        "missing transport",
    );
    assert_invalid(
        "environment: production",
        "environment: \"\"",
        "environment",
        "must not be empty",
    );
    assert_invalid(
        "  md:\n",
        "  ex:\n    http: {url: \"http://y/mcp\"}\n  md:\n",
        "servers",
        "duplicate key `ex`",
    );
    assert_invalid(
        "environment: production",
        "environment: [1]",
        "environment",
        "invalid type",
    );
    assert_invalid(
        "roles:",
        "limits:\n  agent: 20/day\nroles:",
        "limits.agent",
        "unknown unit `day`",
    );
    assert_invalid(
        "roles:",
        "limits:\n  tool read_position: 5/min per agent\nroles:",
        "limits.tool read_position",
        "unknown tool `read_position`",
    );
    assert_invalid(
        "timeout: 5s",
        "timeout: 5s\n    circuit: {consecutive_failures: 0, failure_rate: 150}",
        "servers.ex.circuit.failure_rate",
        "percentage from 1 to 100",
    );
    assert_invalid(
        "timeout: 5s",
        "timeout: 5s\n    ping_interval: 48h",
        "servers.ex.ping_interval",
        "at most 24h",
    );
    assert_invalid(
        "timeout: 5s",
        "timeout: 5s\n    roots: [{uri: \"/srv/repo\"}]",
        "servers.ex.roots[0].uri",
        "must be a file:// URI",
    );
    assert_invalid(
        "timeout: 5s",
        "timeout: 5s\n    refresh: 100ms",
        "servers.ex.refresh",
        "must be 0s (never) or at least 1s",
    );
    assert_invalid(
        "roles:",
        "http: {mcp_page_size: 20000}\nroles:",
        "http.mcp_page_size",
        "must be at most 10000",
    );
    assert_invalid(
        "roles:",
        "http: {mcp_page_size: 0}\nroles:",
        "http.mcp_page_size",
        "must be greater than 0",
    );
    assert_invalid(
        "timeout: 5s",
        "timeout: 5s\n    concurrency: {max: 0}",
        "servers.ex.concurrency.max",
        "from 1 to",
    );
    assert_invalid(
        "timeout: 5s",
        "timeout: 5s\n    circuit: {consecutive_failures: 0}",
        "servers.ex.circuit.consecutive_failures",
        "at least 1",
    );
    assert_invalid(
        "roles:",
        "limits:\n  role analysts: 5/min\nroles:",
        "limits.role analysts",
        "unknown role `analysts`",
    );
}

#[test]
fn vault_mistakes_are_reported_precisely() {
    let vault = "    timeout: 5s\n    credential: {provider: vault, kind: token, policies: [p]}\n";
    assert_invalid(
        "    timeout: 5s\n",
        vault,
        "servers.ex.credential",
        "needs the top-level `vault:`",
    );
    let both =
        "    timeout: 5s\n    credential: {provider: vault, kind: token, policies: [p], role: r}\n";
    assert_invalid(
        "    timeout: 5s\n",
        both,
        "servers.ex.credential",
        "not both",
    );
    let unbuilt =
        "    timeout: 5s\n    credential: {provider: vault, kind: secret, policies: [p]}\n";
    assert_invalid(
        "    timeout: 5s\n",
        unbuilt,
        "servers.ex.credential",
        "unknown variant `secret`",
    );
    let auth = "environment: production\nvault: {address: \"http://127.0.0.1:8200\", auth: {}}\n";
    assert_invalid(
        "environment: production\n",
        auth,
        "vault.auth",
        "exactly one of",
    );
}

#[test]
fn route_mistakes_are_reported_precisely() {
    let trade = "trade: {server: ex, upstream_name: execute_trade}";
    let cases = [
        (
            "trade: {server: ex, servers: [md, ex]}",
            "tools.trade",
            "set exactly one of `server`",
        ),
        (
            "trade: {upstream_name: x}",
            "tools.trade",
            "set exactly one of `server`",
        ),
        (
            "trade: {servers: [md, nope]}",
            "tools.trade.servers[1]",
            "unknown server `nope`",
        ),
        (
            "trade: {servers: [md, md]}",
            "tools.trade.servers[1]",
            "`md` is named twice",
        ),
        (
            "trade: {servers: [md]}",
            "tools.trade.servers",
            "two servers or more",
        ),
        (
            "trade: {targets: [{server: md, weight: 0}, {server: ex, weight: 0}]}",
            "tools.trade.targets",
            "weight above 0",
        ),
        (
            "trade: {targets: [{server: md, weight: 1}, {server: md, weight: 1}]}",
            "tools.trade.targets[1].server",
            "named twice",
        ),
        (
            "trade: {targets: [{server: md}]}",
            "tools.trade",
            "missing field `weight`",
        ),
        (
            "trade: {server: ex, sticky: true}",
            "tools.trade.sticky",
            "only with `targets`",
        ),
        (
            "trade: {server: ex, mode: partial}",
            "tools.trade.mode",
            "only with `servers`",
        ),
        (
            "trade: {server: ex, mode: some}",
            "tools.trade.mode",
            "unknown variant `some`",
        ),
        (
            "trade: {server: ex, retry: {attempts: 2}}",
            "tools.trade.retry",
            "only to a tool marked `idempotent",
        ),
        (
            "trade: {server: ex, idempotent: true, retry: {attempts: 0}}",
            "tools.trade.retry.attempts",
            "must be 1 to 10",
        ),
        (
            "trade: {server: ex, idempotent: maybe}",
            "tools.trade.idempotent",
            "true, false or hint",
        ),
        (
            "trade: {server: ex}\nredis: {url: \"127.0.0.1:6379\"}",
            "redis.url",
            "must start with `redis://`",
        ),
        (
            "trade: {server: ex}\nredis: {url: \"redis://h/1\", timeout: 0s}",
            "redis.timeout",
            "at most 5s",
        ),
    ];
    for (to, path, message) in cases {
        assert_invalid(trade, to, path, message);
    }
    // And the forms that are right pass.
    for to in [
        "trade: {servers: [md, {server: ex, upstream_name: execute_trade}], mode: partial}",
        "trade: {targets: [{server: ex, weight: 9}, {server: ex, upstream_name: t2, weight: 1}], sticky: true}",
        "trade: {server: ex, idempotent: hint, retry: {attempts: 4, backoff: 10ms}}",
    ] {
        let (ok, text, _) = run_check("good.yaml", &valid_yaml().replacen(trade, to, 1));
        assert!(ok, "{to}: {text}");
    }
}

#[test]
fn every_problem_is_reported_at_once_with_a_location_for_parse_errors() {
    let yaml = valid_yaml()
        .replacen("server: md}", "server: nope}", 1)
        .replacen("{role: analyst,", "{role: admin,", 1);
    let (ok, text, _) = run_check("bad.yaml", &yaml);
    assert!(!ok);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("error:")).count(),
        2,
        "{text}"
    );

    let (ok, text, _) = run_check(
        "bad.yaml",
        "environment: prod\nservers:\n  md: {stdio: {command: x, bogus: 1}}\n",
    );
    assert!(!ok);
    assert!(text.contains("bad.yaml:3:"), "line number: {text}");
    assert!(text.contains("servers.md.stdio"), "{text}");

    let (ok, text, _) = run_check(
        "bad.json",
        r#"{"environment": "x", "roles": {"a": [], "a": []}}"#,
    );
    assert!(!ok);
    assert!(text.contains("duplicate key `a`"), "{text}");
}

#[test]
fn a_missing_file_is_an_error_not_a_panic() {
    let output = std::process::Command::new(binary())
        .args(["check", "--config", "/nonexistent/catalog.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read file"), "{stderr}");
}

#[test]
fn token_new_prints_a_fresh_token_and_the_entry_holding_its_hash() {
    let run = || {
        let output = std::process::Command::new(binary())
            .args(["token", "new", "--agent", "agent-9", "--role", "analyst"])
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let first = run();
    let token = first
        .lines()
        .find_map(|line| line.strip_prefix("token: "))
        .expect("a token line")
        .to_string();
    assert!(token.starts_with("mcp_") && token.len() == 68, "{token}");
    let entry = format!(
        "  agent-9: {{role: analyst, token_sha256: {}}}",
        sha256_hex(&token)
    );
    assert!(first.contains(&entry), "{first}");
    // The printed entry is a valid catalog entry that accepts the token.
    let yaml = format!("environment: t\nroles: {{analyst: []}}\nagents:\n{entry}\n");
    let (ok, text, _) = run_check("catalog.yaml", &yaml);
    assert!(ok, "{text}");
    assert!(!run().contains(&token), "every token is fresh");

    // An administrator's entry goes under `admins:`.
    let output = std::process::Command::new(binary())
        .args(["token", "new", "--admin", "ops"])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .unwrap();
    assert!(text.contains("under `admins:`"), "{text}");
    assert!(
        text.contains(&format!("  ops: {{token_sha256: {}}}", sha256_hex(token))),
        "{text}"
    );
}

#[test]
fn revocation_and_expiry_are_checked_as_configuration() {
    let (ok, text, _) = run_check(
        "bad.yaml",
        &valid_yaml().replacen("{role: analyst,", "{expires: tomorrow, role: analyst,", 1),
    );
    assert!(!ok);
    assert!(text.contains("agents.a1.expires"), "{text}");
}

/// Each verb's help, and options it must explain (the ones operators
/// reach for: where it listens, what it reads, what it writes).
#[test]
fn every_verb_has_help() {
    for (verb, explains) in [
        (
            &["--help"][..],
            &["serve", "check", "--follow-symlinks", "--log-level"][..],
        ),
        (
            &["serve", "--help"],
            &["--listen", "--admin-listen", "--catalog", "--key-file"],
        ),
        (&["check", "--help"], &["--config"]),
        (&["example-server", "--help"], &["--listen", "--jwks"]),
        (
            &["connect", "--help"],
            &["--url", "--token-env", "--listen"],
        ),
        (&["token", "new", "--help"], &["--agent", "--admin"]),
        (&["keys", "rotate", "--help"], &["--config", "--key-file"]),
        (&["policy", "test", "--help"], &["DIR"]),
        (&["policy", "eval", "--help"], &["--config", "--input"]),
        (&["catalog", "push", "--help"], &["--config", "--to"]),
        (&["catalog", "pull", "--help"], &["--from", "--out"]),
    ] {
        let output = std::process::Command::new(binary())
            .args(verb)
            .output()
            .unwrap();
        assert!(output.status.success(), "{verb:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage:"), "{verb:?}: {text}");
        for option in explains {
            assert!(
                text.contains(option),
                "{verb:?} does not explain {option}: {text}"
            );
        }
    }
}

/// Expect `check` to refuse each catalog, naming its path and message.
fn assert_each_invalid(cases: &[(String, &str, &str)]) {
    for (yaml, path, message) in cases {
        let (ok, text, _) = run_check("bad.yaml", yaml);
        assert!(!ok, "accepted: {yaml}");
        assert!(text.contains(path), "no path {path:?}: {text}");
        assert!(text.contains(message), "no message {message:?}: {text}");
    }
}

#[test]
fn identity_and_credential_mistakes_are_reported_precisely() {
    let issuer = "identity:\n  issuers:\n    corp:\n      issuer: https://login.corp.test\n      audience: https://mcp.corp.test/mcp\n";
    let with = |extra: &str| format!("{}{extra}", valid_yaml());
    let cases: &[(String, &str, &str)] = &[
        (
            with(&issuer.replace("audience: https://mcp.corp.test/mcp\n", "")),
            "identity.issuers.corp.audience",
            "tokens for other audiences must be refused",
        ),
        (
            with(&format!("{issuer}      algorithms: [RS256, HS256]\n")),
            "identity.issuers.corp.algorithms",
            "unknown variant `HS256`",
        ),
        (
            with(&format!("{issuer}      algorithms: [none]\n")),
            "identity.issuers.corp.algorithms",
            "unknown variant `none`",
        ),
        (
            with(&issuer.replace("https://login.corp.test", "http://login.corp.test")),
            "identity.issuers.corp.issuer",
            "http:// only on loopback",
        ),
        (
            with(&format!(
                "{issuer}      role: {{claim: groups, map: {{desk: admin}}}}\n"
            )),
            "identity.issuers.corp.role.map.desk",
            "unknown role `admin`",
        ),
        (
            with("credentials:\n  ttl: 1h\n"),
            "credentials.ttl",
            "between 1s and 5m",
        ),
        (
            with("credentials:\n  algorithm: HS256\n"),
            "credentials.algorithm",
            "unknown variant `HS256`",
        ),
        (
            valid_yaml().replace(
                "    timeout: 5s\n",
                "    timeout: 5s\n    credential: {provider: static}\n",
            ),
            "servers.ex.credential",
            "exactly one of `env` and `file`",
        ),
        (
            valid_yaml().replace(
                "    timeout: 5s\n",
                "    timeout: 5s\n    credential: {provider: magic}\n",
            ),
            "servers.ex.credential",
            "unknown variant `magic`",
        ),
        (
            valid_yaml().replace(
                "http: {url: \"http://127.0.0.1:9/mcp\"}",
                "http: {url: \"http://127.0.0.1:9/mcp\", headers: {Authorization: Bearer x}}",
            ),
            "servers.ex.http.headers.Authorization",
            "set `credential` instead",
        ),
    ];
    assert_each_invalid(cases);
    let (ok, text, _) = run_check("ok.yaml", &with(issuer));
    assert!(ok, "{text}");
}

#[test]
fn aws_sts_mistakes_are_reported_precisely() {
    let sts = |fields: &str| {
        valid_yaml().replace(
            "    timeout: 5s\n",
            &format!("    timeout: 5s\n    credential: {{provider: aws-sts, {fields}}}\n"),
        )
    };
    let good = r#"role_arn: "arn:aws:iam::123456789012:role/mcp", region: us-east-1"#;
    let cases: &[(String, &str, &str)] = &[
        (
            sts(
                r#"role_arn: "arn:aws:iam::123456789012:user/bob", region: us-east-1, sign: sigv4"#,
            ),
            "servers.ex.credential.role_arn",
            "must be an IAM role ARN",
        ),
        (
            sts(
                r#"role_arn: "arn:aws:iam::123456789012:role/mcp", region: "US East", sign: sigv4"#,
            ),
            "servers.ex.credential.region",
            "must be an AWS region",
        ),
        (
            sts(&format!(
                "{good}, sign: sigv4, endpoint_url: \"http://sts.example.com\""
            )),
            "servers.ex.credential.endpoint_url",
            "http:// to a loopback host",
        ),
        (
            sts(&format!(
                "{good}, sign: sigv4, session_policy: \"{{not json\""
            )),
            "servers.ex.credential.session_policy",
            "is not JSON once filled in",
        ),
        (
            sts(&format!("{good}, sign: sigv4, deliver: headers")),
            "servers.ex.credential",
            "set one of `sign` and `deliver`, not both",
        ),
        (
            sts(good),
            "servers.ex.credential",
            "an HTTP server needs `sign: sigv4` or `deliver: headers`",
        ),
        (
            sts(&format!("{good}, deliver: headers, service: lambda")),
            "servers.ex.credential.service",
            "only applies with `sign: sigv4`",
        ),
        (
            sts(&format!("{good}, sign: sigv5")),
            "servers.ex.credential",
            "unknown variant `sigv5`",
        ),
    ];
    assert_each_invalid(cases);
    let (ok, text, _) = run_check(
        "ok.yaml",
        &sts(&format!("{good}, sign: sigv4, service: lambda")),
    );
    assert!(ok, "{text}");
}

#[test]
fn a_resource_prefix_must_be_in_normal_form() {
    let servers =
        "  research:\n    stdio: {command: \"$SELF\", args: [example-server, research]}\n";
    for (prefix, problem) in [
        (
            "Research://notes/",
            "must be in normal form: `research://notes/`",
        ),
        (
            "research://notes/a/../",
            "must be in normal form: `research://notes/`",
        ),
        ("research://notes/%2f", "encoded slash"),
    ] {
        let text = format!(
            "{}resources:\n  notes: {{server: research, uri_prefix: \"{prefix}\"}}\n",
            crate::common::catalog(servers, "", &[])
        );
        let (ok, output, _) = run_check("catalog.yaml", &text);
        assert!(!ok, "{prefix}: {output}");
        assert!(output.contains("resources.notes.uri_prefix"), "{output}");
        assert!(output.contains(problem), "{prefix}: {output}");
    }
}

/// The block scalar under `key: |` in `text`, its indentation removed.
fn block(text: &str, key: &str) -> String {
    let start = text.find(&format!("  {key}: |\n")).expect("the key") + key.len() + 6;
    let lines = text[start..]
        .lines()
        .take_while(|line| line.is_empty() || line.starts_with("    "));
    lines
        .map(|line| format!("{}\n", line.get(4..).unwrap_or("")))
        .collect()
}

#[test]
fn the_kubernetes_example_catalog_and_policy_pass_check() {
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kubernetes/control-plane.yaml"
    );
    let manifest = std::fs::read_to_string(manifest).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signing-key.pem");
    let catalog = block(&manifest, "catalog.yaml").replace(
        "/etc/mcp-control-plane/signing/signing-key.pem",
        key.to_str().unwrap(),
    );
    std::fs::write(dir.path().join("catalog.yaml"), catalog).unwrap();
    std::fs::write(
        dir.path().join("policy.rego"),
        block(&manifest, "policy.rego"),
    )
    .unwrap();
    let output = std::process::Command::new(binary())
        .args(["check", "--config"])
        .arg(dir.path().join("catalog.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("policy compiles"), "{text}");
    assert!(!text.contains("warning"), "{text}");
}

#[test]
fn a_bad_value_names_its_path_once_and_never_its_content() {
    let yaml = valid_yaml().replacen("timeout: 5s", "timeout: hunter2-secret", 1);
    let (ok, text, _) = run_check("bad.yaml", &yaml);
    assert!(!ok);
    assert_eq!(text.matches("servers.ex.timeout").count(), 1, "{text}");
    assert!(text.contains("expected a duration"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn a_grant_only_an_expose_rule_could_give_is_warned_about() {
    let yaml = "environment: t\npolicy: allow-all\n\
                servers:\n  gh: {stdio: {command: x}, expose: {prefix: \"gh_\"}}\n\
                roles:\n  r: [gh_isue_open]\n";
    let (ok, text, _) = run_check("catalog.yaml", yaml);
    assert!(ok, "{text}");
    assert!(
        text.contains("roles.r.tools[0]: no catalog entry gives the tool `gh_isue_open`"),
        "{text}"
    );
}
