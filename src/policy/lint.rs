//! Where a policy may decide differently here than in OPA.
//!
//! `not` over a comparison or a built-in call whose operand is undefined
//! (`not lp > 0`, `not startswith(input.name, "x")` with `lp` or
//! `input.name` undefined) holds in regorus and fails in OPA, which
//! evaluates the operands outside the negation. Operators test policies
//! with OPA's tools, so `check` points at each such line; a named rule,
//! negated (`positive if lp > 0` ... `not positive`), means the same in
//! both. Equality (`not x == 1`) holds in both and is not flagged.

/// Operators that are calls in OPA (all but equality), spaced as `opa fmt`
/// writes them.
const OPERATORS: [&str; 6] = [" > ", " < ", " >= ", " <= ", " != ", " in "];

/// The 1-based lines of `source` that negate a comparison, a membership
/// test or a call.
pub fn negated_comparisons(source: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    for (index, line) in source.lines().enumerate() {
        let code = line.split('#').next().unwrap_or_default();
        let negated = (code.match_indices("not ")).find_map(|(at, _)| {
            let before = code[..at].chars().next_back();
            before
                .is_none_or(|c| c.is_whitespace() || c == '{' || c == ';')
                .then(|| &code[at + 4..])
        });
        let Some(negated) = negated else {
            continue;
        };
        if OPERATORS.iter().any(|op| negated.contains(op)) || calls(negated) {
            lines.push(index + 1);
        }
    }
    lines
}

/// Whether `expression` calls a function (`name(`, `a.b(`).
fn calls(expression: &str) -> bool {
    let bytes = expression.as_bytes();
    (expression.match_indices('('))
        .any(|(at, _)| at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_negated_comparisons_and_calls_only() {
        let source = "package p\n\
                      a if not lp > 0\n\
                      \tnot count(input.xs) >= 1\n\
                      \tnot startswith(input.name, \"x\")\n\
                      \tnot positive\n\
                      \tnot input.x == 1\n\
                      \t# not lp > 0 in a comment\n\
                      \tnot input.desk in desks\n\
                      \tnot (x)\n\
                      \tcannot > 1\n";
        assert_eq!(negated_comparisons(source), [2, 3, 4, 8]);
    }
}
