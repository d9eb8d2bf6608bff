//! public_names: on the way back from a leg, a tool's error result that
//! names the tool by its name on the server names it by its public name
//! instead. Servers write their own tool names into error texts ("Tool
//! simulate-research-query requires task augmentation"); a catalog that
//! renames a tool would otherwise show the agent a name it never used,
//! and with it which server answered.

use futures::future::BoxFuture;
use rmcp::model::{ContentBlock, ServerResult};

use crate::pipeline::Exchange;
use crate::pipeline::stage::{Answer, Stage};

pub struct PublicNames;

impl Stage for PublicNames {
    fn name(&self) -> &'static str {
        "public_names"
    }

    fn response<'a, 'e>(
        &'a self,
        exchange: &'a mut Exchange<'e>,
        answer: &'a mut Answer,
    ) -> BoxFuture<'a, ()> {
        rename(exchange, answer);
        Box::pin(std::future::ready(()))
    }
}

fn rename(exchange: &Exchange<'_>, answer: &mut Answer) {
    let (Ok(ServerResult::CallToolResult(result)), Some(to)) = (answer, &exchange.authorized)
    else {
        return;
    };
    if result.is_error != Some(true) || to.upstream_name == to.name {
        return;
    }
    for block in &mut result.content {
        if let ContentBlock::Text(text) = block {
            text.text = replace_word(&text.text, &to.upstream_name, &to.name);
        }
    }
}

/// `text` with every occurrence of `word` that stands on its own (not part
/// of a longer name) replaced by `with`.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let part_of_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        let alone = !before.is_some_and(part_of_name) && !after.is_some_and(part_of_name);
        out.push_str(if alone { with } else { word });
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::replace_word;

    #[test]
    fn only_the_name_standing_alone_is_replaced() {
        let said = "Tool simulate-query requires task augmentation (simulate-query-v2 does not)";
        assert_eq!(
            replace_word(said, "simulate-query", "research_query"),
            "Tool research_query requires task augmentation (simulate-query-v2 does not)"
        );
        assert_eq!(
            replace_word("`echo`: echo failed", "echo", "say"),
            "`say`: say failed"
        );
        assert_eq!(replace_word("echoes", "echo", "say"), "echoes");
        assert_eq!(replace_word("", "echo", "say"), "");
    }
}
