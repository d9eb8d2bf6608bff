//! Trace context (W3C Trace Context): one trace id follows a request from the
//! agent through the control plane. An agent's valid `traceparent` is
//! continued; otherwise a new trace starts. A leaf: every floor reads it.

use std::fmt;

/// The trace a request belongs to and this control plane's span in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The caller's span, when it sent a valid `traceparent`.
    pub parent_span_id: Option<[u8; 8]>,
}

impl TraceContext {
    /// Continue the caller's trace when `traceparent` is valid, else start one.
    pub fn from_traceparent(traceparent: Option<&str>) -> Self {
        let parsed = traceparent.and_then(parse);
        Self {
            trace_id: parsed.map_or_else(random_nonzero, |(trace, _)| trace),
            span_id: random_nonzero(),
            parent_span_id: parsed.map(|(_, parent)| parent),
        }
    }

    /// A new span id for a child span (the call to an upstream).
    pub fn child_span_id() -> [u8; 8] {
        random_nonzero()
    }

    /// The `traceparent` naming `span` of this trace as the parent.
    pub fn traceparent_for(&self, span: [u8; 8]) -> String {
        format!("00-{}-{}-01", hex::encode(self.trace_id), hex::encode(span))
    }

    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The `traceparent` header naming this control plane's span.
    pub fn traceparent(&self) -> String {
        self.traceparent_for(self.span_id)
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.trace_id_hex())
    }
}

/// The trace id and parent span id of a `traceparent` header
/// (`00-<32 hex>-<16 hex>-<2 hex>`), or `None` when it is malformed or all
/// zeros.
fn parse(header: &str) -> Option<([u8; 16], [u8; 8])> {
    let mut parts = header.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let lower_hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if version == "ff" || !lower_hex(version, 2) || !lower_hex(parent, 16) || !lower_hex(flags, 2) {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let mut trace_id = [0u8; 16];
    if !lower_hex(trace, 32) || hex::decode_to_slice(trace, &mut trace_id).is_err() {
        return None;
    }
    let mut parent_id = [0u8; 8];
    hex::decode_to_slice(parent, &mut parent_id).ok()?;
    (trace_id != [0; 16] && parent_id != [0; 8]).then_some((trace_id, parent_id))
}

/// Whether a `tracestate` header is worth passing on: at most 512
/// printable ASCII characters (W3C Trace Context's limit), no control bytes.
pub fn is_valid_tracestate(state: &str) -> bool {
    !state.is_empty() && state.len() <= 512 && state.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn random_nonzero<const N: usize>() -> [u8; N] {
    loop {
        let bytes: [u8; N] = rand::random();
        if bytes != [0; N] {
            return bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_valid_traceparent() {
        let ctx = TraceContext::from_traceparent(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(
            ctx.traceparent()
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        );
    }

    #[test]
    fn starts_a_new_trace_for_invalid_headers() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let ctx = TraceContext::from_traceparent(Some(bad));
            assert_ne!(
                ctx.trace_id_hex(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad}"
            );
            assert_ne!(ctx.trace_id, [0; 16]);
        }
    }

    #[test]
    fn new_traces_differ() {
        let a = TraceContext::from_traceparent(None);
        let b = TraceContext::from_traceparent(None);
        assert_ne!(a.trace_id, b.trace_id);
    }
}
