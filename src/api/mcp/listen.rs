//! Resource updates on `subscriptions/listen` streams (2026-07-28): the
//! resources a stream's filter names are subscribed to through the
//! pipeline, like `resources/subscribe` on a session (each authorized and
//! recorded), and their updates reach the stream under the URI the client
//! asked for. A resource the caller may not read is acknowledged like any
//! other but never subscribed to, its refusal recorded: the stream says
//! nothing of whether it exists.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::{ResourceUpdatedNotification, ServerNotification};
use rmcp::service::{RequestContext, SubscriptionSink};

use super::handler::request_context;
use crate::pipeline::{Pipeline, SubscriptionChange};
use crate::upstream::Subscriber;

/// Subscribe the stream (`stream`, a number no session or other stream
/// has) to each of `uris`; the ones subscribed are returned, to end later.
pub async fn subscribe(
    pipeline: &Pipeline,
    context: &RequestContext<RoleServer>,
    stream: u64,
    uris: &[String],
    sink: &SubscriptionSink,
) -> Vec<String> {
    let mut subscribed = Vec::new();
    for uri in uris {
        let (ctx, who) = request_context(context);
        let (sink, asked) = (sink.clone(), uri.clone());
        let subscriber = Subscriber {
            session: stream,
            deliver: Arc::new(move |mut update| {
                update.uri = asked.clone();
                let sink = sink.clone();
                tokio::spawn(async move {
                    let update = ResourceUpdatedNotification::new(update);
                    let _ = sink
                        .send(ServerNotification::ResourceUpdatedNotification(update))
                        .await;
                });
            }),
        };
        let change = SubscriptionChange::Subscribe(subscriber);
        if pipeline
            .change_subscription(&ctx, who, uri, change)
            .await
            .is_ok()
        {
            subscribed.push(uri.clone());
        }
    }
    subscribed
}

/// End the stream's subscriptions.
pub async fn unsubscribe(
    pipeline: &Pipeline,
    context: &RequestContext<RoleServer>,
    stream: u64,
    uris: &[String],
) {
    for uri in uris {
        let (ctx, who) = request_context(context);
        let change = SubscriptionChange::Unsubscribe { session: stream };
        let _ = pipeline.change_subscription(&ctx, who, uri, change).await;
    }
}
