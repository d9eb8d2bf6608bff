//! A fan-out's one answer from its legs' answers: their content in the
//! catalog's order, each leg's part introduced by a text block naming its
//! server (a logical name, never an address), their structured content as
//! one object keyed by server, and in `_meta` which legs answered and how
//! the others failed.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, MetaObject, TextContent};
use serde_json::{Map, Value, json};

pub use crate::config::FanOutMode;

/// The `_meta` key of a merged result that lists its legs.
pub const LEGS_META_KEY: &str = "mcp-control-plane/legs";
/// The `_meta` key of a content block that names the server of its part.
pub const SERVER_META_KEY: &str = "mcp-control-plane/server";

/// One leg's answer: the server's logical name, and its result or why
/// there is none (`E`), which `outcome` names for the merged `_meta`.
pub struct LegAnswer<E> {
    pub server: Arc<str>,
    pub answer: Result<CallToolResult, E>,
}

/// Merge the legs' answers (in catalog order). With `mode: all` the first
/// leg that failed fails the call; with `partial`, only every leg failing
/// does. A leg's own `isError` result is an answer, not a failure: the
/// merged result is an error when any such leg's is (`all`) or when every
/// answered leg's is (`partial`).
pub fn merge<E>(
    legs: Vec<LegAnswer<E>>,
    mode: FanOutMode,
    outcome: impl Fn(&E) -> &'static str,
) -> Result<CallToolResult, E> {
    let answered = legs.iter().filter(|leg| leg.answer.is_ok()).count();
    if (mode == FanOutMode::All && answered < legs.len()) || answered == 0 {
        let failed = legs.into_iter().find_map(|leg| leg.answer.err());
        return Err(failed.expect("a leg failed"));
    }
    let mut merged = CallToolResult::default();
    let mut structured = Map::new();
    let mut listed = Vec::with_capacity(legs.len());
    let mut errors = 0;
    for LegAnswer { server, answer } in legs {
        match answer {
            Ok(result) => {
                let is_error = result.is_error == Some(true);
                errors += usize::from(is_error);
                listed.push(json!({"server": &*server, "outcome": if is_error { "tool_error" } else { "ok" }}));
                merged.content.push(label(&server, format!("[{server}]")));
                merged.content.extend(result.content);
                if let Some(value) = result.structured_content {
                    structured.insert(server.to_string(), value);
                }
            }
            Err(error) => {
                let outcome = outcome(&error);
                listed.push(json!({"server": &*server, "outcome": outcome}));
                merged
                    .content
                    .push(label(&server, format!("[{server}] no answer: {outcome}")));
            }
        }
    }
    merged.is_error = Some(match mode {
        FanOutMode::All => errors > 0,
        FanOutMode::Partial => errors == answered,
    });
    merged.structured_content = (!structured.is_empty()).then_some(Value::Object(structured));
    let mut meta = MetaObject::default();
    meta.0.insert(LEGS_META_KEY.into(), Value::Array(listed));
    merged.meta = Some(meta);
    Ok(merged)
}

/// A text block that introduces (or stands for) one server's part.
fn label(server: &str, text: String) -> ContentBlock {
    let mut block = TextContent::new(text);
    let mut meta = MetaObject::default();
    meta.0
        .insert(SERVER_META_KEY.into(), Value::String(server.into()));
    block.meta = Some(meta);
    ContentBlock::Text(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(server: &str, text: &str, value: Value) -> LegAnswer<&'static str> {
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = Some(value);
        LegAnswer {
            server: server.into(),
            answer: Ok(result),
        }
    }

    fn failed(server: &str, why: &'static str) -> LegAnswer<&'static str> {
        LegAnswer {
            server: server.into(),
            answer: Err(why),
        }
    }

    fn texts(result: &CallToolResult) -> Vec<String> {
        let value = serde_json::to_value(&result.content).unwrap();
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["text"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn parts_come_in_catalog_order_labelled_and_keyed_by_server() {
        let legs = vec![ok("b", "from b", json!(2)), ok("a", "from a", json!(1))];
        let merged = merge(legs, FanOutMode::All, |e| e).unwrap();
        assert_eq!(texts(&merged), ["[b]", "from b", "[a]", "from a"]);
        assert_eq!(merged.structured_content, Some(json!({"a": 1, "b": 2})));
        assert_eq!(merged.is_error, Some(false));
        let legs = &merged.meta.unwrap().0[LEGS_META_KEY];
        assert_eq!(legs[0], json!({"server": "b", "outcome": "ok"}));
    }

    #[test]
    fn all_fails_on_any_failed_leg_and_partial_marks_it() {
        let legs = || vec![ok("a", "x", json!(1)), failed("b", "timeout")];
        assert_eq!(
            merge(legs(), FanOutMode::All, |e| e).unwrap_err(),
            "timeout"
        );
        let merged = merge(legs(), FanOutMode::Partial, |e| e).unwrap();
        assert_eq!(texts(&merged), ["[a]", "x", "[b] no answer: timeout"]);
        assert_eq!(merged.structured_content, Some(json!({"a": 1})));
        let listed = &merged.meta.unwrap().0[LEGS_META_KEY];
        assert_eq!(listed[1], json!({"server": "b", "outcome": "timeout"}));
        let none = vec![failed("a", "first"), failed("b", "second")];
        assert_eq!(
            merge(none, FanOutMode::Partial, |e| e).unwrap_err(),
            "first"
        );
    }

    #[test]
    fn a_tool_error_is_an_answer() {
        let mut bad = ok("b", "no such account", json!(null));
        bad.answer.as_mut().unwrap().is_error = Some(true);
        let legs = || vec![ok("a", "x", json!(1)), bad_clone(&bad)];
        assert_eq!(
            merge(legs(), FanOutMode::All, |e| e).unwrap().is_error,
            Some(true)
        );
        assert_eq!(
            merge(legs(), FanOutMode::Partial, |e| e).unwrap().is_error,
            Some(false)
        );
    }

    fn bad_clone(leg: &LegAnswer<&'static str>) -> LegAnswer<&'static str> {
        LegAnswer {
            server: leg.server.clone(),
            answer: leg.answer.clone(),
        }
    }
}
