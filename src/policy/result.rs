//! The second rule: a policy's judgement of a tool's result before it
//! leaves. Under the rule's path (default `data.mcp.result`) a policy may
//! declare `deny`, a set of reasons (any one withholds the result), and
//! `redact`, a set of what to replace by `[redacted]`: a finding
//! (`{"kind": "private_key", "path": "/content/0/text", ...}`, that kind's
//! matches in the string there) or a JSON pointer into the result
//! (`{"path": "/structuredContent/ssn"}`, the value there).
//!
//! Like a request decision it fails closed: an evaluation error, a
//! time-out or a malformed redaction withholds the result.

use serde_json::Value;

use crate::guardrails::detect::Kind;
pub use crate::guardrails::redact::Redaction;

/// What the result rule decided.
#[derive(Debug, Clone, PartialEq)]
pub enum ResultDecision {
    /// The result leaves as it is.
    Pass,
    /// The result is withheld: the policy's reasons.
    Deny(Vec<String>),
    /// The result leaves with these replaced.
    Redact(Vec<Redaction>),
}

/// What `deny` and `redact` evaluated to (either undefined when the
/// policy does not say) as one decision.
pub fn decision(deny: Vec<String>, redact: Option<Value>) -> ResultDecision {
    if !deny.is_empty() {
        return ResultDecision::Deny(deny);
    }
    let items = match redact {
        None => return ResultDecision::Pass,
        Some(Value::Array(items)) => items,
        Some(_) => return malformed(),
    };
    let mut redactions = Vec::with_capacity(items.len());
    for item in items {
        let Some(path) = item["path"]
            .as_str()
            .filter(|p| p.is_empty() || p.starts_with('/'))
        else {
            return malformed();
        };
        // A finding of the arguments is nothing to redact in the result.
        if item["part"].as_str().is_some_and(|part| part != "result") {
            continue;
        }
        let kind = match &item["kind"] {
            Value::Null => None,
            Value::String(name) => match Kind::named(name) {
                Some(kind) => Some(kind),
                None => return malformed(),
            },
            _ => return malformed(),
        };
        redactions.push(Redaction {
            path: path.to_owned(),
            kind,
        });
    }
    match redactions.is_empty() {
        true => ResultDecision::Pass,
        false => ResultDecision::Redact(redactions),
    }
}

fn malformed() -> ResultDecision {
    ResultDecision::Deny(vec![
        "the result policy's redaction is malformed; the result is withheld".to_owned(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deny_wins_redactions_are_read_and_anything_malformed_withholds() {
        assert_eq!(
            decision(vec!["no".into()], Some(json!([{"path": "/x"}]))),
            ResultDecision::Deny(vec!["no".into()])
        );
        assert_eq!(decision(Vec::new(), None), ResultDecision::Pass);
        assert_eq!(decision(Vec::new(), Some(json!([]))), ResultDecision::Pass);
        let redact = json!([
            {"kind": "private_key", "part": "result", "path": "/content/0/text"},
            {"path": "/structuredContent/ssn"},
            {"kind": "email", "part": "arguments", "path": "/to"},
        ]);
        assert_eq!(
            decision(Vec::new(), Some(redact)),
            ResultDecision::Redact(vec![
                Redaction {
                    path: "/content/0/text".into(),
                    kind: Some(Kind::PrivateKey)
                },
                Redaction {
                    path: "/structuredContent/ssn".into(),
                    kind: None
                },
            ])
        );
        for bad in [
            json!("x"),
            json!([{"kind": "private_key"}]),
            json!([{"path": "/a", "kind": "nonsense"}]),
        ] {
            assert!(matches!(
                decision(Vec::new(), Some(bad)),
                ResultDecision::Deny(_)
            ));
        }
    }
}
