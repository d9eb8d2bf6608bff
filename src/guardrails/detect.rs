//! Built-in detectors of secrets and personal data in a call's arguments
//! and its result: cloud access keys (AWS access key ids, GCP service
//! account keys), private key blocks, JWTs and bearer tokens, generic
//! high-entropy secrets, payment card numbers (Luhn-checked), e-mail
//! addresses and phone numbers.
//!
//! They decide nothing: each [`Finding`] (a kind and the JSON pointer of
//! the string or object it was found in, never the match) is handed to the
//! policy's rules as `input.findings`, recorded in the audit record, and
//! the result rule may have what a kind matched replaced ([`redact`]).

use std::ops::Range;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use serde::Serialize;
use serde_json::Value;

/// The most findings kept of one document: enough to decide on, bounded
/// for the audit record.
pub const MAX_FINDINGS: usize = 64;

/// What a detector found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    AwsAccessKey,
    GcpServiceAccountKey,
    PrivateKey,
    Jwt,
    BearerToken,
    HighEntropySecret,
    PaymentCard,
    Email,
    Phone,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::AwsAccessKey,
        Kind::GcpServiceAccountKey,
        Kind::PrivateKey,
        Kind::Jwt,
        Kind::BearerToken,
        Kind::HighEntropySecret,
        Kind::PaymentCard,
        Kind::Email,
        Kind::Phone,
    ];

    /// The kind named `name` (as policies write it).
    pub fn named(name: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|kind| serde_json::to_value(kind).is_ok_and(|v| v == name))
    }
}

/// Which document a finding is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Arguments,
    Result,
}

/// One finding: its kind, its document, and the JSON pointer of the value
/// it is in there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub part: Part,
    pub path: String,
}

/// Each kind's pattern, in the order of [`Kind::ALL`]. High-entropy
/// secrets, cards and phone numbers are then checked beyond the pattern
/// (entropy, Luhn, digit count).
const PATTERNS: [&str; 9] = [
    r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
    // A service account key file as JSON text.
    r#""type"\s*:\s*"service_account"(?s:.*?)"private_key"\s*:"#,
    // A key block to its end (or to the end of the text, if cut short).
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\z)",
    r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}",
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}",
    r"[A-Za-z0-9+/=_-]{24,}",
    r"\b\d(?:[ -]?\d){12,18}\b",
    r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
    // An international number (`+` and 10 to 15 digits) or a North
    // American one (`(415) 555-0100`, `415-555-0100`).
    r"\+\d[\d ().-]{8,20}\d|\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b",
];

static REGEXES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    (PATTERNS.iter())
        .map(|p| Regex::new(p).expect("the detectors' patterns are valid"))
        .collect()
});

/// All the patterns at once: one pass over a text tells which kinds
/// could be in it, so most texts are read once, not once per kind.
static ANY: LazyLock<RegexSet> =
    LazyLock::new(|| RegexSet::new(PATTERNS).expect("the detectors' patterns are valid"));

/// Where in `text` detector `kind` matches.
pub fn spans(kind: Kind, text: &str) -> Vec<Range<usize>> {
    let found = REGEXES[kind as usize].find_iter(text);
    match kind {
        Kind::HighEntropySecret => (found.filter(|m| looks_random(m.as_str())))
            .map(|m| m.range())
            .collect(),
        Kind::PaymentCard => found
            .filter(|m| luhn(m.as_str()))
            .map(|m| m.range())
            .collect(),
        Kind::Phone => (found.filter(|m| (10..=15).contains(&digits(m.as_str()).count())))
            .map(|m| m.range())
            .collect(),
        _ => found.map(|m| m.range()).collect(),
    }
}

/// The kinds found in `text`. A high-entropy token inside a match of a
/// more specific kind (a key, a JWT) is that kind, not another finding.
pub fn kinds_in(text: &str) -> Vec<Kind> {
    let mut found = Vec::new();
    let possible = ANY.matches(text);
    if !possible.matched_any() {
        return found;
    }
    let mut specific: Vec<Range<usize>> = Vec::new();
    for kind in Kind::ALL
        .into_iter()
        .filter(|k| possible.matched(*k as usize))
    {
        let mut matched = spans(kind, text);
        if kind == Kind::HighEntropySecret {
            matched.retain(|m| {
                !specific
                    .iter()
                    .any(|s| s.start <= m.start && m.end <= s.end)
            });
        }
        if !matched.is_empty() {
            found.push(kind);
        }
        // The secrets of a known shape.
        if SECRETS.contains(&kind) && kind != Kind::HighEntropySecret {
            specific.extend(matched);
        }
    }
    found
}

