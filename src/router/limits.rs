//! Rate limits on tool calls: one token bucket per rule and key, with
//! governor's GCRA (no background refill task, one atomic update per
//! check).
//!
//! A rule names a scope (`agent`, `role`, `tool`) and optionally one name.
//! A rule with a name replaces the scope's general rule for that name, so
//! `agent: 20/s` with `agent batch-bot: 200/s` gives `batch-bot` 200/s,
//! not both. Every rule that applies to a call is checked; a call refused
//! by one may still have spent a token of another.
//!
//! Buckets live as long as their rule: a catalog reload keeps the buckets
//! of every rule it leaves unchanged. In memory, per replica.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{Guard, Named};
use crate::config::{LimitRule, LimitScope, Rate, UniqueMap};
use crate::shared::Shared;

/// Keys a bucket holds before idle ones (full again) are dropped: agents
/// from an identity provider are not bounded by the catalog.
const MAX_KEYS: usize = 100_000;
/// How many checks pass between two looks at the number of keys.
const PRUNE_EVERY: u32 = 1024;

/// A call a limit refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rate limit `{limit}` reached; retry in {} s", retry_after_seconds(*.retry_after))]
pub struct RateLimited {
    /// The rule, as the catalog's `limits:` key names it.
    pub limit: Arc<str>,
    /// When the bucket will have a token again.
    pub retry_after: Duration,
}

/// Whole seconds to wait, rounded up (`Retry-After` takes seconds).
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// Who a bucket belongs to: (agent or role or tool, tool of an agent).
type Key = (Arc<str>, Arc<str>);

/// The shared name of `key`'s bucket of rule `name`: a digest (agent ids
/// from an identity provider may be long), which a changed rate changes,
/// so a rule edited anew starts with full buckets, as in memory.
fn shared_key(name: &str, rule: &LimitRule, key: &Key) -> String {
    use sha2::{Digest, Sha256};
    let rate = rule.rate;
    let mut digest = Sha256::new();
    for part in [
        name,
        &format!("{}/{:?}/{}", rate.calls, rate.period, rate.burst),
        &key.0,
        &key.1,
    ] {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    format!("limit:{}", hex::encode(&digest.finalize()[..16]))
}

/// One rule's buckets, a bucket per key.
pub struct Bucket {
    rule: LimitRule,
    limiter: DefaultKeyedRateLimiter<Key>,
    checks: AtomicU32,
}

impl Guard for Bucket {
    type Settings = LimitRule;

    fn new(rule: LimitRule) -> Self {
        let rate = rule.rate;
        let burst = NonZeroU32::new(rate.burst).expect("validation keeps bursts above 0");
        let quota = Quota::with_period(rate.replenish_interval())
            .expect("validation keeps rates above 0")
            .allow_burst(burst);
        Self {
            rule,
            limiter: RateLimiter::keyed(quota),
            checks: AtomicU32::new(0),
        }
    }

    fn settings(&self) -> &LimitRule {
        &self.rule
    }
}

impl Bucket {
    /// Take a token for `key`; a refusal names the rule, `name`.
    fn check(&self, name: &Arc<str>, key: &Key) -> Result<(), RateLimited> {
        let checked = self.limiter.check_key(key);
        if (self.checks.fetch_add(1, Ordering::Relaxed)).is_multiple_of(PRUNE_EVERY)
            && self.limiter.len() > MAX_KEYS
        {
            self.limiter.retain_recent();
        }
        checked.map_err(|not_until| RateLimited {
            limit: name.clone(),
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        })
    }
}

/// The catalog's `limits:`, compiled.
#[derive(Default)]
pub struct Limits {
    /// By `limits:` key.
    buckets: Named<Bucket>,
    /// The unused half of a key.
    none: Arc<str>,
}

/// What a call is, for the limits.
pub struct Call<'a> {
    pub agent: &'a Arc<str>,
    pub role: &'a Arc<str>,
    /// The public tool name.
    pub tool: &'a Arc<str>,
}

impl Limits {
    /// Compile `limits` (validated); the buckets of rules `previous` had
    /// too are kept, with their state.
    pub fn compile(limits: &UniqueMap<String>, previous: Option<&Limits>) -> Self {
        let rules = (limits.iter())
            .filter_map(|(name, value)| Some((name.as_str(), LimitRule::parse(name, value).ok()?)));
        let buckets = Named::compile(rules, previous.map(|p| &p.buckets));
        Self {
            buckets,
            none: Arc::from(""),
        }
    }

    /// Take a token from every bucket that applies to `call`, or say which
    /// refused and when to retry (the longest wait, if several refused).
    pub fn check(&self, call: &Call<'_>) -> Result<(), RateLimited> {
        let mut refused: Option<RateLimited> = None;
        for (name, bucket) in self.buckets.iter() {
            let Some(key) = self.key(bucket, call) else {
                continue;
            };
            if let Err(refusal) = bucket.check(name, &key)
                && refused
                    .as_ref()
                    .is_none_or(|r| r.retry_after < refusal.retry_after)
            {
                refused = Some(refusal);
            }
        }
        refused.map_or(Ok(()), Err)
    }

