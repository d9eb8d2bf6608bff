//! One supervisor task per upstream server: connect, publish the connection,
//! watch it (an MCP `ping` every `ping_interval`, so a server that hangs
//! is noticed before a call finds out), list its offering again when it
//! says it changed and every `refresh` whatever it says, and reconnect with
//! exponential backoff when it is lost.
//!
//! A server that is down at start-up does not stop the control plane, and a
//! stdio child that dies is simply started again.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rmcp::model::{ClientRequest, Request, RequestNoParam, SubscribeRequestParams};
use rmcp::service::{Peer, RoleClient, ServiceError};
use tokio_util::sync::CancellationToken;

use super::connect::{Session, establish};
use super::{Connection, Health, Offered, Upstream};
use super::{definitions, listen, offered};
use crate::shared::Event;

const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connection that lived this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(10);

pub async fn supervise(upstream: Arc<Upstream>) {
    let shutdown = upstream.stop.clone();
    let name = upstream.spec.name.clone();
    let mut backoff = INITIAL_BACKOFF;
    loop {
        let attempt = tokio::select! {
            attempt = establish(&upstream.spec, upstream.client.clone(), upstream.http.clone()) => attempt,
            _ = shutdown.cancelled() => return,
        };
        match attempt {
            Ok((session, offered)) => {
                let connected_at = Instant::now();
                if watch_connection(&upstream, session, offered, &shutdown).await == Exit::Shutdown
                {
                    return;
                }
                if connected_at.elapsed() >= STABLE_AFTER {
                    backoff = INITIAL_BACKOFF;
                }
                upstream.publish(Connection::down("connection_lost"));
            }
            Err(error) => {
                tracing::warn!(server = %name, %error, retry_in = ?backoff, "upstream connection failed");
                upstream.publish(Connection::down(error.kind()));
                upstream.first_attempt_done.store(true, Ordering::Release);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Exit {
    Lost,
    Shutdown,
}

/// Publish a live session and watch it until it ends. When the server says
/// its tools, prompts or resources changed, list them again and publish.
async fn watch_connection(
    upstream: &Upstream,
    session: Session,
    offered: Offered,
    shutdown: &CancellationToken,
) -> Exit {
    let name = &upstream.spec.name;
    let peer = session.peer().clone();
    let lost = CancellationToken::new();
    let publish = |offered: Offered| {
        report_missing_tools(upstream, &offered);
        definitions::store(upstream, &offered);
        upstream.publish(Connection {
            health: Health::Ready,
            peer: Some(peer.clone()),
            offered: Arc::new(offered),
            last_error: None,
            lost: lost.clone(),
        });
    };
    let fresh_for = offered.fresh_for;
    publish(offered);
    upstream.first_attempt_done.store(true, Ordering::Release);
    tracing::info!(server = %name, "upstream connected");
    // A 2026-07-28 server speaks between calls on a listen stream (which
    // also subscribes); an initialize-era one on the session.
    let modern = listen::per_request_metadata(&peer);
    if !modern {
        renew_subscriptions(upstream, &peer).await;
    }
    let listening = async {
        match modern {
            true => match listen::keep_listening(upstream, &peer).await {},
            false => std::future::pending::<()>().await,
        }
    };
    let closed = session.waiting();
    tokio::pin!(closed, listening);
    // (Without pings the interval never fires: its arm is off.)
    let every = (upstream.spec.ping_interval).unwrap_or(crate::config::MAX_PING_INTERVAL);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Lists fetched again unasked, to catch what a server changes silently.
    let mut refresh_in = refresh_interval(upstream, fresh_for);
    let refresh = tokio::time::sleep(refresh_in.unwrap_or(crate::config::MAX_PING_INTERVAL));
    tokio::pin!(refresh);
    loop {
        tokio::select! {
            _ = &mut listening => {}
            _ = ping.tick(), if upstream.spec.ping_interval.is_some() => {
                tokio::select! {
                    alive = answers_ping(&peer, upstream.spec.timeout) => if !alive {
                        tracing::warn!(server = %name, "upstream did not answer its health ping; reconnecting");
                        return Exit::Lost;
                    },
                    _ = shutdown.cancelled() => return Exit::Shutdown,
                }
            }
            _ = &mut closed => {
                tracing::warn!(server = %name, "upstream connection closed");
                return Exit::Lost;
            }
            _ = lost.cancelled() => {
                tracing::warn!(server = %name, "upstream transport failed; reconnecting");
                return Exit::Lost;
            }
            _ = upstream.client.relist.notified() => {
                let listed = relist(upstream, &peer, &publish, Heard::FromServer).await;
                if listed.is_some() && let Some(shared) = upstream.shared.load_full() {
                    shared.publish(Event::ListChanged { server: name.clone() });
                }
            }
            _ = upstream.heard.notified() => {
                relist(upstream, &peer, &publish, Heard::FromReplica).await;
            }
            () = &mut refresh, if refresh_in.is_some() => {
                let fresh_for = relist(upstream, &peer, &publish, Heard::Nobody).await;
                refresh_in = refresh_interval(upstream, fresh_for.flatten());
                let next = refresh_in.unwrap_or(crate::config::MAX_PING_INTERVAL);
                refresh.as_mut().reset(tokio::time::Instant::now() + next);
            }
            _ = shutdown.cancelled() => return Exit::Shutdown,
        }
    }
}

/// Who said the server's lists changed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Heard {
    /// The server, on this replica's session.
    FromServer,
    /// Another replica, which heard it on its own session.
    FromReplica,
    /// Nobody: the refresh interval came round.
    Nobody,
}

/// List what the server offers again and publish it: always when the
/// server said it changed, only if it differs when another replica did
/// (this replica's session may have said so already) or on a refresh.
/// `None` when it could not list; else how long the server said the lists
/// stay fresh.
async fn relist(
    upstream: &Upstream,
    peer: &Peer<RoleClient>,
    publish: &impl Fn(Offered),
    heard: Heard,
) -> Option<Option<Duration>> {
    let name = &upstream.spec.name;
    match offered::list(peer, upstream.spec.max_tools).await {
        Ok(offered) => {
            let fresh_for = offered.fresh_for;
            if heard == Heard::FromServer || *upstream.state.load().offered != offered {
                tracing::info!(server = %name, "upstream offering changed");
                publish(offered);
            }
            Some(fresh_for)
        }
        Err(error) => {
            tracing::warn!(server = %name, %error, "cannot list the changed offering");
            None
        }
    }
}

/// When to list again unasked: every `refresh`, or sooner where the server
/// said its lists stay fresh for less (`ttlMs`, never under a second).
/// `None` (a `refresh` of `0s`): never.
fn refresh_interval(upstream: &Upstream, fresh_for: Option<Duration>) -> Option<Duration> {
    let fresh_for = fresh_for.map(|ttl| ttl.max(crate::config::MIN_REFRESH));
    let every = upstream.spec.refresh?;
    Some(fresh_for.map_or(every, |ttl| every.min(ttl)))
}

/// Whether the server answers a `ping` within `timeout`. An error answer
/// is an answer: the server is there.
async fn answers_ping(peer: &Peer<RoleClient>, timeout: Duration) -> bool {
    let ping = peer.send_request(ClientRequest::PingRequest(RequestNoParam::default()));
    matches!(
        tokio::time::timeout(timeout, ping).await,
        Ok(Ok(_) | Err(ServiceError::McpError(_)))
    )
}

/// Subscribe the new session to every URI clients are still subscribed to:
/// a session that ended took its subscriptions with it. (`resources/subscribe`
/// is the initialize era's; a 2026-07-28 upstream refuses it, which is
/// logged.)
async fn renew_subscriptions(upstream: &Upstream, peer: &Peer<RoleClient>) {
    for uri in upstream.client.subscriptions.uris() {
        let params = SubscribeRequestParams::new(uri.as_str());
        let renewed = peer.send_request(ClientRequest::SubscribeRequest(Request::new(params)));
        match tokio::time::timeout(upstream.spec.timeout, renewed).await {
            Ok(Ok(_)) => {
                tracing::info!(server = %upstream.spec.name, %uri, "resource subscription renewed")
            }
            Ok(Err(error)) => {
                tracing::warn!(server = %upstream.spec.name, %uri, %error, "cannot renew a resource subscription")
            }
            Err(_) => {
                tracing::warn!(server = %upstream.spec.name, %uri, "renewing a resource subscription timed out")
            }
        }
    }
}

fn report_missing_tools(upstream: &Upstream, offered: &Offered) {
    if offered.tools_held_back > 0 {
        tracing::warn!(
            server = %upstream.spec.name,
            held_back = offered.tools_held_back,
            max_tools = upstream.spec.max_tools,
            "the server offers more tools than its max_tools; the rest are held back"
        );
    }
    for (public, upstream_name) in upstream.catalog_tools.load().iter() {
        if !offered.tools.contains_key(&**upstream_name) {
            tracing::warn!(
                server = %upstream.spec.name,
                tool = %public,
                upstream_tool = %upstream_name,
                "catalog tool is not offered by its server; it is unavailable"
            );
        }
    }
}
