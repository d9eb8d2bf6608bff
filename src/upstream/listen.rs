//! What a server on the 2026-07-28 revision says between calls: list
//! changes and resource updates come on a `subscriptions/listen` stream the
//! client opens, not on the session. The supervisor keeps one open per such
//! server, asking for every list change and for the resources clients are
//! subscribed to, and opens it again with a new filter when those change.

use std::convert::Infallible;
use std::time::Duration;

use rmcp::model::{ErrorCode, ServerNotification, SubscriptionFilter, SubscriptionFilterBuilder};
use rmcp::service::{Peer, RoleClient, ServiceError};

use super::Upstream;

/// How long to wait before opening a stream again after one failed.
const RETRY: Duration = Duration::from_secs(1);

/// Whether the session with `peer` is on the 2026-07-28 revision (or
/// newer), whose requests each carry their client's metadata and whose
/// server speaks between calls only on listen streams.
pub fn per_request_metadata(peer: &Peer<RoleClient>) -> bool {
    (peer.peer_info()).is_some_and(|info| {
        info.protocol_version.as_str() >= rmcp::model::ProtocolVersion::V_2026_07_28.as_str()
    })
}

/// What to ask the server for: what it says it can tell (its list-changed
/// and subscribe capabilities), and of the resources, those subscribed to.
fn filter(upstream: &Upstream, peer: &Peer<RoleClient>) -> Option<SubscriptionFilter> {
    let capabilities = peer.peer_info()?.capabilities.clone();
    let changes = |declared: Option<Option<bool>>| declared.flatten() == Some(true);
    let tools = changes(capabilities.tools.map(|t| t.list_changed));
    let prompts = changes(capabilities.prompts.map(|p| p.list_changed));
    let resources = capabilities.resources.unwrap_or_default();
    let (listed, subscribe) = (
        resources.list_changed == Some(true),
        resources.subscribe == Some(true),
    );
    if !(tools || prompts || listed || subscribe) {
        return None;
    }
    let mut filter = SubscriptionFilter::builder();
    for (declared, add) in [
        (
            tools,
            SubscriptionFilterBuilder::tools_list_changed as fn(_) -> _,
        ),
        (prompts, SubscriptionFilterBuilder::prompts_list_changed),
        (listed, SubscriptionFilterBuilder::resources_list_changed),
    ] {
        if declared {
            filter = add(filter);
        }
    }
    if subscribe {
        filter = filter.resource_subscriptions(upstream.client.subscriptions.uris());
    }
    Some(filter.build())
}

/// Keep a listen stream open on `peer` for as long as the session lives
/// (the supervisor drops this future when it ends). A server that can tell
/// nothing, or has no `subscriptions/listen`, is not asked again.
pub async fn keep_listening(upstream: &Upstream, peer: &Peer<RoleClient>) -> Infallible {
    let client = &upstream.client;
    let unheard = || {
        client.subscriptions.acknowledge(None);
        std::future::pending()
    };
    loop {
        let generation = client.subscriptions.generation();
        let Some(filter) = filter(upstream, peer) else {
            return unheard().await;
        };
        let mut stream = match peer.listen(filter).await {
            Ok(stream) => {
                client.subscriptions.acknowledge(Some(generation));
                stream
            }
            Err(ServiceError::McpError(error)) if error.code == ErrorCode::METHOD_NOT_FOUND => {
                tracing::warn!(server = %upstream.spec.name, "the server has no subscriptions/listen: its list changes are not heard");
                return unheard().await;
            }
            Err(error) => {
                tracing::warn!(server = %upstream.spec.name, %error, "cannot open a listen stream");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        loop {
            let notification = tokio::select! {
                notification = stream.next() => notification,
                // New subscriptions: open the stream again with them.
                _ = client.subscriptions.changed() => break,
            };
            match notification {
                Ok(Some(
                    ServerNotification::ToolListChangedNotification(_)
                    | ServerNotification::PromptListChangedNotification(_)
                    | ServerNotification::ResourceListChangedNotification(_),
                )) => client.relist.notify_one(),
                Ok(Some(ServerNotification::ResourceUpdatedNotification(update))) => {
                    client.subscriptions.deliver(update.params);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    tracing::debug!(server = %upstream.spec.name, "the listen stream ended");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
    }
}
