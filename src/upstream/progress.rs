//! Progress notifications from upstreams, routed back to the call that asked
//! for them.
//!
//! Each upstream session stamps its own progress token on every request it
//! sends; a call that wants progress registers where notifications carrying
//! that token go. Each server has its own router, since tokens are only
//! unique within one session. The session's client handler looks the token
//! up and forwards. The front door renames the notifications to the
//! client's own token, so an upstream never learns a client's token and a
//! client never sees another's progress.

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use tokio::sync::mpsc::UnboundedSender;

use super::in_flight::InFlight;

/// Where a call's progress notifications go.
pub type ProgressSink = UnboundedSender<ProgressNotificationParam>;

/// The calls that asked for progress, by the token their request carries.
pub type ProgressRouter = InFlight<ProgressToken, ProgressSink>;

/// Forward one upstream notification to its call, if that call still waits.
pub fn forward(router: &ProgressRouter, params: ProgressNotificationParam) {
    router.with(|sinks| {
        if let Some(sink) = sinks.get(&params.progress_token) {
            let _ = sink.send(params);
        }
    });
}