    /// [`Self::check`], with every replica's buckets in `shared`; where
    /// it cannot answer in time, with this replica's own.
    pub async fn check_shared(&self, call: &Call<'_>, shared: &Shared) -> Result<(), RateLimited> {
        let applying: Vec<(&Arc<str>, &Arc<Bucket>, Key)> = (self.buckets.iter())
            .filter_map(|(name, bucket)| Some((name, bucket, self.key(bucket, call)?)))
            .collect();
        if applying.is_empty() {
            return Ok(());
        }
        let keys: Vec<(String, Rate)> = (applying.iter())
            .map(|(name, bucket, key)| {
                (
                    shared.key(&shared_key(name, &bucket.rule, key)),
                    bucket.rule.rate,
                )
            })
            .collect();
        match shared.take(&keys).await {
            Ok(None) => Ok(()),
            Ok(Some((at, retry_after))) => Err(RateLimited {
                limit: applying[at].0.clone(),
                retry_after,
            }),
            Err(error) => {
                tracing::debug!(%error, "rate limits checked in this replica");
                self.check(call)
            }
        }
    }

    /// The key of `call` in `bucket`, if the bucket's rule applies to it.
    fn key(&self, bucket: &Bucket, call: &Call<'_>) -> Option<Key> {
        let none = || self.none.clone();
        match &bucket.rule.scope {
            LimitScope::Agent(Some(name)) => (**name == **call.agent).then(|| (none(), none())),
            LimitScope::Agent(None) => self
                .unnamed(|scope| matches!(scope, LimitScope::Agent(Some(n)) if **n == **call.agent))
                .then(|| (call.agent.clone(), none())),
            LimitScope::Role(Some(name)) => (**name == **call.role).then(|| (none(), none())),
            LimitScope::Role(None) => self
                .unnamed(|scope| matches!(scope, LimitScope::Role(Some(n)) if **n == **call.role))
                .then(|| (call.role.clone(), none())),
            LimitScope::Tool {
                name: Some(name),
                per_agent,
            } => (**name == **call.tool).then(|| match per_agent {
                true => (call.agent.clone(), none()),
                false => (none(), none()),
            }),
            LimitScope::Tool {
                name: None,
                per_agent,
            } => self
                .unnamed(|scope| {
                    matches!(scope, LimitScope::Tool { name: Some(n), .. } if **n == **call.tool)
                })
                .then(|| match per_agent {
                    true => (call.tool.clone(), call.agent.clone()),
                    false => (call.tool.clone(), none()),
                }),
        }
    }

    /// Whether no rule of the catalog matches `named` (a general rule
    /// applies only where no named rule replaces it).
    fn unnamed(&self, named: impl Fn(&LimitScope) -> bool) -> bool {
        !self.buckets.iter().any(|(_, b)| named(&b.rule.scope))
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(entries: &[(&str, &str)]) -> Limits {
        let map = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Limits::compile(&UniqueMap(map), None)
    }

    fn calls_allowed(limits: &Limits, agent: &str, tool: &str, attempts: usize) -> usize {
        let (agent, role, tool) = (Arc::from(agent), Arc::from("trader"), Arc::from(tool));
        let call = Call {
            agent: &agent,
            role: &role,
            tool: &tool,
        };
        (0..attempts)
            .filter(|_| limits.check(&call).is_ok())
            .count()
    }

    #[test]
    fn each_agent_has_its_own_bucket_and_a_named_rule_replaces_the_general_one() {
        let limits = limits(&[("agent", "3/h"), ("agent big", "10/h")]);
        assert_eq!(calls_allowed(&limits, "a", "t", 20), 3);
        assert_eq!(calls_allowed(&limits, "b", "t", 20), 3);
        assert_eq!(calls_allowed(&limits, "big", "t", 20), 10);
    }

    #[test]
    fn a_tool_limit_is_shared_unless_per_agent() {
        let shared = limits(&[("tool quote", "4/h")]);
        assert_eq!(calls_allowed(&shared, "a", "quote", 3), 3);
        assert_eq!(calls_allowed(&shared, "b", "quote", 3), 1);
        assert_eq!(calls_allowed(&shared, "b", "other", 3), 3);
        let per_agent = limits(&[("tool", "2/h per agent")]);
        assert_eq!(calls_allowed(&per_agent, "a", "quote", 5), 2);
        assert_eq!(calls_allowed(&per_agent, "a", "other", 5), 2);
        assert_eq!(calls_allowed(&per_agent, "b", "quote", 5), 2);
    }

    #[test]
    fn a_refusal_names_its_rule_and_when_to_retry() {
        let limits = limits(&[("role trader", "1/min burst 2")]);
        let (agent, role, tool) = (Arc::from("a"), Arc::from("trader"), Arc::from("t"));
        let call = Call {
            agent: &agent,
            role: &role,
            tool: &tool,
        };
        assert!(limits.check(&call).is_ok());
        assert!(limits.check(&call).is_ok());
        let refused = limits.check(&call).unwrap_err();
        assert_eq!(&*refused.limit, "role trader");
        assert!(refused.retry_after > Duration::from_secs(50));
        assert!(refused.retry_after <= Duration::from_secs(60));
        assert_eq!(retry_after_seconds(Duration::from_millis(59_001)), 60);
    }

    #[test]
    fn a_reload_keeps_the_state_of_unchanged_rules() {
        let before = limits(&[("agent", "1/h"), ("tool", "1/h")]);
        assert_eq!(calls_allowed(&before, "a", "t", 2), 1);
        let map = [("agent", "1/h"), ("tool", "5/h")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let after = Limits::compile(&UniqueMap(map), Some(&before));
        // The agent's bucket is still empty; the changed tool rule is new
        // (the old one's bucket for `t` is empty: `b` would get nothing).
        assert_eq!(calls_allowed(&after, "a", "t", 2), 0);
        assert_eq!(calls_allowed(&after, "b", "t", 5), 1);
    }
}
