//! Guardrails: checks on what goes to a tool and what comes back from it,
//! beyond who may call it. Each is used by one stage of the pipeline.
//!
//! - [`arguments`]: a call's arguments checked against the tool's input
//!   schema before any credential is minted;
//! - [`result_size`]: a result larger than its tool's or server's
//!   `max_result_bytes` fails cleanly instead of flooding the agent;
//! - [`detect`]: secrets and personal data found in arguments and results,
//!   handed to the policy as `input.findings`;
//! - [`redact`]: parts of a result replaced, as the result policy asks;
//! - [`pins`]: tool definitions pinned in a lock file; one a server later
//!   serves differently is quarantined.

pub mod arguments;
pub mod detect;
pub mod pins;
pub mod redact;
pub mod result_size;
