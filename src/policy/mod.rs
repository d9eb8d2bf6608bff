//! Policy: may this caller use this tool, prompt or resource?
//!
//! Two checks, in order, before anything reaches an upstream:
//! 1. the role check ([`role`]): the catalog's grants;
//! 2. the Rego policy ([`rego`]), evaluated in-process on an input document
//!    ([`input`]) that describes the verified caller, the target, the
//!    arguments and the deployment, compiled with each catalog version
//!    ([`rules`]).
//!
//! Both deny by default: an unknown target, a missing policy, an undefined
//! or non-boolean result, an evaluation error are all refusals.
//!
//! A policy may also judge each tool result before it leaves ([`result`]):
//! pass it, withhold it, or have parts of it redacted.

pub mod input;
pub mod lint;
pub mod rego;
pub mod result;
mod role;
mod rules;

pub use rego::{Decision, DenyCause, PolicyError, RegoPolicy};
pub use role::{Authorized, Located, NotPermitted, authorize, locate};
pub use rules::{Policies, PolicyStatus, policy_files};
