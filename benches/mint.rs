//! The cost of minting one per-call credential: the hot-path work the
//! control plane adds to every upstream call with the default provider.
//!
//! `cargo bench --bench mint`

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_control_plane::config::KeyAlgorithm;
use mcp_control_plane::credentials::mint::{Grant, KeySource, Minter};

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

criterion_group!(benches, mint);
criterion_main!(benches);
