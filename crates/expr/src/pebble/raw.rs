//! `{% raw %}` as Kestra pre-processes it (`VariableRenderer`): a raw block is found by a
//! pattern, not by the template grammar, so its `-` whitespace markers trim nothing; it survives
//! every pass of a recursive `render()` as written; and a render's output has the raw blocks it
//! holds (from a variable's value, too) replaced by their text.

use regex::{Captures, Regex};
use std::borrow::Cow;
use std::sync::LazyLock;

/// Kestra's `RAW_PATTERN`, also across lines (where Pebble, which has no `raw` tag, fails).
static RAW: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?s)\{%-*\s*raw\s*-*%\}(.*?)\{%-*\s*endraw\s*-*%\}").ok());

/// Marks a protected raw block: private-use characters no template or value is expected to hold.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// `text` with its raw blocks replaced by their text.
pub(crate) fn strip(text: &str) -> Cow<'_, str> {
    match RAW.as_ref() {
        Some(raw) if text.contains("{%") => {
            raw.replace_all(text, |c: &Captures<'_>| c[1].to_string())
        }
        _ => Cow::Borrowed(text),
    }
}

/// A template whose raw blocks were set aside for one render pass.
pub(crate) struct Protected<'a> {
    pub(crate) text: Cow<'a, str>,
    blocks: Vec<String>,
}

impl<'a> Protected<'a> {
    /// `text` with each raw block replaced by a marker.
    pub(crate) fn new(text: &'a str) -> Self {
        let mut blocks = Vec::new();
        let text = match RAW.as_ref() {
            Some(raw) if text.contains("{%") => raw.replace_all(text, |c: &Captures<'_>| {
                blocks.push(c[0].to_string());
                format!("{OPEN}{}{CLOSE}", blocks.len() - 1)
            }),
            _ => Cow::Borrowed(text),
        };
        Self { text, blocks }
    }

    /// `rendered` with the markers replaced by the raw blocks, as written.
    pub(crate) fn restore(&self, rendered: String) -> String {
        if self.blocks.is_empty() {
            return rendered;
        }
        let mut out = rendered;
        for (i, block) in self.blocks.iter().enumerate() {
            out = out.replace(&format!("{OPEN}{i}{CLOSE}"), block);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_blocks_are_stripped_to_their_text_whatever_their_markers() {
        assert_eq!(
            strip("a {%-  raw%}{{ x }}{%endraw -%} b {% raw %}y{% endraw %}"),
            "a {{ x }} b y"
        );
        assert_eq!(strip("no blocks"), "no blocks");
    }

    #[test]
    fn protected_blocks_come_back_as_written() {
        let protected = Protected::new("{{ a }}{% raw %}{{ b }}{% endraw %}");
        assert!(!protected.text.contains("{{ b }}"));
        let rendered = protected.text.replace("{{ a }}", "A");
        assert_eq!(protected.restore(rendered), "A{% raw %}{{ b }}{% endraw %}");
    }
}
