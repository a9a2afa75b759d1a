//! Step one of the front end: split a template into text, comments, `{{ }}` and `{% %}`, and
//! the inside of each tag into tokens.
//!
//! The end of a tag is found by the tokenizer, not by searching for `}}`: a string literal or a
//! map literal may hold `}}` (`{{ '}}' }}`, `{{ {'a': {'b': 1}} }}`).

use crate::error::Failure;

/// One token of an expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An identifier or a word operator (`and`, `is`, `contains`, ...).
    Name(String),
    /// An integer literal, as written.
    Int(String),
    /// A float literal, as written.
    Float(String),
    /// A string literal, escapes resolved.
    Str(String),
    /// Punctuation or a symbolic operator.
    Op(&'static str),
}

/// A token and the template line it starts on.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) line: usize,
}

/// Whitespace control: `{{-` trims before, `-}}` trims after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Trim {
    pub(crate) left: bool,
    pub(crate) right: bool,
}

/// What a piece of the template is.
#[derive(Debug, Clone)]
pub(crate) enum PieceKind<'a> {
    /// Plain text, printed as is.
    Text,
    /// `{# ... #}`.
    Comment(Trim),
    /// `{{ ... }}`.
    Print(Trim, Vec<Token>),
    /// `{% ... %}` other than `raw`.
    Tag(Trim, Vec<Token>),
    /// `{% raw %}body{% endraw %}` (or `verbatim`): the body is never interpreted.
    Raw {
        open: Trim,
        body: &'a str,
        close: Trim,
    },
}

/// A piece of the template with its text as written and its first line (1-based).
#[derive(Debug, Clone)]
pub(crate) struct Piece<'a> {
    pub(crate) kind: PieceKind<'a>,
    pub(crate) text: &'a str,
    pub(crate) line: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Delim {
    Print,
    Tag,
    Comment,
}

/// Symbolic operators, longest first so that `???` is not read as `??` then `?`.
const OPERATORS: &[&str] = &[
    "???", "??", "..", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",", ":", ".", "|",
    "~", "?", "+", "-", "*", "/", "%", "<", ">", "=",
];

/// Splits `src` into pieces.
pub(crate) fn scan(src: &str) -> Result<Vec<Piece<'_>>, Failure> {
    let mut pieces = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    while pos < src.len() {
        let Some((start, delim)) = find_open(src, pos) else {
            pieces.push(text_piece(&src[pos..], line));
            break;
        };
        if start > pos {
            let text = &src[pos..start];
            pieces.push(text_piece(text, line));
            line += newlines(text);
        }
        let (kind, end) = match delim {
            Delim::Comment => scan_comment(src, start, line)?,
            Delim::Print | Delim::Tag => scan_code(src, start, delim, line)?,
        };
        let (kind, end) = match kind {
            PieceKind::Tag(open, tokens) if is_raw_open(&tokens) => {
                // Kestra finds `raw` blocks by a pattern before Pebble sees the template: their
                // `-` markers trim nothing. `verbatim` is Pebble's own tag, and trims.
                let open = if is_word(&tokens, "raw") {
                    Trim::default()
                } else {
                    open
                };
                scan_raw(src, end, open, line)?
            }
            kind => (kind, end),
        };
        let text = &src[start..end];
        pieces.push(Piece { kind, text, line });
        line += newlines(text);
        pos = end;
    }
    Ok(pieces)
}

fn text_piece(text: &str, line: usize) -> Piece<'_> {
    Piece {
        kind: PieceKind::Text,
        text,
        line,
    }
}

pub(crate) fn newlines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

/// Whether `src` holds anything but plain text (the renderer's fast path).
pub(crate) fn has_markup(src: &str) -> bool {
    find_open(src, 0).is_some()
}

fn find_open(src: &str, from: usize) -> Option<(usize, Delim)> {
    let mut i = from;
    while let Some(off) = src.get(i..)?.find('{') {
        let at = i + off;
        match src.as_bytes().get(at + 1) {
            Some(b'{') => return Some((at, Delim::Print)),
            Some(b'%') => return Some((at, Delim::Tag)),
            Some(b'#') => return Some((at, Delim::Comment)),
            _ => i = at + 1,
        }
    }
    None
}

fn scan_comment(
    src: &str,
    start: usize,
    line: usize,
) -> Result<(PieceKind<'static>, usize), Failure> {
    let body_start = start + 2;
    let left = src.as_bytes().get(body_start) == Some(&b'-');
    let Some(off) = src[body_start..].find("#}") else {
        return Err(Failure::syntax(
            "Unclosed comment: `{#` without `#}`.",
            line,
        ));
    };
    let close = body_start + off;
    let right =
        close > body_start + usize::from(left) && src.as_bytes().get(close - 1) == Some(&b'-');
    Ok((PieceKind::Comment(Trim { left, right }), close + 2))
}

