//! The size of a tool's result as it would leave: counted by serializing it
//! into a counter (nothing is allocated), only when a limit applies.

use std::io;

use rmcp::model::CallToolResult;

/// The length of `result` as JSON.
pub fn json_len(result: &CallToolResult) -> usize {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail; a value that cannot be serialized
    // would fail later anyway, and counts what was written before.
    let _ = serde_json::to_writer(&mut counter, result);
    counter.0
}

struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ContentBlock;

    #[test]
    fn the_count_is_the_length_of_the_json() {
        let result = CallToolResult::success(vec![ContentBlock::text("x".repeat(1000))]);
        assert_eq!(
            json_len(&result),
            serde_json::to_vec(&result).unwrap().len()
        );
    }
}
