//! Keeping a call's progress and log notifications ahead of its answer.
//!
//! A server sends a call's notifications before its answer, on the same
//! stream, and a direct client sees them in that order. rmcp reads them in
//! order too, but hands each notification to a task of its own while the
//! answer goes straight to the waiting request, so the answer can overtake
//! them, and the call's routes are gone when they arrive: the caller loses
//! them. [`Ordered`] wraps a session's transport and counts the progress and
//! log notifications it reads; the session's handler counts those it has
//! routed; a call that takes notifications waits, after its answer, until
//! every one read before that answer has been routed ([`Delivered::settle`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rmcp::model::{
    GetExtensions, GetMeta, JsonRpcMessage, JsonRpcNotification, ServerNotification,
};
use rmcp::service::{RoleClient, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::Notify;

/// How long a call waits for notifications read before its answer. Their
/// handlers only put them on a channel, so this is never reached unless a
/// count goes wrong, which must not hold a call up for long.
const SETTLE_LIMIT: Duration = Duration::from_secs(1);

/// The progress and log notifications a server's sessions have read, and
/// how many of them the handler has routed.
#[derive(Debug, Default)]
pub struct Delivered {
    read: AtomicU64,
    routed: AtomicU64,
    progressed: Notify,
}

/// The mark a counted notification carries to its handler, so only those
/// counted are counted again when routed.
#[derive(Debug, Clone, Copy)]
pub struct Counted;

impl Delivered {
    /// A notification the handler has finished routing; `counted` when the
    /// transport counted it (it carries [`Counted`]).
    pub fn routed(&self, counted: bool) {
        if counted {
            self.routed.fetch_add(1, Ordering::AcqRel);
            self.progressed.notify_waiters();
        }
    }

    /// Wait until every notification read so far has been routed (at most
    /// [`SETTLE_LIMIT`]).
    pub async fn settle(&self) {
        let target = self.read.load(Ordering::Acquire);
        let caught_up = async {
            loop {
                let progressed = self.progressed.notified();
                if self.routed.load(Ordering::Acquire) >= target {
                    return;
                }
                progressed.await;
            }
        };
        if tokio::time::timeout(SETTLE_LIMIT, caught_up).await.is_err() {
            tracing::warn!("notifications read before an answer were not routed in time");
        }
    }
}

/// A session's transport that counts the notifications a call waits for.
pub struct Ordered<T> {
    inner: T,
    delivered: Arc<Delivered>,
}

impl<T> Ordered<T> {
    pub fn new(inner: T, delivered: Arc<Delivered>) -> Self {
        Self { inner, delivered }
    }
}

/// Whether the session routes `notification` to a call: progress and log
/// messages, except those naming a subscription (rmcp may hand those to
/// the subscription's own channel instead of the handler).
fn routed_to_a_call(notification: &JsonRpcNotification<ServerNotification>) -> bool {
    let inner = &notification.notification;
    matches!(
        inner,
        ServerNotification::ProgressNotification(_)
            | ServerNotification::LoggingMessageNotification(_)
    ) && inner.get_meta().subscription_id().is_none()
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for Ordered<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let mut message = self.inner.receive().await?;
        if let JsonRpcMessage::Notification(notification) = &mut message
            && routed_to_a_call(notification)
        {
            notification.notification.extensions_mut().insert(Counted);
            self.delivered.read.fetch_add(1, Ordering::AcqRel);
        }
        Some(message)
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settle_waits_for_what_was_read_and_only_that() {
        let delivered = Arc::new(Delivered::default());
        delivered.read.fetch_add(2, Ordering::AcqRel);
        let waiting = tokio::spawn({
            let delivered = delivered.clone();
            async move { delivered.settle().await }
        });
        delivered.routed(true);
        delivered.routed(false);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "one of two is still on its way");
        delivered.routed(true);
        waiting.await.unwrap();
    }
}
