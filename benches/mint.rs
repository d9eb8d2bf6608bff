//! The cost of minting one per-call credential: the hot-path work the
//! control plane adds to every upstream call with the default provider.
//!
//! `cargo bench --bench mint` (and SigV4 signing, for `aws-sts` servers)

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_control_plane::config::KeyAlgorithm;
use mcp_control_plane::credentials::mint::{Grant, KeySource, Minter};
use mcp_control_plane::credentials::sigv4::{AwsCredentials, Signing};

fn mint(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let grant = Grant {
        agent: "trader-bot",
        role: "trader",
        server: "execution",
        scope: "execute_trade",
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
    };
    for (name, algorithm) in [
        ("EdDSA", KeyAlgorithm::EdDSA),
        ("ES256", KeyAlgorithm::ES256),
    ] {
        let source = KeySource {
            path: dir.path().join(format!("{name}.pem")),
            algorithm,
        };
        let minter = Minter::open("mcp-control-plane", Duration::from_secs(60), source).unwrap();
        c.bench_function(&format!("mint one credential ({name})"), |b| {
            b.iter(|| minter.mint(std::hint::black_box(&grant)))
        });
    }
}

/// The cost of signing one request to an `aws-sts` server with SigV4 (a
/// 1 KiB JSON-RPC body), once its credentials are cached.
fn sigv4(c: &mut Criterion) {
    let credentials = AwsCredentials {
        access_key_id: "ASIAEXAMPLEEXAMPLE00".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: "FwoGZXIvYXdzE".repeat(20),
        expiration: "2026-12-03T10:00:00Z".into(),
    };
    let signing = Signing {
        region: "us-east-1",
        service: "execute-api",
    };
    let body = vec![b'x'; 1024];
    let uri = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/mcp";
    c.bench_function("sign one request (SigV4, 1 KiB body)", |b| {
        b.iter(|| signing.sign(&credentials, "POST", uri, std::hint::black_box(&body)))
    });
}

criterion_group!(benches, mint, sigv4);
criterion_main!(benches);
