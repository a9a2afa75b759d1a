//! Env files, parsed like Docker Compose's `env_file`.

use std::fmt;
use zeroize::Zeroizing;

/// One `NAME=VALUE` line of an env file. The value may be a secret: `Debug` hides it.
pub struct DotenvEntry {
    /// The variable's name, as written (after an optional `export `).
    pub name: String,
    /// The value after unquoting; zeroized on drop.
    pub value: Zeroizing<String>,
    /// 1-based line of the entry.
    pub line: usize,
}

impl fmt::Debug for DotenvEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DotenvEntry({} at line {})", self.name, self.line)
    }
}

/// A syntax error in an env file: where, and why (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DotenvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for DotenvError {}

/// Parses an env file's text into its entries, in order.
///
/// The rules are Docker Compose's `env_file`: `NAME=VALUE` lines, optional `export `, blank
/// lines and full-line `#` comments, CRLF or LF line ends, a last line with or without a line
/// break. A value is either single-quoted (literal, may span lines), double-quoted (escapes
/// `\n`, `\r`, `\t`, `\"`, `\\`, a backslash before a line break joins the lines; may span
/// lines) or unquoted (trimmed, a `#` after whitespace starts a comment). A name matches
/// `[A-Za-z_][A-Za-z0-9_.-]*`. A later entry for the same name is returned too: the last wins.
pub fn parse_dotenv(text: &str) -> Result<Vec<DotenvEntry>, DotenvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut cursor = Cursor {
        text,
        pos: 0,
        line: 1,
    };
    let mut entries = Vec::new();
    while cursor.pos < text.len() {
        if let Some(entry) = cursor.next_entry()? {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// A position in the file: byte offset (always on a character boundary) and 1-based line.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Cursor<'a> {
    /// Parses the line at the cursor (and the lines a quoted value spans), then moves past it.
    fn next_entry(&mut self) -> Result<Option<DotenvEntry>, DotenvError> {
        let line = self.line;
        let current = strip_cr(self.slice(self.pos, self.line_end(self.pos)));
        let body = current.trim_start();
        if body.is_empty() || body.starts_with('#') {
            self.advance_past_line(self.pos);
            return Ok(None);
        }
        let body = strip_export(body);
        let Some((name, _)) = body.split_once('=') else {
            return Err(error(line, "expected NAME=VALUE, but the line has no '='"));
        };
        let name = name.trim_end();
        check_name(name).map_err(|message| error(line, message))?;
        // `body` and `name` are suffixes/prefixes of the current line: offsets follow from lengths.
        let value_at = self.pos + (current.len() - body.len()) + body.find('=').unwrap_or(0) + 1;
        let (value, end) = self
            .value(value_at)
            .map_err(|message| error(line, message))?;
        self.advance_past_line(end);
        Ok(Some(DotenvEntry {
            name: name.to_owned(),
            value,
            line,
        }))
    }

    /// The value starting at byte `at`, and where the text after it starts.
    fn value(&self, at: usize) -> Result<(Zeroizing<String>, usize), &'static str> {
        let after = self.slice(at, self.text.len());
        let start = at + (after.len() - after.trim_start_matches([' ', '\t']).len());
        let rest = self.slice(start, self.text.len());
        let (value, end) = if let Some(quoted) = rest.strip_prefix('\'') {
            let close = quoted
                .find('\'')
                .ok_or("unterminated single-quoted value")?;
            (literal(&quoted[..close]), start + 1 + close + 1)
        } else if let Some(quoted) = rest.strip_prefix('"') {
            let close = closing_double_quote(quoted).ok_or("unterminated double-quoted value")?;
            (unescape(&quoted[..close]), start + 1 + close + 1)
        } else {
            let line_end = self.line_end(start);
            let raw = strip_cr(self.slice(start, line_end));
            let raw = raw
                .get(..comment_start(self.slice(at, start).len(), raw))
                .unwrap_or(raw);
            return Ok((Zeroizing::new(raw.trim_end().to_owned()), line_end));
        };
        let tail = strip_cr(self.slice(end, self.line_end(end))).trim_start();
        if tail.is_empty() || tail.starts_with('#') {
            Ok((value, end))
        } else {
            Err("unexpected text after the closing quote")
        }
    }

    /// Moves to the start of the line after the one holding byte `at`, counting lines.
    fn advance_past_line(&mut self, at: usize) {
        let next = (self.line_end(at) + 1).min(self.text.len());
        let consumed = self.slice(self.pos, next);
        self.line += consumed.bytes().filter(|&b| b == b'\n').count();
        self.pos = next;
    }

    /// The offset of the `\n` ending the line that holds byte `at` (or the end of the text).
    fn line_end(&self, at: usize) -> usize {
        let rest = self.slice(at, self.text.len());
        rest.find('\n').map_or(self.text.len(), |i| at + i)
    }

    // Every offset here comes from finding an ASCII character, hence a character boundary.
    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.text.get(from..to).unwrap_or("")
    }
}

