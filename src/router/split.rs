//! Weighted targets of one public name (versions, canaries): each call
//! goes to one target, in proportion to the weights, at random or, when
//! sticky, by the caller: the same agent keeps its target while the
//! weights stand, on every replica alike (the choice is a stable hash, not
//! a process's random state).

use sha2::{Digest, Sha256};

/// Targets `T` with their weights.
#[derive(Debug, Clone)]
pub struct Split<T> {
    /// Each target with the end of its share of `0..total`, in order.
    targets: Vec<(u64, T)>,
    total: u64,
    sticky: bool,
}

impl<T> Split<T> {
    /// A split over `weighted`; a target of weight 0 takes no calls. At
    /// least one weight must be above 0 (the catalog's check sees to it).
    pub fn new(weighted: impl IntoIterator<Item = (T, u32)>, sticky: bool) -> Self {
        let mut total = 0;
        // A target of weight 0 keeps its place with a share of no width.
        let targets = weighted
            .into_iter()
            .map(|(target, weight)| {
                total += u64::from(weight);
                (total, target)
            })
            .collect();
        assert!(total > 0, "a split needs a target with weight");
        Self {
            targets,
            total,
            sticky,
        }
    }

    /// Every target with its weight, in order.
    pub fn weighted(&self) -> impl Iterator<Item = (&T, u64)> {
        let starts = std::iter::once(0).chain(self.targets.iter().map(|(end, _)| *end));
        (self.targets.iter().zip(starts)).map(|((end, target), start)| (target, end - start))
    }

    pub fn sticky(&self) -> bool {
        self.sticky
    }

    /// The target of one call by `agent` of `tool`.
    pub fn choose(&self, agent: &str, tool: &str) -> &T {
        let point = match self.sticky {
            true => stable_point(agent, tool) % self.total,
            false => rand::random_range(0..self.total),
        };
        // The first target whose share ends after the point.
        let at = self.targets.partition_point(|(end, _)| *end <= point);
        &self.targets[at].1
    }
}

/// Where an agent's calls of a tool fall, the same in every process.
fn stable_point(agent: &str, tool: &str) -> u64 {
    let mut hash = Sha256::new();
    hash.update(agent.as_bytes());
    hash.update([0]);
    hash.update(tool.as_bytes());
    let digest = hash.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("eight bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_divide_by_weight() {
        let split = Split::new([("a", 90), ("none", 0), ("b", 10)], false);
        let calls = 20_000;
        let to_b = (0..calls)
            .filter(|_| *split.choose("x", "t") == "b")
            .count();
        // 10% of 20,000 is 2,000, with a standard deviation of ~42.
        assert!((1_750..=2_250).contains(&to_b), "{to_b} of {calls} to b");
        assert!((0..1000).all(|_| *split.choose("x", "t") != "none"));
        let weights: Vec<(&str, u64)> = split.weighted().map(|(t, w)| (*t, w)).collect();
        assert_eq!(weights, [("a", 90), ("none", 0), ("b", 10)]);
        let first_takes_none = Split::new([("none", 0), ("a", 1)], false);
        assert!((0..100).all(|_| *first_takes_none.choose("x", "t") == "a"));
    }

    #[test]
    fn a_sticky_split_keeps_each_agent_on_its_target() {
        let split = Split::new([("a", 50), ("b", 50)], true);
        let agents: Vec<String> = (0..200).map(|i| format!("agent-{i}")).collect();
        let first: Vec<&str> = agents.iter().map(|a| *split.choose(a, "t")).collect();
        for _ in 0..5 {
            let again: Vec<&str> = agents.iter().map(|a| *split.choose(a, "t")).collect();
            assert_eq!(again, first);
        }
        // And the agents still spread over both targets.
        let to_a = first.iter().filter(|t| **t == "a").count();
        assert!((60..=140).contains(&to_a), "{to_a} of 200 on a");
    }
}