fn scan_code(
    src: &str,
    start: usize,
    delim: Delim,
    line: usize,
) -> Result<(PieceKind<'static>, usize), Failure> {
    let mut lexer = Lexer {
        src,
        pos: start + 2,
        line,
        depth: 0,
        delim,
    };
    let left = lexer.eat("-");
    let mut tokens = Vec::new();
    loop {
        lexer.skip_whitespace();
        if let Some(right) = lexer.close() {
            let trim = Trim { left, right };
            let kind = match delim {
                Delim::Print => PieceKind::Print(trim, tokens),
                _ => PieceKind::Tag(trim, tokens),
            };
            return Ok((kind, lexer.pos));
        }
        match lexer.token()? {
            Some(tok) => tokens.push(tok),
            None => {
                let open = if delim == Delim::Print { "{{" } else { "{%" };
                let close = if delim == Delim::Print { "}}" } else { "%}" };
                return Err(Failure::syntax(
                    format!(
                        "Unclosed `{open}`: expected `{close}` before the end of the template."
                    ),
                    line,
                ));
            }
        }
    }
}

fn is_raw_open(tokens: &[Token]) -> bool {
    is_word(tokens, "raw") || is_word(tokens, "verbatim")
}

fn is_word(tokens: &[Token], word: &str) -> bool {
    matches!(tokens, [Token { tok: Tok::Name(n), .. }] if n == word)
}

/// Finds the `{% endraw %}` (or `endverbatim`) closing a raw block whose opening tag ends at `from`.
fn scan_raw(
    src: &str,
    from: usize,
    open: Trim,
    line: usize,
) -> Result<(PieceKind<'_>, usize), Failure> {
    let mut i = from;
    while let Some(off) = src[i..].find("{%") {
        let at = i + off;
        let mut rest = &src[at + 2..];
        let left = rest.starts_with('-');
        rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
        let word = ["endraw", "endverbatim"]
            .into_iter()
            .find(|w| rest.starts_with(w));
        if let Some(word) = word {
            let after = rest[word.len()..].trim_start();
            let right = after.starts_with("-%}");
            if right || after.starts_with("%}") {
                let end = src.len() - after.len() + if right { 3 } else { 2 };
                let close = if word == "endraw" {
                    Trim::default()
                } else {
                    Trim { left, right }
                };
                let body = &src[from..at];
                return Ok((PieceKind::Raw { open, body, close }, end));
            }
        }
        i = at + 2;
    }
    Err(Failure::syntax(
        "Unclosed `raw` block: expected `{% endraw %}`.",
        line,
    ))
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    /// Open `{` of map literals: a `}}` inside one closes the map, not the tag.
    depth: usize,
    delim: Delim,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn eat(&mut self, s: &str) -> bool {
        let found = self.rest().starts_with(s);
        if found {
            self.pos += s.len();
        }
        found
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        let trimmed = rest.trim_start();
        self.line += newlines(&rest[..rest.len() - trimmed.len()]);
        self.pos += rest.len() - trimmed.len();
    }

    /// Consumes the closing delimiter if it is next; answers whether it trims (`-}}`).
    fn close(&mut self) -> Option<bool> {
        if self.depth > 0 {
            return None;
        }
        let close = if self.delim == Delim::Print {
            "}}"
        } else {
            "%}"
        };
        if self.eat(close) {
            return Some(false);
        }
        let trimming = format!("-{close}");
        self.eat(&trimming).then_some(true)
    }

    fn token(&mut self) -> Result<Option<Token>, Failure> {
        let line = self.line;
        let Some(c) = self.rest().chars().next() else {
            return Ok(None);
        };
        let tok = if c.is_ascii_alphabetic() || c == '_' {
            Tok::Name(
                self.take_while(|c| c.is_ascii_alphanumeric() || c == '_')
                    .to_string(),
            )
        } else if c.is_ascii_digit() {
            self.number()
        } else if c == '\'' || c == '"' {
            Tok::Str(self.string(c)?)
        } else if let Some(op) = OPERATORS.iter().find(|op| self.rest().starts_with(**op)) {
            self.pos += op.len();
            self.track_braces(op);
            Tok::Op(op)
        } else {
            return Err(Failure::syntax(
                format!("Unexpected character `{c}` in an expression."),
                line,
            ));
        };
        Ok(Some(Token { tok, line }))
    }

    fn track_braces(&mut self, op: &str) {
        match op {
            "{" => self.depth += 1,
            "}" => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c: char| !f(c)).unwrap_or(rest.len());
        self.pos += len;
        &self.src[self.pos - len..self.pos]
    }

    /// `12`, `1.5`; `1..5` is an integer, a range operator and an integer.
    fn number(&mut self) -> Tok {
        let start = self.pos;
        self.take_while(|c| c.is_ascii_digit());
        let rest = self.rest().as_bytes();
        if rest.first() == Some(&b'.') && rest.get(1).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
            self.take_while(|c| c.is_ascii_digit());
            return Tok::Float(self.src[start..self.pos].to_string());
        }
        Tok::Int(self.src[start..self.pos].to_string())
    }

    fn string(&mut self, quote: char) -> Result<String, Failure> {
        let line = self.line;
        let unclosed = || Failure::syntax("Unclosed string literal.", line);
        let mut out = String::new();
        let body = &self.src[self.pos + 1..];
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c == quote => {
                    self.pos += 1 + i + 1;
                    return Ok(out);
                }
                '\\' => {
                    let (_, e) = chars.next().ok_or_else(unclosed)?;
                    escape(e, &mut chars, &mut out).map_err(|m| Failure::syntax(m, self.line))?;
                }
                '\n' => {
                    self.line += 1;
                    out.push(c);
                }
                c => out.push(c),
            }
        }
        Err(unclosed())
    }
}