fn strip_cr(line: &str) -> &str {
    line.strip_suffix('\r').unwrap_or(line)
}

/// `body` without a leading `export ` (a variable named `export` keeps its name).
fn strip_export(body: &str) -> &str {
    match body.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => body,
    }
}

fn check_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => Err("missing variable name before '='"),
        Some(first) if first.is_ascii_alphabetic() || first == '_' => {
            if chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
                Ok(())
            } else {
                Err("invalid variable name: use only letters, digits, '_', '.' and '-'")
            }
        }
        Some(_) => Err("invalid variable name: it must start with a letter or '_'"),
    }
}

/// Where an inline comment starts in an unquoted value: at a `#` that follows whitespace.
/// `skipped` is the whitespace trimmed before the value, which counts as preceding it.
fn comment_start(skipped: usize, raw: &str) -> usize {
    let bytes = raw.as_bytes();
    let after_space = |i: usize| match i.checked_sub(1) {
        Some(before) => matches!(bytes.get(before), Some(b' ' | b'\t')),
        None => skipped > 0,
    };
    (0..bytes.len())
        .find(|&i| bytes.get(i) == Some(&b'#') && after_space(i))
        .unwrap_or(raw.len())
}

/// The offset of the `"` closing a double-quoted value, skipping escaped characters.
fn closing_double_quote(quoted: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in quoted.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// A single-quoted value: literal, with CRLF line breaks read as LF.
fn literal(raw: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(raw.len()));
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if !(c == '\r' && chars.peek() == Some(&'\n')) {
            out.push(c);
        }
    }
    out
}

