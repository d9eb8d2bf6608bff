//! `pins`: the lock of pinned tool definitions beside the catalog
//! ([`crate::guardrails::pins`]). Each verb connects to the catalog's
//! servers as `serve` would, reads what they serve now, and compares it with
//! the lock, or writes it there.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::discovery::quarantine;
use crate::guardrails::pins::{self, LockFile, Pinned, Verdict};
use crate::live::Live;
use crate::upstream::Health;

/// Pin tool and prompt definitions, and review changes to them.
#[derive(Debug, Args)]
pub struct PinsArgs {
    #[command(subcommand)]
    pub command: PinsCommand,
}

#[derive(Debug, Subcommand)]
pub enum PinsCommand {
    /// Pin every exposed tool's and prompt's definition as its server
    /// serves it now, replacing the lock beside the catalog
    /// (`catalog.yaml` -> `catalog.pins.yaml`).
    Update(Servers),
    /// Show, per tool and prompt, what its server serves differently from
    /// the lock (a diff of description and schema), what is new and what is
    /// gone. Exits 1 when anything differs, 0 when nothing does.
    Diff(Servers),
    /// Accept what the servers serve now for the tools or prompts NAME
    /// (public names), in the lock.
    Approve {
        #[command(flatten)]
        servers: Servers,
        /// Public tool or prompt names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Which catalog, and how long to wait for its servers.
#[derive(Debug, Args)]
pub struct Servers {
    /// The catalog file; its lock is beside it.
    #[arg(long, short)]
    pub config: PathBuf,
    /// How long to wait for the servers to connect.
    #[arg(long, default_value = "30s", value_parser = humantime_serde::re::humantime::parse_duration)]
    pub timeout: Duration,
}

pub fn run(args: PinsArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(verb(args)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn verb(args: PinsArgs) -> anyhow::Result<ExitCode> {
    let servers = match &args.command {
        PinsCommand::Update(servers) | PinsCommand::Diff(servers) => servers,
        PinsCommand::Approve { servers, .. } => servers,
    };
    let path = LockFile::path_for(&servers.config);
    let served = served(servers).await?;
    match &args.command {
        PinsCommand::Update(_) => {
            let mut lock = LockFile::default();
            for entry in &served {
                lock.pin(
                    entry.kind,
                    &entry.name,
                    &entry.server,
                    &entry.upstream,
                    entry.definition.clone(),
                );
            }
            lock.write(&path)?;
            let tools = served.iter().filter(|e| e.kind == Pinned::Tool).count();
            let prompts = served.len() - tools;
            println!(
                "{}: pinned {tools} tools and {prompts} prompts",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        PinsCommand::Diff(_) => {
            let lock = existing(&path)?;
            let differences = diff(&lock, &served);
            match differences {
                0 => println!("{}: every definition is as pinned", path.display()),
                n => println!("{}: {n} definitions differ from the lock", path.display()),
            }
            Ok(if differences == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        PinsCommand::Approve { names, .. } => {
            let mut lock = existing(&path)?;
            for name in names {
                let entries: Vec<&Served> = served.iter().filter(|e| &e.name == name).collect();
                if entries.is_empty() {
                    bail!("no server serves a tool or prompt `{name}` of this catalog now");
                }
                for entry in entries {
                    lock.pin(
                        entry.kind,
                        name,
                        &entry.server,
                        &entry.upstream,
                        entry.definition.clone(),
                    );
                    println!("approved {name} ({})", entry.server);
                }
            }
            lock.write(&path)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn existing(path: &std::path::Path) -> anyhow::Result<LockFile> {
    LockFile::read(path)?
        .with_context(|| format!("{}: no lock yet; `pins update` writes one", path.display()))
}

/// Print what differs between `lock` and `served`; returns how much.
fn diff(lock: &LockFile, served: &[Served]) -> usize {
    let pinning = pins::Pinning {
        mode: pins::PinningMode::Enforce,
        lock: lock.clone(),
    };
    let mut differences = 0;
    for entry in served {
        let digest = pins::digest(&entry.definition);
        let (name, server) = (&entry.name, &entry.server);
        match pinning.verdict(entry.kind, name, server, &digest) {
            Verdict::Pinned => {}
            Verdict::Unknown => {
                differences += 1;
                println!("+ {name} ({server}): new, not in the lock");
            }
            Verdict::Changed => {
                differences += 1;
                let pinned = &lock.of(entry.kind)[name][server].definition;
                println!("~ {name} ({server}): served differently from its pin");
                print!("{}", pins::diff(pinned, &entry.definition));
            }
        }
    }
    for kind in [Pinned::Tool, Pinned::Prompt] {
        for (name, by_server) in lock.of(kind) {
            for server in by_server.keys() {
                let serving = (served.iter())
                    .any(|e| e.kind == kind && &e.name == name && &e.server == server);
                if !serving {
                    differences += 1;
                    println!("- {name} ({server}): pinned, but not served now");
                }
            }
        }
    }
    differences
}

/// One server's definition of a public tool or prompt, as served now.
struct Served {
    kind: Pinned,
    name: String,
    server: String,
    upstream: String,
    definition: Value,
}

/// What the catalog's servers serve now, for each public tool and prompt.
async fn served(servers: &Servers) -> anyhow::Result<Vec<Served>> {
    let jwks = "http://127.0.0.1/.well-known/jwks.json".to_owned();
    let live = Live::start(&servers.config, None, jwks)?;
    let deadline = Instant::now() + servers.timeout;
    let waiting = |live: &Live| {
        let snapshot = live.current();
        let status = snapshot.upstreams.status();
        !snapshot.upstreams.settled() || status.iter().any(|s| s.state == Health::Connecting)
    };
    while waiting(&live) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    live.expose_again().await;
    let snapshot = live.current();
    for server in snapshot.upstreams.status() {
        if server.state != Health::Ready {
            eprintln!(
                "warning: server `{}` is not connected; nothing of it is read",
                server.name
            );
        }
    }
    let catalog = &snapshot.catalog;
    let mut served = Vec::new();
    let routes = (catalog.tools().map(|r| (Pinned::Tool, r)))
        .chain(catalog.prompts().map(|r| (Pinned::Prompt, r)));
    for (kind, route) in routes {
        let definitions = quarantine::served(catalog, &snapshot.upstreams, kind, route);
        for (server, upstream, definition) in definitions {
            served.push(Served {
                kind,
                name: route.public_name.to_string(),
                server: server.to_string(),
                upstream: upstream.to_string(),
                definition,
            });
        }
    }
    live.pool().shutdown();
    served.sort_by(|a, b| (&a.name, &a.server).cmp(&(&b.name, &b.server)));
    Ok(served)
}