/// Resolves the escape `\e` (the `\` already read) into `out`. Unknown escapes stay as written.
fn escape(e: char, chars: &mut std::str::CharIndices<'_>, out: &mut String) -> Result<(), String> {
    let c = match e {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'b' => '\u{8}',
        'f' => '\u{c}',
        '0' => '\0',
        '\\' | '\'' | '"' => e,
        'u' => {
            let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
            u32::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.len() == 4)
                .and_then(char::from_u32)
                .ok_or_else(|| format!("Invalid escape `\\u{hex}` in a string literal."))?
        }
        other => {
            out.push('\\');
            other
        }
    };
    out.push(c);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<String> {
        scan(src)
            .unwrap()
            .iter()
            .map(|p| match &p.kind {
                PieceKind::Text => format!("text:{}", p.text),
                PieceKind::Comment(_) => "comment".into(),
                PieceKind::Print(t, toks) => format!("print{}{}:{}", t.left, t.right, toks.len()),
                PieceKind::Tag(_, toks) => format!("tag:{}", toks.len()),
                PieceKind::Raw { body, .. } => format!("raw:{body}"),
            })
            .collect()
    }

    #[test]
    fn splits_text_prints_tags_and_comments() {
        assert_eq!(
            kinds("a {{ x }} b {%- if y -%}{# c #}"),
            [
                "text:a ",
                "printfalsefalse:1",
                "text: b ",
                "tag:2",
                "comment"
            ]
        );
    }

    #[test]
    fn closing_braces_inside_strings_and_maps_do_not_close_the_tag() {
        assert_eq!(kinds("{{ '}}' }}"), ["printfalsefalse:1"]);
        assert_eq!(kinds("{{ {'a': {'b': 1}} }}"), ["printfalsefalse:9"]);
    }

    #[test]
    fn trim_markers_are_read() {
        assert_eq!(kinds("{{- x -}}"), ["printtruetrue:1"]);
    }

    #[test]
    fn raw_body_is_kept_untouched() {
        assert_eq!(
            kinds("{% raw %}{{ not parsed }}{%- endraw %}!"),
            ["raw:{{ not parsed }}", "text:!"]
        );
    }

    #[test]
    fn lines_are_counted_across_pieces() {
        let pieces = scan("a\n{{ x }}\n{% if\ny %}\n{{ z }}").unwrap();
        let lines: Vec<usize> = pieces.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 2, 2, 3, 4, 5]);
    }

    #[test]
    fn string_escapes_are_resolved() {
        let pieces = scan(r#"{{ "a\"b\n\u00e9\q" }}"#).unwrap();
        let PieceKind::Print(_, toks) = &pieces[0].kind else {
            panic!("not a print")
        };
        assert_eq!(toks[0].tok, Tok::Str("a\"b\né\\q".into()));
    }

    #[test]
    fn numbers_and_ranges() {
        let pieces = scan("{{ 1..5 + 2.5 }}").unwrap();
        let PieceKind::Print(_, toks) = &pieces[0].kind else {
            panic!("not a print")
        };
        let toks: Vec<&Tok> = toks.iter().map(|t| &t.tok).collect();
        assert_eq!(
            toks,
            [
                &Tok::Int("1".into()),
                &Tok::Op(".."),
                &Tok::Int("5".into()),
                &Tok::Op("+"),
                &Tok::Float("2.5".into())
            ]
        );
    }

    #[test]
    fn unclosed_things_are_errors_with_their_line() {
        assert_eq!(scan("x\n{{ a").unwrap_err().line, Some(2));
        assert!(scan("{# a").is_err());
        assert!(scan("{{ 'a }}").is_err());
        assert!(scan("{% raw %}x").is_err());
        assert!(scan("{{ a $ b }}").is_err());
    }
}
