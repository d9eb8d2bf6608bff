//! Telling an upstream to stop a request whose caller went away (a
//! timeout, the client's cancellation or hang-up, a parked call that was
//! never resumed), as `notifications/cancelled`.

use rmcp::model::{CancelledNotificationParam, RequestId};
use rmcp::service::{Peer, RoleClient};

/// Cancels `request` upstream when dropped, unless disarmed first.
pub struct CancelOnDrop {
    peer: Peer<RoleClient>,
    request: Option<RequestId>,
}

impl CancelOnDrop {
    pub fn new(peer: &Peer<RoleClient>, request: RequestId) -> Self {
        Self {
            peer: peer.clone(),
            request: Some(request),
        }
    }

    /// The request was answered: nothing to cancel.
    pub fn disarm(&mut self) {
        self.request = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(request_id) = self.request.take() else {
            return;
        };
        let peer = self.peer.clone();
        tokio::spawn(async move {
            let params = CancelledNotificationParam::new(
                Some(request_id),
                Some("the caller abandoned the request".into()),
            );
            let _ = peer.notify_cancelled(params).await;
        });
    }
}
