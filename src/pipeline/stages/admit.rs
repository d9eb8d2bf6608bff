//! admit: who is calling. The bearer credential is verified against the
//! catalog version of the request (a revoked agent is refused on its next
//! request), and whatever the body asserts about the caller or the
//! deployment must match: the role always comes from the identity.

use futures::future::BoxFuture;

use crate::identity::Caller;
use crate::pipeline::stage::Stage;
use crate::pipeline::{Assertions, Exchange, PipelineError};

pub struct Admit;

impl Stage for Admit {
    fn name(&self) -> &'static str {
        "admit"
    }

    fn request<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
    ) -> BoxFuture<'a, Result<(), PipelineError>> {
        Box::pin(async move {
            let caller = exchange.snapshot.authenticate(exchange.who).await?;
            let record = exchange.record();
            record.agent_id = Some(caller.agent_id.clone());
            record.role = Some(caller.role.clone());
            let environment = &exchange.snapshot.catalog.environment;
            let checked = check_assertions(&exchange.assertions, &caller, environment);
            exchange.caller = Some(caller);
            checked
        })
    }
}

/// Hold what the body asserts against the verified caller and the
/// deployment.
fn check_assertions(
    assertions: &Assertions<'_>,
    caller: &Caller,
    environment: &str,
) -> Result<(), PipelineError> {
    let mismatch = |asserted: Option<&str>, actual: &str| asserted.is_some_and(|a| a != actual);
    if mismatch(assertions.agent_id, &caller.agent_id) {
        return Err(PipelineError::Impersonation("agent_id"));
    }
    if mismatch(assertions.role, &caller.role) {
        return Err(PipelineError::Impersonation("agent_role"));
    }
    if mismatch(assertions.environment, environment) {
        return Err(PipelineError::Impersonation("environment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn caller() -> Caller {
        Caller {
            agent_id: Arc::from("agent-1"),
            role: Arc::from("trader"),
            claims: None,
        }
    }

    #[test]
    fn every_assertion_must_match_the_verified_caller_and_the_deployment() {
        let none = Assertions::default();
        assert_eq!(check_assertions(&none, &caller(), "prod"), Ok(()));
        let same = Assertions {
            agent_id: Some("agent-1"),
            role: Some("trader"),
            environment: Some("prod"),
        };
        assert_eq!(check_assertions(&same, &caller(), "prod"), Ok(()));
        let cases = [
            (
                Assertions {
                    agent_id: Some("agent-2"),
                    ..none
                },
                "agent_id",
            ),
            (
                Assertions {
                    role: Some("admin"),
                    ..none
                },
                "agent_role",
            ),
            (
                Assertions {
                    environment: Some("dev"),
                    ..none
                },
                "environment",
            ),
        ];
        for (asserted, field) in cases {
            assert_eq!(
                check_assertions(&asserted, &caller(), "prod"),
                Err(PipelineError::Impersonation(field))
            );
        }
    }
}
