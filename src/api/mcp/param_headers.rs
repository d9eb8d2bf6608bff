//! `Mcp-Param-*` headers (SEP-2243, 2026-07-28): a tool may mark input
//! properties with `x-mcp-header: Name`, and a client calling it then
//! repeats each such argument in an `Mcp-Param-Name` header, so that
//! intermediaries can route on it without reading the body. A server must
//! refuse a call whose headers and body disagree.
//!
//! rmcp checks them only for tools its handler can name without knowing the
//! caller, which would tell an agent that a tool it may not see exists. So
//! the guard checks them here, for tools in the caller's view only (any
//! other call is refused by the pipeline, with the answer an unknown tool
//! gets), before `rmcp` reads the message.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rmcp::model::JsonObject;
use serde_json::Value;

use crate::identity::Caller;
use crate::live::Live;
use crate::vocabulary::Target;

const PREFIX: &str = "mcp-param-";
const WRAP_START: &str = "=?base64?";
const WRAP_END: &str = "?=";

/// Every `x-mcp-header` along chains of `properties` from the schema's
/// root: the property path and the header's name.
fn annotations(schema: &JsonObject) -> Vec<(Vec<&str>, &str)> {
    fn walk<'a>(
        properties: Option<&'a Value>,
        path: &mut Vec<&'a str>,
        found: &mut Vec<(Vec<&'a str>, &'a str)>,
    ) {
        let Some(Value::Object(properties)) = properties else {
            return;
        };
        for (name, property) in properties {
            path.push(name);
            if let Some(header) = property.get("x-mcp-header").and_then(Value::as_str)
                && !header.is_empty()
            {
                found.push((path.clone(), header));
            }
            walk(property.get("properties"), path, found);
            path.pop();
        }
    }
    let mut found = Vec::new();
    walk(schema.get("properties"), &mut Vec::new(), &mut found);
    found
}

/// A header value as the client meant it: `=?base64?…?=` decoded (strictly),
/// anything else literally, without the whitespace around it.
fn decoded(raw: &str) -> Option<String> {
    let raw = raw.trim_matches([' ', '\t']);
    match raw
        .strip_prefix(WRAP_START)
        .and_then(|inner| inner.strip_suffix(WRAP_END))
    {
        Some(inner) => String::from_utf8(STANDARD.decode(inner).ok()?).ok(),
        None => Some(raw.to_string()),
    }
}

/// An argument's header form; `None` for what no header can carry.
fn as_header(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// For a 2026-07-28 `tools/call` `message` to a tool in the caller's view:
/// whether its `headers` repeat the arguments the tool's schema marks; `Err`
/// says how they do not.
pub fn check_call(
    live: &Live,
    caller: &Caller,
    headers: &HeaderMap,
    message: &Value,
) -> Result<(), String> {
    let revision = headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok());
    if message.get("method").and_then(Value::as_str) != Some("tools/call")
        || revision.is_none_or(|revision| revision < "2026-07-28")
    {
        return Ok(());
    }
    let params = message.get("params").unwrap_or(&Value::Null);
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Ok(());
    };
    // The catalog version in force, loaded only for the calls this concerns.
    let snapshot = live.current();
    // (The role's whole view: the call itself is held to its endpoint.)
    let Ok(to) = crate::policy::authorize(&snapshot.catalog, caller, None, Target::Tool(name))
    else {
        return Ok(());
    };
    let offered = snapshot.upstreams.offered(to.server);
    let Some(tool) = offered.tools.get(&*to.upstream_name) else {
        return Ok(());
    };
    let arguments = params.get("arguments").unwrap_or(&Value::Null);
    check(headers, &tool.input_schema, arguments)
}

/// Whether `headers` repeat the `arguments` of a call to a tool with input
/// `schema` as it declares; `Err` says how they do not.
fn check(headers: &HeaderMap, schema: &JsonObject, arguments: &Value) -> Result<(), String> {
    for (path, header) in annotations(schema) {
        let name = format!("{PREFIX}{}", header.to_ascii_lowercase());
        let mut values = headers.get_all(&name).iter();
        let sent = values.next();
        if values.next().is_some() {
            return Err(format!("more than one Mcp-Param-{header} header"));
        }
        let sent = sent
            .map(|value| {
                value
                    .to_str()
                    .map_err(|_| format!("Mcp-Param-{header} is not text"))
            })
            .transpose()?;
        let argument = path
            .iter()
            .try_fold(arguments, |value, key| value.get(key))
            .and_then(as_header);
        match (sent, argument) {
            (None, None) => {}
            (None, Some(_)) => return Err(format!("missing Mcp-Param-{header} header")),
            (Some(_), None) => {
                return Err(format!("Mcp-Param-{header} header without its argument"));
            }
            (Some(raw), Some(argument)) => {
                let value = decoded(raw)
                    .ok_or_else(|| format!("Mcp-Param-{header} is not valid Base64"))?;
                if value != argument {
                    return Err(format!("Mcp-Param-{header} does not match the arguments"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;

    fn schema() -> JsonObject {
        serde_json::from_value(json!({ "type": "object", "properties": {
            "region": { "type": "string", "x-mcp-header": "Region" },
            "limits": { "type": "object", "properties": {
                "count": { "type": "integer", "x-mcp-header": "Count" } } },
            "note": { "type": "string" } } }))
        .unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn headers_must_repeat_the_declared_arguments() {
        let arguments = json!({ "region": "eu west", "limits": { "count": 3 }, "note": "x" });
        let ok = |pairs: &[(&'static str, &str)]| check(&headers(pairs), &schema(), &arguments);
        assert_eq!(
            ok(&[("mcp-param-region", "eu west"), ("mcp-param-count", "3")]),
            Ok(())
        );
        // Base64-wrapped, and with whitespace around it.
        let wrapped = format!("  {WRAP_START}{}{WRAP_END} ", STANDARD.encode("eu west"));
        assert_eq!(
            ok(&[("mcp-param-region", &wrapped), ("mcp-param-count", "3")]),
            Ok(())
        );
        // A value without the whole wrapper is literal.
        let refused = |sent: &[(&'static str, &str)], why: &str| {
            let answer = ok(sent);
            assert!(
                answer.as_ref().is_err_and(|e| e.contains(why)),
                "{sent:?}: {answer:?}"
            );
        };
        let count = ("mcp-param-count", "3");
        let literal = ("mcp-param-region", "=?base64?ZXUgd2VzdA==");
        refused(&[literal, count], "does not match the arguments");
        refused(&[count], "missing Mcp-Param-");
        refused(
            &[("mcp-param-region", "us"), count],
            "does not match the arguments",
        );
        let unpadded = ("mcp-param-region", "=?base64?ZXUgd2VzdA?=");
        refused(&[unpadded, count], "is not valid Base64");
        let garbled = ("mcp-param-region", "=?base64?ZX!!d2VzdA==?=");
        refused(&[garbled, count], "is not valid Base64");
        let region = ("mcp-param-region", "eu west");
        refused(&[region, region, count], "more than one Mcp-Param-");
        // A header without its argument.
        let absent = check(
            &headers(&[("mcp-param-region", "eu")]),
            &schema(),
            &json!({}),
        );
        assert!(
            absent
                .as_ref()
                .is_err_and(|e| e.contains("without its argument")),
            "{absent:?}"
        );
        assert_eq!(check(&headers(&[]), &schema(), &json!({})), Ok(()));
    }
}
