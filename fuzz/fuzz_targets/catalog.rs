//! The catalog loader: YAML and JSON text through parsing, validation and
//! compilation. Bad text is an error, never a panic.
#![no_main]
use std::path::Path;

use mcp_control_plane::catalog::Catalog;
use mcp_control_plane::config::parse_str;

libfuzzer_sys::fuzz_target!(|input: (bool, &str)| {
    let (is_json, text) = input;
    if let Ok(file) = parse_str(text, is_json, Path::new("fuzz.yaml")) {
        let _ = Catalog::compile(&file, Path::new("/nonexistent"));
    }
});
