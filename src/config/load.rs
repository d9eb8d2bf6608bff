//! Reading a catalog file: parse (YAML or JSON), then validate.
//!
//! Every error names the file, the path inside the file (`tools.read_positions.server`)
//! and what is wrong, so a CI job running `check` points straight at the line to fix.

use std::fmt;
use std::path::{Path, PathBuf};

use super::CatalogFile;
use super::validate::validate;

/// One problem in a catalog file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// Line and column where the parser stopped, when known.
    pub location: Option<(usize, usize)>,
    /// Dotted path inside the document (`servers.marketdata.timeout`); empty for the root.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        let path = if self.path.is_empty() {
            "(root)"
        } else {
            &self.path
        };
        write!(f, ": {path}: {}", self.message)
    }
}

/// All problems found in a catalog file (validation reports every one it finds).
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Read, parse and validate the catalog at `path`.
pub fn load_file(path: &Path) -> Result<CatalogFile, ConfigErrors> {
    read_file(path).map(|(file, _)| file)
}

/// Read, parse and validate the catalog at `path`; also returns the text
/// it was read from.
pub fn read_file(path: &Path) -> Result<(CatalogFile, String), ConfigErrors> {
    let dir = path.parent().unwrap_or(Path::new(""));
    let text = super::files::read_within(path, dir).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            location: None,
            path: String::new(),
            message: format!("cannot read file: {e}"),
        }])
    })?;
    let is_json = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
    parse_str(&text, is_json, path).map(|file| (file, text))
}

/// Parse and validate catalog text; `file` is only used in error messages.
pub fn parse_str(text: &str, is_json: bool, file: &Path) -> Result<CatalogFile, ConfigErrors> {
    let catalog = if is_json {
        parse_json(text, file)
    } else {
        parse_yaml(text, file)
    }
    .map_err(|e| ConfigErrors(vec![e]))?;
    let errors = validate(&catalog, file);
    if errors.is_empty() {
        Ok(catalog)
    } else {
        Err(ConfigErrors(errors))
    }
}

fn parse_json(text: &str, file: &Path) -> Result<CatalogFile, ConfigError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let inner = e.inner();
        ConfigError {
            file: file.to_path_buf(),
            location: Some((inner.line(), inner.column())),
            path: clean_path(&e.path().to_string()),
            message: super::files::scrub(&strip_position(&inner.to_string())),
        }
    })
}

fn parse_yaml(text: &str, file: &Path) -> Result<CatalogFile, ConfigError> {
    let deserializer = yaml_serde::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let inner = e.inner();
        let path = clean_path(&e.path().to_string());
        // The YAML parser names the path too: say it once.
        let message = strip_position(&inner.to_string());
        let message =
            (message.strip_prefix(&format!("{path}: "))).map_or(message.clone(), str::to_owned);
        ConfigError {
            file: file.to_path_buf(),
            location: inner.location().map(|l| (l.line(), l.column())),
            path,
            message: super::files::scrub(&message),
        }
    })
}

/// `serde_path_to_error` renders the root as `.`.
fn clean_path(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_string()
    }
}

/// Parsers append " at line X column Y"; we report the position separately.
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
