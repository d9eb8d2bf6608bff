//! Shared fixtures: the control plane as a real child process on an
//! ephemeral port, and real MCP upstream servers on loopback.

// The test upstream samples through its client (deprecated from 2026-07-28 on).
#![allow(deprecated)]

pub mod aws;
pub mod browser;
pub mod conformance;
pub mod conformance_mrtr;
pub mod conformance_stateless;
pub mod conformance_tasks;
pub mod haproxy;
pub mod hostile;
pub mod installs;
pub mod many;
pub mod openbao;
pub mod relay;
pub mod sigv4;
pub mod tls;
pub mod upstream;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const ANALYST_TOKEN: &str = "analyst-demo-token";
pub const TRADER_TOKEN: &str = "trader-demo-token";

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_mcp-control-plane")
}

pub fn sha256_hex(token: &str) -> String {
    mcp_control_plane::identity::token_sha256_hex(token)
}

pub const TESTER_TOKEN: &str = "tester-token";

/// A catalog with `servers` (YAML text) and a `tester` role using
/// `role_tools`; `agent-42` (the analyst token) has a role with no tools.
pub fn catalog(servers: &str, tools: &str, role_tools: &[&str]) -> String {
    let section = |name: &str, body: &str| {
        if body.is_empty() {
            format!("{name}: {{}}\n")
        } else {
            format!("{name}:\n{body}")
        }
    };
    format!(
        "environment: test\npolicy: allow-all\n{}{}roles:\n  tester: [{}]\n  nobody: []\n\
         agents:\n  tester-1: {{role: tester, token_sha256: {}}}\n  agent-42: {{role: nobody, token_sha256: {}}}\n",
        section("servers", servers),
        section("tools", tools),
        role_tools.join(", "),
        sha256_hex(TESTER_TOKEN),
        sha256_hex(ANALYST_TOKEN),
    )
}

/// How many tests the shipped example's policy has (rules named `test_*`),
/// counted from its files so that adding one breaks no test.
pub fn example_policy_tests() -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trading/policies");
    let rego = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path());
    let rego = rego.filter(|path| path.extension().is_some_and(|e| e == "rego"));
    let texts = rego.map(|path| std::fs::read_to_string(path).unwrap());
    let lines = texts.flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>());
    let count = lines.filter(|line| line.starts_with("test_")).count();
    assert!(count > 0, "the example's policy has tests");
    count
}

/// `catalog` (with `policy: allow-all`) under a Rego policy, written to
/// `dir`, that allows every call except one whose arguments say
/// `deny: true`.
pub fn denying(catalog: &str, dir: &Path) -> String {
    let file = dir.join("deny.rego");
    let rego = "package mcp.authz\n\nallow if not input.arguments.deny\n\n\
                reasons contains \"told to deny\" if input.arguments.deny\n";
    std::fs::write(&file, rego).unwrap();
    let policy = format!("policy: {{files: [\"{}\"]}}\n", file.display());
    assert!(catalog.contains("policy: allow-all\n"));
    catalog.replace("policy: allow-all\n", &policy)
}

/// HTTP clients here (reqwest, rmcp's) need rustls' crypto provider, which
/// the binary installs itself at start-up.
/// A catalog routing the HTTP test upstream at `url` as server `testsrv`,
/// whose `echo` the tester may call.
pub fn echo_catalog(url: &str) -> String {
    let servers = format!("  testsrv:\n    http: {{url: \"{url}\"}}\n");
    catalog(&servers, "  echo: {server: testsrv}\n", &["echo"])
}

pub fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A running control plane process; killed on drop.
pub struct ControlPlane {
    child: Child,
    /// The agents' address.
    pub addr: SocketAddr,
    /// The operators' address (`/metrics`, `/readyz` in detail, `/ui/`,
    /// `/admin/*`).
    pub admin_addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
    /// The catalog file it serves.
    pub config: PathBuf,
    pub http: reqwest::Client,
}

impl ControlPlane {
    /// Write `catalog` to a temporary file and serve it.
    pub fn start(catalog: &str) -> Self {
        Self::start_with_env(catalog, &[])
    }

    /// [`Self::start`], with these environment variables set for it.
    pub fn start_with_env(catalog: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.yaml");
        std::fs::write(&path, catalog).unwrap();
        Self::start_file(&path, dir, env)
    }

    /// Serve the shipped example catalog, from a copy of the example's
    /// directory so its state (signing key, audit store) is this test's own.
    pub fn start_example() -> Self {
        Self::start_example_with(|catalog| catalog.to_owned())
    }

