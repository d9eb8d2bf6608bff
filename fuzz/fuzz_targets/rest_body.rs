//! `/invoke` and `/tools` bodies.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    mcp_control_plane::api::fuzz::rest_body(bytes);
});
