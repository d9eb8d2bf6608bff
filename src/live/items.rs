//! A catalog as items of a table, and back: each server, tool, prompt,
//! resource set, role, endpoint, agent and admin is one item
//! (`servers/marketdata`), each other top-level setting one more
//! (`settings/environment`), and each file the catalog names (its policy
//! modules and data, the lock of pinned definitions) one more
//! (`files/policies/authz.rego`). Bodies are JSON (file items: the file's
//! text), so an operator can edit one entity without touching the rest.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use crate::config::files::scrub;
use crate::guardrails::pins::LockFile;
use crate::policy::policy_files;

/// The sections whose entries are items of their own.
const ENTITIES: [&str; 8] = [
    "servers",
    "tools",
    "prompts",
    "resources",
    "roles",
    "endpoints",
    "agents",
    "admins",
];
const SETTINGS: &str = "settings/";
const FILES: &str = "files/";
/// What the catalog is called when it is written out of a table: its
/// lock of pinned definitions is `catalog.pins.yaml` beside it.
pub const CATALOG_FILE: &str = "catalog.json";

/// Why a catalog could not become items, or items a catalog.
#[derive(Debug, thiserror::Error)]
pub enum ItemsError {
    #[error("{0}: {1}")]
    Read(PathBuf, String),
    #[error("{0}")]
    Invalid(String),
    #[error("item `{key}`: {problem}")]
    Item { key: String, problem: String },
}

/// The items of the catalog at `path` (which must be valid: see
/// `catalog push`).
pub fn of_file(path: &Path) -> Result<BTreeMap<String, String>, ItemsError> {
    let failed = |path: &Path, e: &dyn std::fmt::Display| {
        ItemsError::Read(path.to_owned(), scrub(&e.to_string()))
    };
    let read = |path: &Path| std::fs::read_to_string(path).map_err(|e| failed(path, &e));
    let text = read(path)?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let value: Value = if is_json {
        serde_json::from_str(&text).map_err(|e| failed(path, &e))?
    } else {
        yaml_serde::from_str(&text).map_err(|e| failed(path, &e))?
    };
    let Value::Object(sections) = value else {
        return Err(ItemsError::Invalid("the catalog is not a map".into()));
    };
    let mut items = BTreeMap::new();
    for (section, body) in sections {
        if ENTITIES.contains(&section.as_str()) {
            let Value::Object(entries) = body else {
                return Err(ItemsError::Invalid(format!("`{section}` is not a map")));
            };
            for (name, entity) in entries {
                items.insert(format!("{section}/{name}"), entity.to_string());
            }
        } else {
            items.insert(format!("{SETTINGS}{section}"), body.to_string());
        }
    }
    let base_dir = path.parent().unwrap_or(Path::new(""));
    let file = crate::config::load_file(path).map_err(|e| ItemsError::Invalid(e.to_string()))?;
    let lock = LockFile::path_for(path);
    let mut named: Vec<PathBuf> = policy_files(file.policy.as_ref(), base_dir);
    named.push(lock.clone());
    for file in named.into_iter().filter(|f| f.is_file()) {
        let relative = if file == lock {
            LockFile::path_for(Path::new(CATALOG_FILE))
        } else {
            file.strip_prefix(base_dir).unwrap_or(&file).to_path_buf()
        };
        let relative = relative_path(&relative.to_string_lossy()).ok_or_else(|| {
            ItemsError::Invalid(format!(
                "{} is outside the catalog's directory; a table holds only files beneath it",
                file.display()
            ))
        })?;
        items.insert(format!("{FILES}{}", relative.display()), read(&file)?);
    }
    Ok(items)
}

/// A catalog read out of items: its text (JSON) and the files it names,
/// by their paths relative to it.
pub struct Unpacked {
    pub catalog: String,
    pub files: BTreeMap<PathBuf, String>,
}

/// The catalog `items` hold.
pub fn unpack(items: &BTreeMap<String, String>) -> Result<Unpacked, ItemsError> {
    let mut sections = Map::new();
    let mut files = BTreeMap::new();
    for (key, body) in items {
        let problem = |problem: String| ItemsError::Item {
            key: key.clone(),
            problem,
        };
        let json = || {
            serde_json::from_str::<Value>(body)
                .map_err(|e| problem(format!("the body is not JSON: {e}")))
        };
        if let Some(name) = key.strip_prefix(FILES) {
            let path = relative_path(name).ok_or_else(|| {
                problem("a file item must name a path beneath the catalog".into())
            })?;
            files.insert(path, body.clone());
        } else if let Some(setting) = key.strip_prefix(SETTINGS) {
            sections.insert(setting.to_owned(), json()?);
        } else if let Some((section, name)) = key.split_once('/')
            && ENTITIES.contains(&section)
            && !name.is_empty()
        {
            let entries = sections
                .entry(section.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(entries) = entries {
                entries.insert(name.to_owned(), json()?);
            }
        } else {
            return Err(problem(
                "not an entity (servers/NAME, tools/NAME…), a setting (settings/NAME) or a file (files/PATH)".into(),
            ));
        }
    }
    if sections.is_empty() {
        return Err(ItemsError::Invalid(
            "the table holds no catalog; write one with `mcp-control-plane catalog push`".into(),
        ));
    }
    let catalog = serde_json::to_string_pretty(&Value::Object(sections)).unwrap_or_default();
    Ok(Unpacked { catalog, files })
}

/// `text` as a path beneath a directory: relative, without `..`.
fn relative_path(text: &str) -> Option<PathBuf> {
    let path = PathBuf::from(text);
    let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
    (plain && !text.is_empty()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_becomes_items_and_comes_back_the_same() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trading/catalog.yaml");
        let items = of_file(&example).unwrap();
        assert!(items.contains_key("servers/marketdata"));
        assert!(items.contains_key("agents/agent-42"));
        assert_eq!(items["settings/environment"], "\"staging\"");
        assert!(items.contains_key("files/policies/authz.rego"));
        assert!(items.contains_key("files/policies/data.yaml"));
        let unpacked = unpack(&items).unwrap();
        let back: Value = serde_json::from_str(&unpacked.catalog).unwrap();
        let original: Value =
            yaml_serde::from_str(&std::fs::read_to_string(&example).unwrap()).unwrap();
        assert_eq!(back, original);
        assert!(
            unpacked
                .files
                .contains_key(Path::new("policies/authz.rego"))
        );
    }

    #[test]
    fn malformed_items_are_refused_with_their_key() {
        let items = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let bad_json = unpack(&items(&[("agents/a", "{role:")])).err().unwrap();
        assert!(
            bad_json
                .to_string()
                .starts_with("item `agents/a`: the body is not JSON"),
            "{bad_json}"
        );
        let escape = unpack(&items(&[("files/../../etc/passwd", "x")]))
            .err()
            .unwrap();
        assert!(
            escape.to_string().contains("beneath the catalog"),
            "{escape}"
        );
        let widgets = unpack(&items(&[("widgets/a", "{}")])).err().unwrap();
        assert!(
            widgets
                .to_string()
                .contains("item `widgets/a`: not an entity"),
            "{widgets}"
        );
        let empty = unpack(&items(&[])).err().unwrap();
        assert!(empty.to_string().contains("holds no catalog"), "{empty}");
    }
}
