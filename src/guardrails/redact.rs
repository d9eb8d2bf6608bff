//! Replacing parts of a tool's result, as the result policy asks: the
//! value at a JSON pointer, or only one detector kind's matches in the
//! string there.

use serde::Serialize;
use serde_json::Value;

use super::detect::{self, Kind, REDACTED};

/// One thing to replace in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redaction {
    /// A JSON pointer into the result.
    pub path: String,
    /// Only this kind's matches in the string there; without one (or
    /// where the value is no string), the whole value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
}

/// Apply `redactions` to `result` (as JSON); returns those that replaced
/// something (a path that leads nowhere, or a kind that matches nothing
/// there, replaced nothing).
pub fn apply(result: &mut Value, redactions: &[Redaction]) -> Vec<Redaction> {
    let mut applied = Vec::new();
    for redaction in redactions {
        let pointer = match redaction.path.as_str() {
            "/" => "",
            path => path,
        };
        let Some(value) = result.pointer_mut(pointer) else {
            continue;
        };
        let replaced = match (redaction.kind, &*value) {
            (Some(kind), Value::String(text)) => detect::redact(text, kind).map(Value::String),
            _ => Some(Value::String(REDACTED.to_owned())),
        };
        if let Some(replaced) = replaced {
            *value = replaced;
            if !applied.contains(redaction) {
                applied.push(redaction.clone());
            }
        }
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_kind_replaces_its_matches_and_a_bare_path_the_whole_value() {
        let mut result = json!({
            "content": [{"type": "text", "text": "mail a@b.io or c@d.io, call 911"}],
            "structuredContent": {"ssn": "123-45-6789", "card": {"number": "4111111111111111"}},
        });
        let redactions = [
            Redaction {
                path: "/content/0/text".into(),
                kind: Some(Kind::Email),
            },
            Redaction {
                path: "/structuredContent/ssn".into(),
                kind: None,
            },
            Redaction {
                path: "/structuredContent/card".into(),
                kind: Some(Kind::PaymentCard),
            },
            Redaction {
                path: "/nowhere".into(),
                kind: None,
            },
            Redaction {
                path: "/content/0/text".into(),
                kind: Some(Kind::PrivateKey),
            },
        ];
        let applied = apply(&mut result, &redactions);
        assert_eq!(applied, redactions[..3]);
        assert_eq!(
            result["content"][0]["text"],
            "mail [redacted] or [redacted], call 911"
        );
        assert_eq!(result["structuredContent"]["ssn"], "[redacted]");
        assert_eq!(result["structuredContent"]["card"], "[redacted]");
    }
}
