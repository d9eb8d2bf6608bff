//! Requests recorded at the edge of the path: refused before they could
//! enter it (a malformed body, a connection without a credential), and
//! reads of the audit trail itself.

use std::sync::Arc;

use super::stages::record::{explain, open, settle};
use super::{CallContext, Pipeline, PipelineError};
use crate::audit::AuditError;
use crate::audit::query::{Filter, Page};
use crate::audit::record::excerpt;
use crate::identity::{self, Caller, Presented};
use crate::policy::NotPermitted;
use crate::vocabulary::{Action, Outcome};

impl Pipeline {
    /// Record a request its front door refused before it could enter the
    /// pipeline (a malformed body), attributing it to the caller when the
    /// credential is valid, with the name it asked for (an excerpt) if it
    /// named one. Returns the error for the front door to send.
    pub async fn reject(
        &self,
        ctx: &CallContext,
        action: Action,
        who: Presented<'_>,
        named: Option<&str>,
        error: PipelineError,
    ) -> PipelineError {
        let snapshot = self.live.current();
        let mut audit = open(&self.audit, ctx, &snapshot, action);
        audit.record_mut().tool = named.map(excerpt);
        let error = match error {
            // Refused for its credential: nothing to authenticate.
            PipelineError::Unauthenticated(_) => error,
            _ => match snapshot.authenticate(who).await {
                Ok(caller) => {
                    let record = audit.record_mut();
                    record.agent_id = Some(caller.agent_id);
                    record.role = Some(caller.role);
                    error
                }
                // A body too large or an ambiguous head is refused as such,
                // whoever sent it.
                Err(_) if error.precedes_authentication() => error,
                Err(unauthenticated) => unauthenticated.into(),
            },
        };
        explain(&mut audit, &error);
        match audit.finish(error.outcome()).await {
            Ok(()) => error,
            Err(failed) => PipelineError::AuditUnavailable(failed),
        }
    }

    /// Authenticate a connection-level request (an HTTP request to `/mcp`)
    /// before any message in it is read. Only a refusal is recorded: the
    /// messages inside an admitted request are recorded one by one.
    pub async fn admit_connection(
        &self,
        ctx: &CallContext,
        token: Option<&str>,
    ) -> Result<Caller, PipelineError> {
        let snapshot = self.live.current();
        let error = match snapshot
            .identity
            .authenticate(&snapshot.catalog, token)
            .await
        {
            Ok(caller) => return Ok(caller),
            Err(error) => PipelineError::from(error),
        };
        let audit = open(&self.audit, ctx, &snapshot, Action::Connect);
        settle(audit, error.outcome(), Err(error)).await
    }

    /// Read the audit trail for an administrator (the catalog's `admins`,
    /// never an agent). Every read, and every refused attempt, is recorded
    /// first, as `admin_query`, with the query as asked (`query`); the
    /// filter is what the front door made of it.
    pub async fn read_audit(
        &self,
        ctx: &CallContext,
        token: Option<&str>,
        query: &str,
        filter: Result<Filter, String>,
    ) -> Result<Page, PipelineError> {
        let snapshot = self.live.current();
        let admin = match identity::authenticate_admin(&snapshot.catalog, token) {
            Ok(admin) => admin,
            Err(error) => {
                // An agent's valid token is no admin token: forbidden, not unknown.
                let agent = snapshot.authenticate(Presented::Bearer(token)).await.ok();
                let refusal: PipelineError = match &agent {
                    Some(_) => NotPermitted::by_role("audit trail").into(),
                    None => error.into(),
                };
                let reader = agent.map(|caller| caller.agent_id);
                self.record_admin_query(ctx, reader, query, refusal.outcome())
                    .await?;
                return Err(refusal);
            }
        };
        self.read_audit_as(ctx, admin, query, filter).await
    }

    /// Read the audit trail for `admin`, already verified (a console
    /// session): recorded first, as [`Self::read_audit`] does.
    pub async fn read_audit_as(
        &self,
        ctx: &CallContext,
        admin: Arc<str>,
        query: &str,
        filter: Result<Filter, String>,
    ) -> Result<Page, PipelineError> {
        // A malformed filter or a trail with no store to read is recorded as
        // the bad request it is; a good one before any record leaves.
        let filter = filter
            .map_err(PipelineError::InvalidRequest)
            .and_then(|filter| match self.audit.store() {
                Some(store) => Ok((filter, store)),
                None => Err(PipelineError::InvalidRequest(
                    "no SQLite or PostgreSQL audit sink is configured".into(),
                )),
            });
        let outcome = filter
            .as_ref()
            .map_or_else(PipelineError::outcome, |_| Outcome::Ok);
        self.record_admin_query(ctx, Some(admin), query, outcome)
            .await?;
        let (filter, store) = filter?;
        store.query(&filter).await.map_err(|problem| {
            tracing::error!(%problem, "audit query failed");
            PipelineError::AuditUnavailable(AuditError::Unavailable)
        })
    }

    /// Record a sign-in to the operator's console: the admin it opened, or
    /// (refused) none. Only a recorded sign-in opens a session.
    pub async fn record_sign_in(
        &self,
        ctx: &CallContext,
        admin: Option<Arc<str>>,
        outcome: Outcome,
    ) -> Result<(), PipelineError> {
        let snapshot = self.live.current();
        let mut audit = open(&self.audit, ctx, &snapshot, Action::SignIn);
        let record = audit.record_mut();
        record.role = admin.is_some().then(|| Arc::from("admin"));
        record.agent_id = admin;
        record.tool = Some(Arc::from("ui/login"));
        settle(audit, outcome, Ok(())).await
    }

    /// Record a read of the audit trail: who (an admin id, or the refused
    /// caller's agent id), filtered how, with what outcome.
    async fn record_admin_query(
        &self,
        ctx: &CallContext,
        reader: Option<Arc<str>>,
        query: &str,
        outcome: Outcome,
    ) -> Result<(), PipelineError> {
        let snapshot = self.live.current();
        let mut audit = open(&self.audit, ctx, &snapshot, Action::AdminQuery);
        let record = audit.record_mut();
        record.role = reader.is_some().then(|| Arc::from("admin"));
        record.agent_id = reader;
        record.tool = Some(excerpt(&format!("admin/audit?{query}")));
        record.label = Some(Arc::from("admin/audit"));
        settle(audit, outcome, Ok(())).await
    }
}
