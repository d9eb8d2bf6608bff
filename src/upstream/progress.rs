//! Progress notifications from upstreams, routed back to the call that asked
//! for them.
//!
//! Each upstream session stamps its own progress token on every request it
//! sends; a call that wants progress registers where notifications carrying
//! that token go. Each server has its own router, since tokens are only
//! unique within one session. The session's client handler looks the token
//! up and forwards. The
//! front door renames the notifications to the client's own token, so an
//! upstream never learns a client's token and a client never sees another's
//! progress.

use std::collections::HashMap;
use std::sync::Mutex;

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use tokio::sync::mpsc::UnboundedSender;

/// Where a call's progress notifications go.
pub type ProgressSink = UnboundedSender<ProgressNotificationParam>;

#[derive(Default)]
pub struct ProgressRouter {
    /// Only calls that asked for progress are here; the lock is held for one
    /// map operation at a time.
    sinks: Mutex<HashMap<ProgressToken, ProgressSink>>,
}

impl ProgressRouter {
    /// Send notifications carrying `token` to `sink` until the returned
    /// guard is dropped.
    pub fn register(&self, token: ProgressToken, sink: ProgressSink) -> Registration<'_> {
        self.lock().insert(token.clone(), sink);
        Registration {
            router: self,
            token,
        }
    }

    /// Forward one upstream notification to its call, if that call still waits.
    pub fn forward(&self, params: ProgressNotificationParam) {
        let sinks = self.lock();
        if let Some(sink) = sinks.get(&params.progress_token) {
            let _ = sink.send(params);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ProgressToken, ProgressSink>> {
        self.sinks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub struct Registration<'a> {
    router: &'a ProgressRouter,
    token: ProgressToken,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.router.lock().remove(&self.token);
    }
}
