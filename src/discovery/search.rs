//! Tool search, for agents whose role or endpoint says `discovery: search`:
//! instead of every tool, `tools/list` offers two built-in tools.
//! `search_tools` ranks the tools of the caller's own view (never another
//! tool) by BM25 relevance over their names, titles, descriptions and
//! argument names (the `bm25` crate: English stemming and stop words),
//! and `call_tool` calls one of them by public name, through the same
//! pipeline as a direct call.

use std::sync::Arc;

use bm25::{Document, Language, SearchEngineBuilder};
use rmcp::model::{JsonObject, Tool};
use serde_json::{Value, json};

use super::View;

/// The built-in tool that searches the caller's view.
pub const SEARCH_TOOLS: &str = "search_tools";
/// The built-in tool that calls a tool of the caller's view by name.
pub const CALL_TOOL: &str = "call_tool";
/// Results of one search when the caller does not say.
const DEFAULT_LIMIT: usize = 10;
/// The most results of one search.
const MAX_LIMIT: usize = 50;

/// Whether the caller's view is searched rather than listed.
pub fn searches(view: &View<'_>) -> bool {
    (view.catalog.view(&view.caller.role, view.endpoint)).is_some_and(|v| v.search)
}

/// What `tools/list` shows the caller: its tools, or the two built-ins.
pub fn listed(view: &View<'_>) -> Vec<Tool> {
    match searches(view) {
        true => builtins(),
        false => super::definitions(view),
    }
}

fn schema(value: Value) -> Arc<JsonObject> {
    Arc::new(value.as_object().cloned().unwrap_or_default())
}

/// `search_tools` and `call_tool`, as listed.
pub fn builtins() -> Vec<Tool> {
    let search = Tool::new(
        SEARCH_TOOLS,
        "Find the tools you may use: ranked by relevance to `query`, with their names, descriptions and input schemas. Call one with call_tool.",
        schema(json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What you want to do, in a few words"},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "description": "At most this many tools (default 10)"},
            },
            "required": ["query"],
        })),
    );
    let call = Tool::new(
        CALL_TOOL,
        "Call a tool that search_tools found, by its name, with its arguments.",
        schema(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "The tool's name, as search_tools gave it"},
                "arguments": {"type": "object", "description": "The tool's arguments, as its input schema says"},
            },
            "required": ["name"],
        })),
    );
    vec![search, call]
}

/// The text a tool is found by: its name (split into words), title,
/// description and argument names.
fn searchable(tool: &Tool) -> String {
    let words = |text: &str| text.replace(['_', '-', '.'], " ");
    let mut text = words(&tool.name);
    for part in [tool.title.as_deref(), tool.description.as_deref()]
        .into_iter()
        .flatten()
    {
        text.push(' ');
        text.push_str(part);
    }
    if let Some(Value::Object(properties)) = tool.input_schema.get("properties") {
        for argument in properties.keys() {
            text.push(' ');
            text.push_str(&words(argument));
        }
    }
    text
}

/// The caller's tools most relevant to `query`, best first, at most
/// `limit` (default 10, at most 50): each with its name, title,
/// description and input schema.
pub fn search(view: &View<'_>, query: &str, limit: Option<u64>) -> Vec<Value> {
    let limit = limit.map_or(DEFAULT_LIMIT, |l| (l as usize).clamp(1, MAX_LIMIT));
    let tools = super::definitions(view);
    (rank(&tools, query, limit).into_iter())
        .map(|i| {
            let tool = &tools[i];
            json!({
                "name": tool.name,
                "title": tool.title,
                "description": tool.description,
                "input_schema": tool.input_schema,
            })
        })
        .collect()
}

/// The indexes in `tools` of the `limit` most relevant to `query`, best
/// first (tools that share no word with it are not among them).
pub fn rank(tools: &[Tool], query: &str, limit: usize) -> Vec<usize> {
    let documents = (tools.iter().enumerate())
        .map(|(i, tool)| Document::new(i, searchable(tool)))
        .collect::<Vec<_>>();
    let engine = SearchEngineBuilder::<usize>::with_documents(Language::English, documents).build();
    let query = query.replace(['_', '-', '.'], " ");
    (engine.search(&query, limit).into_iter())
        .map(|found| found.document.id)
        .collect()
}

/// The tool and arguments a `call_tool` call names, or what is wrong.
pub fn called(arguments: &JsonObject) -> Result<(String, JsonObject), String> {
    let name = (arguments.get("name").and_then(Value::as_str))
        .ok_or("call_tool needs `name`, the tool to call")?;
    let with = match arguments.get("arguments") {
        None | Some(Value::Null) => JsonObject::new(),
        Some(Value::Object(with)) => with.clone(),
        Some(_) => return Err("call_tool's `arguments` must be an object".into()),
    };
    Ok((name.to_owned(), with))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, description: &str, arguments: &[&str]) -> Tool {
        let properties: serde_json::Map<String, Value> = (arguments.iter())
            .map(|a| (a.to_string(), json!({"type": "string"})))
            .collect();
        Tool::new(
            name.to_owned(),
            description.to_owned(),
            schema(json!({"type": "object", "properties": properties})),
        )
    }

    #[test]
    fn names_descriptions_and_argument_names_are_searched() {
        let tools = [
            tool(
                "read_positions",
                "Current holdings of an account",
                &["account"],
            ),
            tool(
                "execute_trade",
                "Buy or sell a security",
                &["symbol", "quantity"],
            ),
            tool("run_report", "Build a report for a desk", &["desk"]),
        ];
        assert_eq!(rank(&tools, "positions", 3).first(), Some(&0), "by name");
        assert_eq!(
            rank(&tools, "sell shares", 3).first(),
            Some(&1),
            "by description"
        );
        assert_eq!(rank(&tools, "quantity", 3).first(), Some(&1), "by argument");
        assert_eq!(rank(&tools, "desk reports", 3).first(), Some(&2), "stemmed");
        assert!(rank(&tools, "weather", 3).is_empty());
        assert_eq!(rank(&tools, "account desk symbol", 2).len(), 2);
    }

    #[test]
    fn call_tool_needs_a_name_and_object_arguments() {
        let object = |v: Value| v.as_object().unwrap().clone();
        let (name, with) = called(&object(json!({"name": "echo", "arguments": {"a": 1}}))).unwrap();
        assert_eq!((name.as_str(), with.get("a")), ("echo", Some(&json!(1))));
        assert!(
            called(&object(json!({"name": "echo"})))
                .unwrap()
                .1
                .is_empty()
        );
        assert!(called(&object(json!({"arguments": {}}))).is_err());
        assert!(called(&object(json!({"name": "echo", "arguments": [1]}))).is_err());
    }
}