    /// [`Self::start_example`], its catalog changed by `edit` first.
    pub fn start_example_with(edit: impl FnOnce(&str) -> String) -> Self {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trading");
        let dir = tempfile::tempdir().unwrap();
        let catalog = std::fs::read_to_string(example.join("catalog.yaml")).unwrap();
        std::fs::write(dir.path().join("catalog.yaml"), edit(&catalog)).unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        for entry in std::fs::read_dir(example.join("policies")).unwrap() {
            let entry = entry.unwrap().path();
            std::fs::copy(
                &entry,
                dir.path().join("policies").join(entry.file_name().unwrap()),
            )
            .unwrap();
        }
        let path = dir.path().join("catalog.yaml");
        Self::start_file(&path, dir, &[])
    }

    fn start_file(path: &Path, dir: tempfile::TempDir, env: &[(&str, &str)]) -> Self {
        let source = [std::ffi::OsStr::new("--config"), path.as_os_str()];
        Self::start_from(&source, path, dir, env)
    }

    /// Serve the catalog of the DynamoDB table at `url`, written out to
    /// a temporary directory.
    pub fn start_table(url: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("catalog");
        let source = [
            std::ffi::OsStr::new("--catalog"),
            std::ffi::OsStr::new(url),
            std::ffi::OsStr::new("--catalog-dir"),
            mirror.as_os_str(),
        ];
        Self::start_from(&source, &mirror.join("catalog.json"), dir, env)
    }

    /// Serve the catalog `source` names (command-line arguments), which
    /// is the file at `path`.
    fn start_from(
        source: &[&std::ffi::OsStr],
        path: &Path,
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
    ) -> Self {
        installs::test_servers();
        install_crypto();
        let mut child = Command::new(binary())
            .args([
                "--log-format",
                "json",
                "--log-level",
                "info,rmcp=warn",
                "serve",
            ])
            .args(source)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .arg("--key-file")
            .arg(dir.path().join("signing-key.pem"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the control plane");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            // Keep draining whatever comes, so the process never blocks on a full pipe.
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                lines.lock().unwrap().push(text);
                line.clear();
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}; stderr: {stderr:?}"))
            .parse()
            .unwrap();
        let mut second = String::new();
        stdout.read_line(&mut second).unwrap();
        let admin_addr = second
            .trim()
            .strip_prefix("admin listening on ")
            .unwrap_or_else(|| panic!("unexpected second line {second:?}"))
            .parse()
            .unwrap();
        Self {
            child,
            addr,
            admin_addr,
            stderr,
            dir,
            config: path.to_path_buf(),
            http: reqwest::Client::new(),
        }
    }

    /// The signing key of the credentials it mints.
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("signing-key.pem")
    }

    /// The Prometheus text of `/metrics` (on the admin listener).
    pub async fn metrics(&self) -> String {
        let response = (self.http.get(self.admin_url("/metrics")).send().await).unwrap();
        response.text().await.unwrap()
    }

