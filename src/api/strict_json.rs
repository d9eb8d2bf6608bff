//! JSON as clients send it, read strictly: an object that names a key
//! twice is refused, never resolved. Parsers disagree on which of two
//! `"name"`s counts (the first, the last, both), so a body the control
//! plane reads as `read_positions` could reach an upstream that reads it as
//! `execute_trade`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    /// Not JSON at all (or nested deeper than the parser allows).
    #[error("{0}")]
    Syntax(serde_json::Error),
    /// Valid JSON, but an object names a key twice.
    #[error("an object names the key `{0}` twice")]
    DuplicateKey(String),
}

/// `bytes` as a JSON value, refusing duplicate keys at any depth.
pub fn parse(bytes: &[u8]) -> Result<Value, Unreadable> {
    match serde_json::from_slice::<Strict>(bytes) {
        Ok(Strict(value)) => Ok(value),
        Err(error) => match duplicate_of(&error) {
            Some(key) => Err(Unreadable::DuplicateKey(key)),
            None => Err(Unreadable::Syntax(error)),
        },
    }
}

const DUPLICATE: &str = "duplicate key: ";

/// The key a duplicate-key error names.
fn duplicate_of(error: &serde_json::Error) -> Option<String> {
    let message = error.to_string();
    let rest = message.strip_prefix(DUPLICATE)?;
    let key = rest.rsplit_once(" at line ").map_or(rest, |(key, _)| key);
    Some(key.to_owned())
}

/// A value whose objects have no repeated key.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.contains_key(&key) {
                let shown = crate::audit::record::excerpt(&key);
                return Err(de::Error::custom(format!("{DUPLICATE}{shown}")));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_named_twice_is_refused_at_any_depth() {
        let twice = br#"{"params":{"name":"execute_trade","name":"read_positions"}}"#;
        match parse(twice) {
            Err(Unreadable::DuplicateKey(key)) => assert_eq!(key, "name"),
            other => panic!("{other:?}"),
        }
        let nested = br#"{"a":[{"b":{"c":1,"c":2}}]}"#;
        assert!(matches!(parse(nested), Err(Unreadable::DuplicateKey(_))));
        assert!(matches!(parse(b"{\"a\":"), Err(Unreadable::Syntax(_))));
        let fine = br#"{"a":{"b":1},"b":{"a":[1,2.5,-3,null,true,"x"]}}"#;
        assert_eq!(
            parse(fine).unwrap(),
            serde_json::from_slice::<Value>(fine).unwrap()
        );
    }
}
