//! The `limits:` section: token buckets on tool calls.
//!
//! ```yaml
//! limits:
//!   agent: 20/s burst 40                  # each agent its own bucket
//!   role trader: 100/min                  # the agents of one role share one
//!   tool execute_trade: 5/min per agent   # each agent its own, for one tool
//!   tool: 1000/s                          # each tool its own, shared by all
//! ```
//!
//! A key is a scope (`agent`, `role` or `tool`), optionally followed by one
//! name (that agent, role or tool only; without a name the rule applies to
//! every one, each with its own bucket). A value is `<calls>/<s|min|h>`,
//! then optionally `burst <calls>` (default: the rate's count) and, for a
//! tool, `per agent`.

use std::time::Duration;

/// Most calls a rate or a burst may name (governor's buckets count in u32).
const MAX_CALLS: u32 = 1_000_000;

/// Who shares a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitScope {
    /// Per agent: every agent (`None`) or one.
    Agent(Option<String>),
    /// Per role: every role, each its own bucket (`None`), or one.
    Role(Option<String>),
    /// Per tool (public name): every tool (`None`) or one; `per_agent`
    /// gives each agent its own bucket for it.
    Tool {
        name: Option<String>,
        per_agent: bool,
    },
}

/// `calls` per `period`, with room for `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub calls: u32,
    pub period: Duration,
    pub burst: u32,
}

impl Rate {
    /// The time one call's token takes to come back.
    pub fn replenish_interval(&self) -> Duration {
        self.period / self.calls
    }
}

/// One rule of the `limits:` section.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LimitRule {
    pub scope: LimitScope,
    pub rate: Rate,
}

impl LimitRule {
    /// Parse the entry `key: value`.
    pub fn parse(key: &str, value: &str) -> Result<Self, String> {
        let mut words = value.split_whitespace();
        let rate = words.next().ok_or("empty; expected for example `20/s`")?;
        let (calls, period) = parse_rate(rate)?;
        let mut burst = calls;
        let mut per_agent = false;
        while let Some(word) = words.next() {
            match (word, words.next()) {
                ("burst", Some(count)) => burst = parse_calls(count)?,
                ("per", Some("agent")) => per_agent = true,
                _ => {
                    return Err(format!(
                        "unexpected `{word}`; after the rate come only `burst <calls>` and, for a tool, `per agent`"
                    ));
                }
            }
        }
        let mut parts = key.split_whitespace();
        let name = |parts: &mut std::str::SplitWhitespace<'_>| parts.next().map(str::to_string);
        let scope = match parts.next() {
            Some("agent") => LimitScope::Agent(name(&mut parts)),
            Some("role") => LimitScope::Role(name(&mut parts)),
            Some("tool") => LimitScope::Tool {
                name: name(&mut parts),
                per_agent,
            },
            _ => {
                return Err(
                    "the key must be `agent`, `role` or `tool`, optionally followed by one name"
                        .into(),
                );
            }
        };
        if parts.next().is_some() {
            return Err("the key names a scope and at most one name".into());
        }
        if per_agent && !matches!(scope, LimitScope::Tool { .. }) {
            return Err("`per agent` belongs to a `tool` limit".into());
        }
        Ok(Self {
            scope,
            rate: Rate {
                calls,
                period,
                burst,
            },
        })
    }
}

fn parse_rate(rate: &str) -> Result<(u32, Duration), String> {
    let (calls, unit) = rate
        .split_once('/')
        .ok_or_else(|| format!("`{rate}` is no rate; expected for example `20/s` or `5/min`"))?;
    let period = match unit {
        "s" => Duration::from_secs(1),
        "min" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(format!("unknown unit `{unit}`; use `s`, `min` or `h`")),
    };
    Ok((parse_calls(calls)?, period))
}

fn parse_calls(calls: &str) -> Result<u32, String> {
    match calls.parse::<u32>() {
        Ok(n @ 1..=MAX_CALLS) => Ok(n),
        _ => Err(format!(
            "`{calls}` must be a whole number of calls from 1 to {MAX_CALLS}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_with_their_defaults() {
        let rule = LimitRule::parse("agent", "20/s burst 40").unwrap();
        assert_eq!(rule.scope, LimitScope::Agent(None));
        assert_eq!(
            rule.rate,
            Rate {
                calls: 20,
                period: Duration::from_secs(1),
                burst: 40
            }
        );
        let rule = LimitRule::parse("tool execute_trade", "5/min per agent").unwrap();
        assert_eq!(
            rule.scope,
            LimitScope::Tool {
                name: Some("execute_trade".into()),
                per_agent: true
            }
        );
        assert_eq!(rule.rate.burst, 5);
        assert_eq!(rule.rate.replenish_interval(), Duration::from_secs(12));
        let rule = LimitRule::parse("role trader", "100/h").unwrap();
        assert_eq!(rule.scope, LimitScope::Role(Some("trader".into())));
    }

    #[test]
    fn malformed_rules_say_what_is_wrong() {
        for (key, value, expected) in [
            ("agent", "20", "no rate"),
            ("agent", "20/day", "unknown unit"),
            ("agent", "0/s", "from 1 to"),
            ("agent", "20/s burst", "unexpected `burst`"),
            ("agent", "20/s per agent", "belongs to a `tool`"),
            ("server x", "20/s", "must be `agent`, `role` or `tool`"),
            ("tool a b", "20/s", "at most one name"),
            ("tool", "", "empty"),
        ] {
            let error = LimitRule::parse(key, value).unwrap_err();
            assert!(error.contains(expected), "{key}: {value} -> {error}");
        }
    }
}
