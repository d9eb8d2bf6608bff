//! Resource URI normalization: never a panic, a normal form is its own
//! normal form, and no dot segment survives in a hierarchical path.
#![no_main]
use mcp_control_plane::uri::normalize;

libfuzzer_sys::fuzz_target!(|text: &str| {
    let Ok(normal) = normalize(text) else {
        return;
    };
    assert_eq!(normalize(&normal).as_deref(), Ok(normal.as_str()), "{text:?}");
    let path = normal.split(['?', '#']).next().unwrap_or_default();
    if let Some((_, rest)) = path.split_once("://") {
        let path = rest.find('/').map_or("", |at| &rest[at..]);
        assert!(
            path.split('/').all(|segment| segment != "." && segment != ".."),
            "{text:?} -> {normal:?}"
        );
    }
});