/// A double-quoted value's escapes resolved; an unknown escape is kept as written.
fn unescape(raw: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(raw.len()));
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('\r', Some('\n')) => {}
            ('\\', Some(next)) => {
                chars.next();
                match next {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    '"' | '\\' => out.push(next),
                    // A backslash before a line break joins the lines.
                    '\n' => {}
                    '\r' if chars.peek() == Some(&'\n') => {
                        chars.next();
                    }
                    _ => {
                        out.push('\\');
                        out.push(next);
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn error(line: usize, message: &str) -> DotenvError {
    DotenvError {
        line,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (name, value, line) of each entry.
    fn parse(text: &str) -> Vec<(String, String, usize)> {
        parse_dotenv(text)
            .unwrap()
            .into_iter()
            .map(|entry| (entry.name, entry.value.to_string(), entry.line))
            .collect()
    }

    fn one(text: &str) -> String {
        let entries = parse(text);
        assert_eq!(entries.len(), 1, "{text:?}");
        entries[0].1.clone()
    }

    fn entry(name: &str, value: &str, line: usize) -> (String, String, usize) {
        (name.to_owned(), value.to_owned(), line)
    }

    #[test]
    fn plain_lines_comments_blanks_and_export() {
        let text = "# a comment\n\nA=1\n  # indented comment\nexport B=two\nexport\tC=3\n";
        assert_eq!(
            parse(text),
            [entry("A", "1", 3), entry("B", "two", 5), entry("C", "3", 6)]
        );
    }

    #[test]
    fn crlf_line_ends_and_a_last_line_without_newline() {
        assert_eq!(
            parse("A=1\r\nB=cGFzc3dvcmQ=\r\nC=last"),
            [
                entry("A", "1", 1),
                entry("B", "cGFzc3dvcmQ=", 2),
                entry("C", "last", 3)
            ]
        );
    }

    #[test]
    fn unquoted_values_are_trimmed_and_lose_inline_comments() {
        assert_eq!(one("A=  spaced value   "), "spaced value");
        assert_eq!(one("A=value # comment"), "value");
        assert_eq!(one("A=value\t# comment"), "value");
        assert_eq!(one("A=val#ue"), "val#ue");
        assert_eq!(one("A=#not-a-comment"), "#not-a-comment");
        assert_eq!(one("A= # only a comment"), "");
        assert_eq!(one("A="), "");
        assert_eq!(one("A = b"), "b");
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(one(r"A='a\nb # c $X'"), r"a\nb # c $X");
        assert_eq!(one("A='  kept  ' # comment"), "  kept  ");
        assert_eq!(one("A='two\r\nlines'"), "two\nlines");
    }

    #[test]
    fn double_quotes_resolve_escapes() {
        assert_eq!(one(r#"A="a\nb\tc\rd\"e\\f""#), "a\nb\tc\rd\"e\\f");
        assert_eq!(one(r#"A="unknown \q kept""#), r"unknown \q kept");
        assert_eq!(one(r##"A="# not a comment" # comment"##), "# not a comment");
    }

    #[test]
    fn double_quoted_values_span_lines_and_join_escaped_line_breaks() {
        assert_eq!(
            parse("A=\"first\nsecond\"\nB=2\n"),
            [entry("A", "first\nsecond", 1), entry("B", "2", 3)]
        );
        assert_eq!(one("A=\"joined \\\r\nline\""), "joined line");
    }

    #[test]
    fn a_variable_named_export_keeps_its_name() {
        assert_eq!(parse("export=1"), [entry("export", "1", 1)]);
    }

    #[test]
    fn names_may_hold_dots_and_dashes() {
        assert_eq!(parse("_a.b-c=1"), [entry("_a.b-c", "1", 1)]);
    }

    #[test]
    fn later_entries_are_kept_in_order() {
        assert_eq!(parse("A=1\nA=2"), [entry("A", "1", 1), entry("A", "2", 2)]);
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        assert_eq!(parse("\u{feff}A=1"), [entry("A", "1", 1)]);
    }

    fn error(text: &str) -> DotenvError {
        parse_dotenv(text).unwrap_err()
    }

    #[test]
    fn errors_name_the_line_and_never_the_value() {
        let cases = [
            ("A=1\nhunter2-secret\n", 2, "no '='"),
            ("A=1\n\n1ABC=hunter2-secret", 3, "must start with a letter"),
            ("MY VAR=hunter2-secret", 1, "use only letters"),
            ("=hunter2-secret", 1, "missing variable name"),
            ("A='hunter2-secret\nB=1", 1, "unterminated single-quoted"),
            (
                "A=1\nB=\"hunter2-secret\\\"",
                2,
                "unterminated double-quoted",
            ),
            ("A='hunter2' -secret", 1, "after the closing quote"),
        ];
        for (text, line, fragment) in cases {
            let error = error(text);
            assert_eq!(error.line, line, "{text:?}");
            assert!(error.message.contains(fragment), "{text:?}: {error}");
            assert!(!error.to_string().contains("hunter2"), "{text:?}: {error}");
        }
    }

    #[test]
    fn debug_hides_the_value() {
        let entries = parse_dotenv("SECRET_X=hunter2").unwrap();
        let debug = format!("{entries:?}");
        assert!(
            debug.contains("SECRET_X") && !debug.contains("hunter2"),
            "{debug}"
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(text in any::<String>()) {
            let _ = parse_dotenv(&text);
        }

        #[test]
        fn never_panics_on_env_like_text(text in "([A-Za-z_ #='\"\\\\\r\n\t.é-]|export ){0,80}") {
            if let Ok(entries) = parse_dotenv(&text) {
                for entry in entries {
                    prop_assert!(entry.line >= 1);
                    prop_assert!(check_name(&entry.name).is_ok());
                }
            }
        }
    }
}
