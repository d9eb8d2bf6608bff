//! The quarantine of tools and prompts whose definition is not as pinned
//! ([`crate::discovery::quarantine`]), as events: each time what a server
//! serves, or the catalog in force, changes, the set is worked out again;
//! a name newly quarantined is logged as a warning and recorded in the
//! audit trail (action `quarantine`, outcome `quarantined`, the verdict in
//! `reasons`), and one released (approved, or served as pinned again) is
//! logged and recorded with outcome `ok`.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use super::stages::record::open;
use super::{CallContext, Pipeline, PipelineError};
use crate::discovery::quarantine::{self, Quarantined};
use crate::guardrails::pins::Verdict;
use crate::vocabulary::{Action, FrontDoor, Outcome};

impl Pipeline {
    /// Until the process ends: record each change of the quarantine.
    pub async fn follow_quarantine(self: Arc<Self>) {
        let mut changes = self.live.pool().changes();
        let mut swaps = self.live.swaps();
        let mut before: Vec<Quarantined> = Vec::new();
        loop {
            let now = self.live.current();
            let quarantined = quarantine::all(&now.catalog, &now.upstreams);
            for entry in quarantined.iter().filter(|q| !before.contains(q)) {
                let reason = match entry.verdict {
                    Verdict::Unknown => "not in the lock of pinned definitions",
                    _ => "served differently from its pinned definition",
                };
                tracing::warn!(kind = ?entry.kind, name = %entry.name, server = %entry.server, reason, "quarantined");
                self.record_quarantine(entry, Outcome::Quarantined, reason)
                    .await;
            }
            for entry in before.iter().filter(|q| !quarantined.contains(q)) {
                tracing::info!(kind = ?entry.kind, name = %entry.name, server = %entry.server, "released from quarantine");
                self.record_quarantine(entry, Outcome::Ok, "released: as pinned")
                    .await;
            }
            before = quarantined;
            tokio::select! {
                changed = changes.recv() => if matches!(changed, Err(RecvError::Closed)) { return },
                swapped = swaps.recv() => if matches!(swapped, Err(RecvError::Closed)) { return },
            }
        }
    }

    /// Approve quarantined `name` for `admin` (the console): recorded first
    /// (action `approve`, the admin's id), then put in force.
    pub async fn approve(
        &self,
        admin: Arc<str>,
        name: &str,
    ) -> Result<Vec<Arc<str>>, PipelineError> {
        let ctx = CallContext::new(FrontDoor::Rest, None, None);
        let snapshot = self.live.current();
        let mut audit = open(&self.audit, &ctx, &snapshot, Action::Approve);
        let record = audit.record_mut();
        record.agent_id = Some(admin);
        record.role = Some(Arc::from("admin"));
        record.tool = Some(crate::audit::record::excerpt(name));
        // Durable before anything changes.
        audit
            .intent()
            .await
            .map_err(PipelineError::AuditUnavailable)?;
        let approved = self.live.approve(name).await;
        let (outcome, reasons) = match &approved {
            Ok(servers) => (
                Outcome::Ok,
                vec![format!("approved on {}", servers.join(", "))],
            ),
            Err(error) => (Outcome::BadRequest, vec![error.to_string()]),
        };
        audit.record_mut().reasons = reasons;
        (audit.finish(outcome).await).map_err(PipelineError::AuditUnavailable)?;
        approved.map_err(|error| PipelineError::InvalidRequest(error.to_string()))
    }

    async fn record_quarantine(&self, entry: &Quarantined, outcome: Outcome, reason: &str) {
        let ctx = CallContext::new(FrontDoor::Internal, None, None);
        let snapshot = self.live.current();
        let mut audit = open(&self.audit, &ctx, &snapshot, Action::Quarantine);
        let record = audit.record_mut();
        record.tool = Some(entry.name.clone());
        record.server = Some(entry.server.clone());
        record.reasons = vec![reason.to_owned()];
        if audit.finish(outcome).await.is_err() {
            tracing::error!(name = %entry.name, "the quarantine event could not be recorded");
        }
    }
}
