//! A real AWS API on loopback for the cloud IAM tests: `moto_server` from
//! PyPI (installed on first use into its own virtual environment in the
//! build cache), and a recorder in front of its STS that keeps every
//! request and the credentials STS answered with, so a test can count
//! `AssumeRole` calls, read their parameters and check signatures.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

/// The moto release the tests are written against.
const MOTO: &str = "moto[server,dynamodb]==5.2.5";

/// `moto_server`, installed if the machine lacks it.
pub fn moto_server() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let home = std::env::var_os("HOME").expect("HOME");
        let venv = Path::new(&home).join(".cache/mcp-control-plane/moto");
        let bin = venv.join("bin/moto_server");
        if !bin.exists() {
            let made = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .expect("python3 (to make moto's virtual environment)");
            assert!(made.success(), "python3 -m venv: {made}");
            let installed = Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", MOTO])
                .status()
                .expect("pip (to install moto)");
            assert!(installed.success(), "pip install {MOTO}: {installed}");
        }
        bin
    })
}

/// A `moto_server` process on a free loopback port; killed on drop.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub async fn start() -> Self {
        super::install_crypto();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server");
        let url = format!("http://127.0.0.1:{port}");
        let moto = Self { child, url };
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = reqwest::Client::new();
        while http
            .get(format!("{}/moto-api/", moto.url))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "moto_server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }
}

/// One request the recorder passed on, with STS's answer.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The form parameters of the request (`Action`, `RoleSessionName`,
    /// `Tags.member.1.Key`…).
    pub params: HashMap<String, String>,
    pub status: u16,
}

#[derive(Default)]
struct Log {
    requests: Vec<Recorded>,
    /// Access key id -> secret key, from STS's answers.
    secrets: HashMap<String, String>,
}

/// A pass-through to moto that records; stopped (its port closed) on
/// [`StsRecorder::stop`].
#[derive(Clone)]
pub struct StsRecorder {
    log: Arc<Mutex<Log>>,
    pub url: String,
    stop: CancellationToken,
}

struct Forward {
    to: String,
    http: reqwest::Client,
    log: Arc<Mutex<Log>>,
}

impl StsRecorder {
    pub async fn start(moto: &Moto) -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let forward = Arc::new(Forward {
            to: moto.url.clone(),
            http: reqwest::Client::new(),
            log: log.clone(),
        });
        let app = axum::Router::new().fallback(pass).with_state(forward);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await
                .unwrap();
        });
        Self { log, url, stop }
    }

    /// The `AssumeRole` requests so far.
    pub fn assume_roles(&self) -> Vec<Recorded> {
        let log = self.log.lock().unwrap();
        (log.requests.iter())
            .filter(|r| r.params.get("Action").map(String::as_str) == Some("AssumeRole"))
            .cloned()
            .collect()
    }

    /// The secret key STS issued with `access_key_id`.
    pub fn secret_of(&self, access_key_id: &str) -> Option<String> {
        self.log.lock().unwrap().secrets.get(access_key_id).cloned()
    }

    /// Close the port: STS is unreachable from now on.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn pass(
    State(forward): State<Arc<Forward>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let mut request = forward.http.request(method, format!("{}{uri}", forward.to));
    for (name, value) in headers.iter().filter(|(n, _)| *n != "host") {
        request = request.header(name, value);
    }
    let Ok(answer) = request.body(body).send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let content_type = answer.headers().get("content-type").cloned();
    let text = answer.text().await.unwrap_or_default();
    let mut log = forward.log.lock().unwrap();
    if let (Some(key), Some(secret)) = (
        between(&text, "<AccessKeyId>", "</AccessKeyId>"),
        between(&text, "<SecretAccessKey>", "</SecretAccessKey>"),
    ) {
        log.secrets.insert(key.to_owned(), secret.to_owned());
    }
    log.requests.push(Recorded {
        params,
        status: status.as_u16(),
    });
    drop(log);
    let mut response = (StatusCode::from_u16(status.as_u16()).unwrap(), text).into_response();
    if let Some(content_type) = content_type.and_then(|v| v.to_str().ok().map(str::to_owned)) {
        response
            .headers_mut()
            .insert("content-type", content_type.parse().unwrap());
    }
    response
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}
