//! HAProxy in front of replicas of the control plane, configured from the
//! shipped example (`deploy/haproxy/haproxy.cfg`) with the test's ports,
//! and health checks fast enough for a test. HAProxy is a Debian package:
//! installed on first use if the machine lacks it.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use super::{Background, ControlPlane, free_port};

const BINARY: &str = "/usr/sbin/haproxy";

/// HAProxy's path, installing it with apt if need be.
pub fn binary() -> &'static str {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if Path::new(BINARY).exists() {
            return;
        }
        let status = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "haproxy"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .expect("apt-get (to install haproxy)");
        assert!(status.success(), "apt-get install haproxy: {status}");
    });
    BINARY
}

/// A running HAProxy, stopped on drop.
pub struct Balancer {
    _process: Background,
    _dir: tempfile::TempDir,
    pub url: String,
}

impl Balancer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

/// HAProxy in round robin over `replicas`, once it sees all of them up.
pub async fn haproxy(replicas: &[&ControlPlane]) -> Balancer {
    let example = include_str!("../../../deploy/haproxy/haproxy.cfg");
    let port = free_port();
    let mut config: String = (example.lines())
        .filter(|line| !line.trim_start().starts_with("server "))
        .map(|line| match line.trim_start() {
            l if l.starts_with("bind ") => format!("    bind 127.0.0.1:{port}\n"),
            // Within a test process's file limit.
            l if l.starts_with("maxconn ") => "    maxconn 256\n".to_owned(),
            l if l.starts_with("default-server ") => {
                "    default-server inter 100ms fall 1 rise 1\n".to_owned()
            }
            _ => format!("{line}\n"),
        })
        .collect();
    for (i, replica) in replicas.iter().enumerate() {
        let address = replica.url("").trim_start_matches("http://").to_owned();
        config.push_str(&format!("    server cp{i} {address} check\n"));
    }
    assert!(
        config.contains(&format!("bind 127.0.0.1:{port}")),
        "{config}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("haproxy.cfg");
    std::fs::write(&file, &config).unwrap();
    let log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
    let process =
        Background::spawn_logging(Command::new(binary()).arg("-db").arg("-f").arg(&file), log);
    let balancer = Balancer {
        _process: process,
        _dir: dir,
        url: format!("http://127.0.0.1:{port}"),
    };
    // Every replica answers through it (round robin: as many in a row).
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let mut up = 0;
        for _ in replicas {
            let answer = http.get(balancer.url("/healthz")).send().await;
            up += usize::from(answer.is_ok_and(|a| a.status().is_success()));
        }
        if up == replicas.len() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(balancer._dir.path().join("haproxy.log"));
            panic!("haproxy does not see every replica up; its log: {log:?}\n{config}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    balancer
}
