//! `/mcp` POST bodies: the guard's parse and params check, then rmcp's.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    mcp_control_plane::api::fuzz::jsonrpc_message(bytes);
});