/// Every finding in `value` (arguments or a result), at most
/// [`MAX_FINDINGS`], added to `findings`.
pub fn scan(value: &Value, part: Part, findings: &mut Vec<Finding>) {
    let limit = findings.len() + MAX_FINDINGS;
    walk(value, part, &mut String::new(), findings, limit);
}

fn walk(value: &Value, part: Part, path: &mut String, findings: &mut Vec<Finding>, limit: usize) {
    if findings.len() >= limit {
        return;
    }
    let found = |kind, path: &str| Finding {
        kind,
        part,
        path: if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
    };
    match value {
        Value::String(text) => {
            let kinds = kinds_in(text);
            let room = limit - findings.len();
            findings.extend(kinds.into_iter().take(room).map(|kind| found(kind, path)));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                walk(item, part, path, findings, limit);
                path.truncate(len);
            }
        }
        Value::Object(object) => {
            // A service account key as an object (its file parsed).
            let service_account = object.get("type").is_some_and(|t| t == "service_account")
                && object.contains_key("private_key");
            if service_account {
                findings.push(found(Kind::GcpServiceAccountKey, path));
            }
            for (key, item) in object {
                let len = path.len();
                path.push('/');
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                walk(item, part, path, findings, limit);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// `text` with every match of `kind` replaced by `[redacted]`, or `None`
/// when nothing matched.
pub fn redact(text: &str, kind: Kind) -> Option<String> {
    let spans = spans(kind, text);
    if spans.is_empty() {
        return None;
    }
    let mut redacted = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        redacted.push_str(&text[at..span.start]);
        redacted.push_str(REDACTED);
        at = span.end;
    }
    redacted.push_str(&text[at..]);
    Some(redacted)
}

/// The kinds that are secrets (not personal data): what is never kept,
/// even where an operator has a tool's arguments recorded.
pub const SECRETS: [Kind; 6] = [
    Kind::AwsAccessKey,
    Kind::GcpServiceAccountKey,
    Kind::PrivateKey,
    Kind::Jwt,
    Kind::BearerToken,
    Kind::HighEntropySecret,
];

/// Replace every secret's match in the strings of `value` by `[redacted]`.
pub fn redact_secrets(value: &mut Value) {
    match value {
        Value::String(text) => {
            for kind in SECRETS {
                if let Some(redacted) = redact(text, kind) {
                    *text = redacted;
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        Value::Object(object) => object.values_mut().for_each(redact_secrets),
        _ => {}
    }
}

/// What a redacted value or match reads as.
pub const REDACTED: &str = "[redacted]";

fn digits(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.chars().filter_map(|c| c.to_digit(10))
}

/// Whether a card number's digits pass the Luhn check.
fn luhn(text: &str) -> bool {
    let digits: Vec<u32> = digits(text).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = (digits.iter().rev().enumerate())
        .map(|(i, &d)| match i % 2 {
            1 if d * 2 > 9 => d * 2 - 9,
            1 => d * 2,
            _ => d,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether a long token reads like a random secret: letters and digits
/// mixed, not only hex (hashes and ids are), and more than 4 bits of
/// entropy a character.
fn looks_random(token: &str) -> bool {
    let has_digit = token.bytes().any(|b| b.is_ascii_digit());
    let has_letter = token.bytes().any(|b| b.is_ascii_alphabetic());
    let hex = token.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if !has_digit || !has_letter || hex {
        return false;
    }
    let mut counts = [0u32; 256];
    for b in token.bytes() {
        counts[b as usize] += 1;
    }
    let len = token.len() as f64;
    let entropy: f64 = (counts.iter().filter(|&&c| c > 0))
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2()
        })
        .sum();
    entropy > 4.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\n-----END RSA PRIVATE KEY-----";

    #[test]
    fn each_detector_finds_its_kind_and_not_ordinary_text() {
        let cases: [(&str, Kind); 9] = [
            ("key AKIAIOSFODNN7EXAMPLE here", Kind::AwsAccessKey),
            (
                r#"{"type": "service_account", "private_key": "x"}"#,
                Kind::GcpServiceAccountKey,
            ),
            (KEY, Kind::PrivateKey),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlLXZhbHVl",
                Kind::Jwt,
            ),
            (
                "Authorization: Bearer abcdefghijklmnop1234",
                Kind::BearerToken,
            ),
            (
                "secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                Kind::HighEntropySecret,
            ),
            ("card 4111 1111 1111 1111 ok", Kind::PaymentCard),
            ("mail jane.doe@example.com now", Kind::Email),
            ("call +44 20 7946 0958 or", Kind::Phone),
        ];
        for (text, kind) in cases {
            assert!(
                kinds_in(text).contains(&kind),
                "{kind:?} in {text:?}: {:?}",
                kinds_in(text)
            );
        }
        let ordinary = "Order 12 shares of AAPL on 2026-12-01 at 10:30; ref 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, id 123e4567-e89b-12d3-a456-426614174000";
        assert_eq!(kinds_in(ordinary), [], "{ordinary}");
        // Not Luhn-valid: no card.
        assert!(!kinds_in("4111 1111 1111 1112").contains(&Kind::PaymentCard));
    }

    #[test]
    fn findings_name_the_path_never_the_value_and_a_parsed_key_file_counts() {
        let value = json!({
            "note": format!("here: {KEY}"),
            "accounts": [{"email": "a@example.org"}],
            "creds": {"type": "service_account", "private_key": "k", "client_email": "x@p.iam.gserviceaccount.com"},
            "odd/key": "AKIAIOSFODNN7EXAMPLE",
        });
        let mut findings = Vec::new();
        scan(&value, Part::Result, &mut findings);
        let found: Vec<(Kind, &str)> = findings.iter().map(|f| (f.kind, f.path.as_str())).collect();
        assert!(found.contains(&(Kind::PrivateKey, "/note")), "{found:?}");
        assert!(
            found.contains(&(Kind::Email, "/accounts/0/email")),
            "{found:?}"
        );
        assert!(
            found.contains(&(Kind::GcpServiceAccountKey, "/creds")),
            "{found:?}"
        );
        assert!(
            found.contains(&(Kind::AwsAccessKey, "/odd~1key")),
            "{found:?}"
        );
        let text = serde_json::to_string(&findings).unwrap();
        assert!(!text.contains("MIIE") && !text.contains("AKIA"), "{text}");
    }

    #[test]
    fn redaction_replaces_only_what_the_kind_matched() {
        let text = format!("before {KEY} after");
        assert_eq!(
            redact(&text, Kind::PrivateKey).unwrap(),
            "before [redacted] after"
        );
        assert_eq!(redact("nothing here", Kind::PrivateKey), None);
        assert_eq!(
            redact("a@b.io and c@d.io", Kind::Email).unwrap(),
            "[redacted] and [redacted]"
        );
    }

    #[test]
    fn secrets_are_redacted_wherever_they_are_and_personal_data_is_left() {
        let mut value =
            json!({"note": format!("use {KEY}"), "to": ["a@b.io", "AKIAIOSFODNN7EXAMPLE"]});
        redact_secrets(&mut value);
        assert_eq!(
            value,
            json!({"note": "use [redacted]", "to": ["a@b.io", "[redacted]"]})
        );
    }

    #[test]
    fn findings_are_bounded() {
        let many: Vec<Value> = (0..200)
            .map(|i| json!(format!("u{i}@example.com")))
            .collect();
        let mut findings = Vec::new();
        scan(&Value::Array(many), Part::Arguments, &mut findings);
        assert_eq!(findings.len(), MAX_FINDINGS);
    }

    #[test]
    fn kinds_are_named_as_policies_write_them() {
        assert_eq!(Kind::named("private_key"), Some(Kind::PrivateKey));
        assert_eq!(Kind::named("aws_access_key"), Some(Kind::AwsAccessKey));
        assert_eq!(Kind::named("nonsense"), None);
    }
}