    /// `GET path` (unauthenticated), as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        response.json().await.unwrap()
    }

    /// The `WWW-Authenticate` challenge of a 401 from this control plane.
    pub fn challenge(&self, sent_token: bool) -> String {
        let metadata = self.url("/.well-known/oauth-protected-resource/mcp");
        let error = if sent_token {
            r#", error="invalid_token""#
        } else {
            ""
        };
        format!(r#"Bearer resource_metadata="{metadata}"{error}"#)
    }

    /// Wait (up to `timeout`) until the process has exited by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Send SIGTERM (a graceful shutdown).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `kill -9`, then start again on the same catalog and state.
    pub fn restart(mut self) -> Self {
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        self.kill();
        Self::start_file(&self.config.clone(), dir, &[])
    }

    /// `kill -9`, and wait until the process is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A URL on the agents' address.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A URL on the operators' address.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin_addr, path)
    }

    /// The admin listener's detailed `/readyz`, as JSON.
    pub async fn readyz(&self) -> Value {
        let response = self.http.get(self.admin_url("/readyz")).send().await;
        response.unwrap().json().await.unwrap()
    }

    /// Poll the admin listener's `/readyz` until `pred` holds for its body.
    pub async fn wait_readyz(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.http.get(self.admin_url("/readyz")).send().await
                && let Ok(body) = response.json::<Value>().await
                && pred(&body)
            {
                return body;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until every upstream is connected.
    pub async fn wait_all_ready(&self) -> Value {
        self.wait_readyz("all upstreams ready", |body| {
            body["status"] == "ready"
                && body["servers"]
                    .as_array()
                    .is_some_and(|s| s.iter().all(|s| s["state"] == "ready"))
        })
        .await
    }

    pub async fn get_tools(&self, token: &str, query: &str) -> reqwest::Response {
        self.http
            .get(self.url(&format!("/tools{query}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn invoke(&self, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut request = self.http.post(self.url("/invoke")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Call `tool` through `/invoke` as `token`'s agent: the status and
    /// the body.
    pub async fn call(
        &self,
        token: &str,
        tool: &str,
        payload: Value,
    ) -> (reqwest::StatusCode, Value) {
        let body = serde_json::json!({"action": tool, "payload": payload});
        let response = self.invoke(Some(token), body).await;
        (response.status(), response.json().await.unwrap())
    }

    /// The tools `token`'s agent may see (`GET /tools`), sorted.
    pub async fn tool_names(&self, token: &str) -> Vec<String> {
        let body: Value = self.get_tools(token, "").await.json().await.unwrap();
        let mut names: Vec<String> = (body["tools"].as_array().unwrap().iter())
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    /// Wait until the tools `token`'s agent may see satisfy `pred`.
    pub async fn wait_tools(&self, token: &str, what: &str, pred: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let names = self.tool_names(token).await;
            if pred(&names) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The audit records emitted so far.
    pub fn audit_records(&self) -> Vec<Value> {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|v| v["target"] == "audit")
            .collect()
    }

    /// Wait until `count` audit records match `pred` (records reach us
    /// through the process's stderr, a moment after the response), then
    /// return every matching one.
    pub async fn audit_matching(&self, count: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<Value> = self.audit_records().into_iter().filter(&pred).collect();
            if found.len() >= count || Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait for the audit record of `trace_id`.
    pub async fn audit_record(&self, trace_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<Value> = self
                .audit_records()
                .into_iter()
                .filter(|r| r["trace_id"] == trace_id)
                .collect();
            if !found.is_empty() {
                assert_eq!(
                    found.len(),
                    1,
                    "exactly one audit record per request: {found:?}"
                );
                return found.into_iter().next().unwrap();
            }
            assert!(Instant::now() < deadline, "no audit record for {trace_id}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the control plane stored beside its catalog (the audit
    /// database, spools, keys), as text: to search for what must never be
    /// stored.
    pub fn stored(&self) -> String {
        fn read(dir: &Path, into: &mut String) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    read(&path, into);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    into.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        }
        let mut stored = String::new();
        read(
            &self.config.parent().unwrap().join(".mcp-control-plane"),
            &mut stored,
        );
        assert!(!stored.is_empty(), "nothing stored");
        stored
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Wait until the process has logged `needle`.
    pub async fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.stderr_text().contains(needle) {
            assert!(Instant::now() < deadline, "never logged {needle:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Direct children of the control plane process (its stdio upstreams).
    pub fn child_pids(&self) -> Vec<u32> {
        child_pids_of(self.pid())
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn child_pids_of(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) && state != Some("Z") {
            pids.push(pid);
        }
    }
    pids
}

/// A helper process that prints `listening on ADDR` first; killed on drop.
pub struct Listening {
    child: Child,
    pub addr: SocketAddr,
}

impl Listening {
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("spawn");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .unwrap();
        Self { child, addr }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process stopped (killed) on drop.
pub struct Background(Child);

impl Background {
    pub fn spawn(command: &mut Command) -> Self {
        Self(
            command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn"),
        )
    }

    /// Spawn `command` with its output going to `log`.
    pub fn spawn_logging(command: &mut Command, log: std::fs::File) -> Self {
        let output = log.try_clone().unwrap();
        Self(command.stdout(output).stderr(log).spawn().expect("spawn"))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of the series `name` (with its labels, as printed) in a
/// Prometheus text: a test of a count fails when the series is missing or
/// renamed, not only when it holds another value.
pub fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The text of `page` between the first `start` and the `end` after it
/// (a panic naming the page when either is missing).
pub fn between<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    let after = page
        .split_once(start)
        .unwrap_or_else(|| panic!("no {start:?} in {page}"))
        .1;
    after
        .split_once(end)
        .unwrap_or_else(|| panic!("no {end:?} after {start:?} in {page}"))
        .0
}

/// Run `check` on `catalog` written to a file named `name`.
pub fn run_check(name: &str, catalog: &str) -> (bool, String, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, catalog).unwrap();
    let (ok, text) = check_file(&path);
    (ok, text, path)
}

/// `check --config path`: whether it passed, and what it printed.
pub fn check_file(path: &Path) -> (bool, String) {
    let output = Command::new(binary())
        .arg("check")
        .arg("--config")
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Wait until something takes connections on loopback `port` (a server
/// started as a process, which may compile or load first), at most 60 s.
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listened on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
