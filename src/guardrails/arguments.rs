//! A call's arguments checked against its tool's input schema (JSON
//! Schema 2020-12 by default, or the draft the schema's `$schema` names,
//! draft-07 included), with the `jsonschema` crate. Each schema is
//! compiled once, when the server's definitions arrive, never per call.
//!
//! Nothing is fetched to compile a schema: a `$ref` to another document
//! (an address an upstream chose) is not followed, and a tool whose schema
//! cannot be compiled has its calls refused (fail closed) until the
//! operator turns checking off for its server (`validate_arguments:
//! false`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use jsonschema::Validator;
use rmcp::model::{JsonObject, Tool};
use serde_json::Value;

/// Why a call's arguments were refused: the JSON pointer of the first
/// failing value and what is wrong with it (never the value itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the arguments do not match the tool's input schema at `{path}`: {problem}")]
pub struct InvalidArguments {
    pub path: String,
    pub problem: String,
}

/// Each tool's compiled input schema, by upstream name.
#[derive(Clone, Default)]
pub struct Schemas(HashMap<String, Result<Arc<Validator>, Arc<str>>>);

impl Schemas {
    /// Compile the input schema of each of `tools`.
    pub fn compile<'a>(tools: impl IntoIterator<Item = (&'a String, &'a Tool)>) -> Self {
        let compiled = (tools.into_iter())
            .map(|(name, tool)| {
                let schema = Value::Object(JsonObject::clone(&tool.input_schema));
                let validator = jsonschema::options()
                    .build(&schema)
                    .map(Arc::new)
                    .map_err(|error| Arc::from(error.masked().to_string()));
                (name.clone(), validator)
            })
            .collect();
        Self(compiled)
    }

    /// Check `arguments` (absent: `{}`) against tool `name`'s schema. A
    /// tool the server does not declare has nothing to check here (the
    /// call fails at the server).
    pub fn check(
        &self,
        name: &str,
        arguments: &mut Option<JsonObject>,
    ) -> Result<(), InvalidArguments> {
        let Some(validator) = self.0.get(name) else {
            return Ok(());
        };
        let validator = validator.as_ref().map_err(|_| InvalidArguments {
            path: "/".to_owned(),
            problem: "the tool's declared input schema cannot be used to check arguments"
                .to_owned(),
        })?;
        // Moved into a JSON value and back: the arguments are not copied.
        let value = Value::Object(arguments.take().unwrap_or_default());
        let first = validator
            .iter_errors(&value)
            .next()
            .map(|error| InvalidArguments {
                path: match error.instance_path().as_str() {
                    "" => "/".to_owned(),
                    path => path.to_owned(),
                },
                problem: error.masked().to_string(),
            });
        if let Value::Object(object) = value {
            *arguments = Some(object);
        }
        first.map_or(Ok(()), Err)
    }
}

impl PartialEq for Schemas {
    /// Schemas follow from the tools they were compiled from: two sets of
    /// definitions are equal when their tools are.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for Schemas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas(schema: Value) -> Schemas {
        let tool = Tool::new("order", "", Arc::new(schema.as_object().unwrap().clone()));
        Schemas::compile([(&"order".to_owned(), &tool)])
    }

    fn args(value: Value) -> Option<JsonObject> {
        value.as_object().cloned()
    }

    #[test]
    fn arguments_that_fit_pass_and_others_name_the_failing_path_without_the_value() {
        let schemas = schemas(json!({
            "type": "object",
            "properties": {"quantity": {"type": "integer", "minimum": 1}, "symbol": {"type": "string"}},
            "required": ["symbol"],
        }));
        let mut good = args(json!({"symbol": "AAPL", "quantity": 3}));
        assert_eq!(schemas.check("order", &mut good), Ok(()));
        assert_eq!(
            good,
            args(json!({"symbol": "AAPL", "quantity": 3})),
            "kept as they were"
        );
        let mut bad = args(json!({"symbol": "AAPL", "quantity": "sk-secret-looking"}));
        let refusal = schemas.check("order", &mut bad).unwrap_err();
        assert_eq!(refusal.path, "/quantity");
        assert!(!refusal.problem.contains("sk-secret"), "{refusal}");
        assert!(refusal.problem.contains("integer"), "{refusal}");
        let refusal = schemas.check("order", &mut None).unwrap_err();
        assert_eq!(refusal.path, "/");
        assert!(refusal.problem.contains("symbol"), "{refusal}");
        assert_eq!(schemas.check("undeclared", &mut None), Ok(()));
    }

    #[test]
    fn draft_07_schemas_are_understood_and_unusable_ones_refuse_every_call() {
        // In draft-07 `dependencies` is a keyword; in 2020-12 it is not.
        let draft7 = schemas(json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "dependencies": {"limit": ["price"]},
        }));
        assert!(
            draft7
                .check("order", &mut args(json!({"limit": true})))
                .is_err()
        );
        assert_eq!(
            draft7.check("order", &mut args(json!({"limit": true, "price": 1}))),
            Ok(())
        );
        let unusable = schemas(json!({"type": "object", "properties": {"a": {"type": 7}}}));
        let refusal = unusable.check("order", &mut args(json!({}))).unwrap_err();
        assert!(refusal.problem.contains("cannot be used"), "{refusal}");
    }
}
