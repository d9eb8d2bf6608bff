//! Unauthenticated refusals, recorded in aggregate per address: anyone can
//! send requests without a token, and one record each would let a single
//! client grow the audit store at megabytes a second until the disk is
//! full and everyone is refused. The first few from an address in each
//! window are recorded one by one, as usual; the rest are counted, and
//! one summary record per address and window says how many there were,
//! with the first of them as its sample.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AuditRecord;
use crate::vocabulary::Outcome;

/// Refusals from one address recorded one by one in each window.
pub const INDIVIDUAL: u64 = 20;
/// How long one window lasts.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Most addresses counted apart; beyond, the rest share one count (under
/// the unspecified address `::`).
const MAX_SOURCES: usize = 10_000;

#[derive(Default)]
pub struct Tally(Mutex<HashMap<IpAddr, Window>>);

struct Window {
    started: Instant,
    recorded: u64,
    counted: u64,
    /// The first refusal counted, for the summary.
    sample: Option<AuditRecord>,
}

impl Tally {
    /// Whether `record` is counted into its address's summary rather than
    /// written itself.
    pub fn absorb(&self, record: &AuditRecord) -> bool {
        let (Outcome::Unauthenticated, None, Some(mut source)) =
            (record.outcome, &record.agent_id, record.client)
        else {
            return false;
        };
        let mut sources = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !sources.contains_key(&source) && sources.len() >= MAX_SOURCES {
            source = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        }
        let window = sources.entry(source).or_insert_with(|| Window {
            started: Instant::now(),
            recorded: 0,
            counted: 0,
            sample: None,
        });
        if window.recorded < INDIVIDUAL {
            window.recorded += 1;
            return false;
        }
        window.counted += 1;
        window.sample.get_or_insert_with(|| record.clone());
        true
    }

    /// The summaries of the windows that ended by `now` (all of them when
    /// `closing`).
    pub fn due(&self, now: Instant, closing: bool) -> Vec<AuditRecord> {
        let mut sources = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut summaries = Vec::new();
        sources.retain(|source, window| {
            if !closing && now.duration_since(window.started) < WINDOW {
                return true;
            }
            if let Some(mut summary) = window.sample.take() {
                summary.aggregated = Some(window.counted);
                summary.client = Some(*source);
                summary.reasons = vec![format!(
                    "{} more unauthenticated requests from {source} within {}s (the first {INDIVIDUAL} were recorded one by one); this record stands for them all, its trace the first of them",
                    window.counted,
                    WINDOW.as_secs(),
                )];
                summaries.push(summary);
            }
            false
        });
        summaries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace_context::TraceContext;
    use crate::vocabulary::{Action, FrontDoor};

    fn refused(from: &str) -> AuditRecord {
        let trace = TraceContext::from_traceparent(None);
        let mut record = AuditRecord::new(trace, Action::Call, FrontDoor::Rest, "test".into());
        record.outcome = Outcome::Unauthenticated;
        record.client = Some(from.parse().unwrap());
        record
    }

    #[test]
    fn beyond_the_first_few_an_address_is_counted_not_recorded() {
        let tally = Tally::default();
        let absorbed = (0..INDIVIDUAL + 30)
            .filter(|_| tally.absorb(&refused("192.0.2.1")))
            .count();
        assert_eq!(absorbed, 30);
        // Another address, and an authenticated caller, are their own.
        assert!(!tally.absorb(&refused("192.0.2.2")));
        let mut known = refused("192.0.2.1");
        known.agent_id = Some("agent-7".into());
        assert!(!tally.absorb(&known));
        assert!(tally.due(Instant::now(), false).is_empty());
        let summaries = tally.due(Instant::now() + WINDOW, false);
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].aggregated, Some(30));
        assert!(summaries[0].reasons[0].starts_with("30 more"));
        // A new window starts afresh.
        assert!(!tally.absorb(&refused("192.0.2.1")));
    }
}
