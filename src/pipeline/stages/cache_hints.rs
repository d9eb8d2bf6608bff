//! cache_hints: what a forwarded result may say about caching (SEP-2549).
//!
//! Through the control plane, who may read what is decided per agent, so
//! no result it forwards may be `public`: a shared cache would serve it to
//! agents whose role may not read it. On the way back the upstream's scope
//! is narrowed to `private`; its freshness (`ttlMs`) is kept, never
//! lengthened. Lists are built here from the caller's view and are private
//! already.

use futures::future::BoxFuture;
use rmcp::model::{CacheScope, ServerResult};

use crate::pipeline::Exchange;
use crate::pipeline::stage::{Answer, Stage};

pub struct CacheHints;

impl Stage for CacheHints {
    fn name(&self) -> &'static str {
        "cache_hints"
    }

    fn response<'a, 'e>(
        &'a self,
        _exchange: &'a mut Exchange<'e>,
        answer: &'a mut Answer,
    ) -> BoxFuture<'a, ()> {
        narrow(answer);
        Box::pin(std::future::ready(()))
    }
}

/// Make a forwarded result's cache scope `private`.
fn narrow(answer: &mut Answer) {
    if let Ok(ServerResult::ReadResourceResult(result)) = answer {
        result.cache_scope = Some(CacheScope::Private);
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::{ReadResourceResult, ResourceContents};

    use super::*;
    use crate::audit::AuditError;
    use crate::pipeline::PipelineError;

    #[test]
    fn a_forwarded_result_is_never_public_and_keeps_its_freshness() {
        let contents = vec![ResourceContents::text("the desk's notes", "notes://desk/1")];
        for scope in [Some(CacheScope::Public), None, Some(CacheScope::Private)] {
            let mut result = ReadResourceResult::new(contents.clone());
            result.cache_scope = scope;
            result.ttl_ms = Some(60_000);
            let mut answer: Answer = Ok(ServerResult::ReadResourceResult(result));
            narrow(&mut answer);
            let Ok(ServerResult::ReadResourceResult(result)) = answer else {
                panic!("still a read result");
            };
            assert_eq!(result.cache_scope, Some(CacheScope::Private));
            assert_eq!(result.ttl_ms, Some(60_000));
        }
        // A refusal stays what it was.
        let mut refused: Answer = Err(PipelineError::AuditUnavailable(AuditError::Unavailable));
        narrow(&mut refused);
        assert_eq!(
            refused.unwrap_err(),
            PipelineError::AuditUnavailable(AuditError::Unavailable)
        );
    }
}
