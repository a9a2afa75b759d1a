//! The Pebble front end: a Kestra template in, minijinja source out.
//!
//! [`scan`] splits the template into pieces, [`parse`] reads each tag with Pebble's grammar, and
//! [`print`] writes minijinja source with explicit parentheses. The lowered source keeps the
//! template's line structure (a tag spanning lines is padded with as many newlines), and each
//! tag's place in it is recorded as a [`Span`] so that an error can be traced back to the tag
//! as written.

mod parse;
mod print;
pub(crate) mod raw;
mod scan;

pub(crate) use parse::{Arg, Binary, Expr};

pub(crate) use scan::has_markup;

use crate::error::Failure;
use parse::{Tag, parse_print, parse_tag};
use print::Printer;
use scan::{Piece, PieceKind, Trim, newlines, scan};
use std::ops::Range;

/// A lowered expression bigger than this is refused (a guard against pathological nesting).
const MAX_LOWERED_TAG: usize = 256 * 1024;

/// A template lowered to minijinja source, with the origin of each of its tags.
#[derive(Debug)]
pub(crate) struct Lowered<'a> {
    pub(crate) source: String,
    pub(crate) spans: Vec<Span<'a>>,
    /// Names the template itself defines (`set`, `for`): not the context's to answer for.
    pub(crate) locals: Vec<String>,
}

/// Where one tag of the template went in the lowered source.
#[derive(Debug)]
pub(crate) struct Span<'a> {
    pub(crate) lowered: Range<usize>,
    /// The tag as written, delimiters included (`{{ inputs.x }}`).
    pub(crate) text: &'a str,
    pub(crate) line: usize,
    pub(crate) exprs: Vec<Expr>,
}

impl Lowered<'_> {
    /// The tag whose lowered source holds byte `offset`, or else the first one on `line`.
    pub(crate) fn span_at(&self, offset: Option<usize>, line: Option<usize>) -> Option<&Span<'_>> {
        offset
            .and_then(|o| self.spans.iter().find(|s| s.lowered.contains(&o)))
            .or_else(|| {
                let line = line?;
                self.spans
                    .iter()
                    .filter(|s| s.line <= line)
                    .max_by_key(|s| s.line)
            })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    If,
    For,
    /// Pebble's `{% block name %}`, lowered to a macro printed in place (`block_names` holds
    /// its name) so that `block('name')` can print it again.
    Named,
    /// Pebble's `{% filter ... %}`, minijinja's.
    Filter,
}

/// What the name of every function is prefixed with in the lowered source (and in the
/// environment): Pebble looks functions up apart from variables, so `yaml(yaml)` calls the
/// function `yaml` with the variable `yaml`, and a variable never hides a function.
pub(crate) const FUNCTION_PREFIX: &str = "_k_f_";

/// Whether `name` can name a block: letters, digits and `_`, as a macro's name must be.
pub(crate) fn is_block_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The minijinja macro a Pebble block `name` is lowered to.
pub(crate) fn block_macro(name: &str) -> String {
    format!("_k_block_{name}")
}

/// Lowers a Pebble template to minijinja source.
pub(crate) fn lower(template: &str) -> Result<Lowered<'_>, Failure> {
    let mut lowerer = Lowerer {
        out: String::with_capacity(template.len() + 16),
        spans: Vec::new(),
        locals: Vec::new(),
        blocks: Vec::new(),
        block_names: Vec::new(),
    };
    for piece in scan(template)? {
        lowerer.piece(&piece)?;
    }
    if let Some((block, line, _)) = lowerer.blocks.last() {
        let (open, close) = match block {
            Block::If => ("if", "endif"),
            Block::For => ("for", "endfor"),
            Block::Named => ("block", "endblock"),
            Block::Filter => ("filter", "endfilter"),
        };
        return Err(Failure::syntax(
            format!(
                "Unclosed `{open}` tag: expected `{{% {close} %}}` before the end of the template."
            ),
            *line,
        ));
    }
    Ok(Lowered {
        source: lowerer.out,
        spans: lowerer.spans,
        locals: lowerer.locals,
    })
}

struct Lowerer<'a> {
    out: String,
    spans: Vec<Span<'a>>,
    locals: Vec<String>,
    /// Open blocks: kind, line, and whether their `else` was seen.
    blocks: Vec<(Block, usize, bool)>,
    /// The names of the open `block` tags, innermost last.
    block_names: Vec<String>,
}

impl<'a> Lowerer<'a> {
    fn piece(&mut self, piece: &Piece<'a>) -> Result<(), Failure> {
        let start = self.out.len();
        let pad = "\n".repeat(newlines(piece.text));
        let exprs = match &piece.kind {
            PieceKind::Text => {
                self.out.push_str(piece.text);
                return Ok(());
            }
            PieceKind::Comment(trim) => {
                self.open("{#", *trim);
                self.out.push_str(&pad);
                self.close("#}", *trim);
                Vec::new()
            }
            PieceKind::Raw { open, body, close } => {
                self.open("{%", *open);
                self.out.push_str(" raw ");
                self.close("%}", *open);
                self.out.push_str(body);
                self.open("{%", *close);
                self.out.push_str(" endraw ");
                self.close("%}", *close);
                Vec::new()
            }
            PieceKind::Print(trim, tokens) => {
                let e = parse_print(tokens, piece.line)?;
                self.open("{{", *trim);
                self.out.push(' ');
                self.print(&e, piece.line)?;
                self.out.push_str(&pad);
                self.close(" }}", *trim);
                vec![e]
            }
            PieceKind::Tag(trim, tokens) => {
                let tag = parse_tag(tokens, piece.line)?;
                // `endblock` ends the macro, then prints it: the tag closes a print.
                let close = if tag == Tag::EndBlock { " }}" } else { " %}" };
                self.open("{%", *trim);
                let exprs = self.tag(tag, piece.line)?;
                self.out.push_str(&pad);
                self.close(close, *trim);
                exprs
            }
        };
        if self.out.len() - start > MAX_LOWERED_TAG {
            return Err(Failure::syntax(
                "The expression is too complex.",
                piece.line,
            ));
        }
        self.spans.push(Span {
            lowered: start..self.out.len(),
            text: piece.text,
            line: piece.line,
            exprs,
        });
        Ok(())
    }

    fn open(&mut self, delim: &str, trim: Trim) {
        self.out.push_str(delim);
        if trim.left {
            self.out.push('-');
        }
    }

    fn close(&mut self, delim: &str, trim: Trim) {
        if trim.right {
            self.out.push_str(" -");
            self.out.push_str(delim.trim_start());
        } else {
            self.out.push_str(delim);
        }
    }

    fn print(&mut self, e: &Expr, line: usize) -> Result<(), Failure> {
        let in_loop = self.blocks.iter().any(|(b, _, _)| *b == Block::For);
        if Printer::new(&mut self.out, in_loop).print(e) {
            Ok(())
        } else {
            Err(Failure::syntax(
                "The expression is nested too deeply.",
                line,
            ))
        }
    }

    /// Writes a tag's minijinja form after its opening delimiter; returns its expressions.
    fn tag(&mut self, tag: Tag, line: usize) -> Result<Vec<Expr>, Failure> {
        let e = match tag {
            Tag::If(e) => {
                self.blocks.push((Block::If, line, false));
                self.out.push_str(" if ");
                e
            }
            Tag::ElseIf(e) => {
                self.expect_open(Block::If, "elseif", line)?;
                self.out.push_str(" elif ");
                e
            }
            Tag::Else => {
                let open = self.blocks.last().map(|(b, _, _)| *b).unwrap_or(Block::If);
                self.expect_open(open, "else", line)?;
                if let Some(block) = self.blocks.last_mut() {
                    block.2 = true;
                }
                self.out.push_str(" else");
                return Ok(Vec::new());
            }
            Tag::EndIf | Tag::EndFor => {
                let (block, word) = match tag {
                    Tag::EndIf => (Block::If, "endif"),
                    _ => (Block::For, "endfor"),
                };
                self.expect_open(block, word, line)?;
                self.blocks.pop();
                self.out.push(' ');
                self.out.push_str(word);
                return Ok(Vec::new());
            }
            Tag::For(vars, e) => {
                // Pebble iterates a map as entries (`.key`, `.value`); `for k, v` as pairs.
                let helper = if vars.len() == 2 {
                    "_k_pairs"
                } else {
                    "_k_entries"
                };
                self.out
                    .push_str(&format!(" for {} in {helper}(", vars.join(", ")));
                self.print(&e, line)?;
                self.out.push(')');
                self.blocks.push((Block::For, line, false));
                self.locals.extend(vars);
                return Ok(vec![e]);
            }
            Tag::Block(name) => {
                self.out
                    .push_str(&format!(" macro {}()", block_macro(&name)));
                self.blocks.push((Block::Named, line, false));
                self.block_names.push(name);
                return Ok(Vec::new());
            }
            Tag::EndBlock => {
                self.expect_open(Block::Named, "endblock", line)?;
                self.blocks.pop();
                let name = self.block_names.pop().unwrap_or_default();
                self.out
                    .push_str(&format!(" endmacro %}}{{{{ {}()", block_macro(&name)));
                return Ok(Vec::new());
            }
            Tag::Filter(chain) => {
                self.out.push_str(" filter ");
                let in_loop = self.blocks.iter().any(|(b, _, _)| *b == Block::For);
                if !Printer::new(&mut self.out, in_loop).print_filters(&chain) {
                    return Err(Failure::syntax(
                        "The expression is nested too deeply.",
                        line,
                    ));
                }
                self.blocks.push((Block::Filter, line, false));
                let exprs = chain
                    .into_iter()
                    .flat_map(|(_, args)| args)
                    .map(|arg| match arg {
                        Arg::Pos(e) | Arg::Named(_, e) => e,
                    })
                    .collect();
                return Ok(exprs);
            }
            Tag::EndFilter => {
                self.expect_open(Block::Filter, "endfilter", line)?;
                self.blocks.pop();
                self.out.push_str(" endfilter");
                return Ok(Vec::new());
            }
            Tag::Set(name, e) => {
                self.out.push_str(&format!(" set {name} = "));
                self.locals.push(name);
                e
            }
        };
        self.print(&e, line)?;
        Ok(vec![e])
    }

    fn expect_open(&self, want: Block, word: &str, line: usize) -> Result<(), Failure> {
        let message = match self.blocks.last() {
            None => format!("`{word}` without an opening tag."),
            Some((block, opened, _)) if *block != want => {
                format!("`{word}` does not match the block opened at line {opened}.")
            }
            Some((_, _, true)) if word == "else" || word == "elseif" => {
                format!("`{word}` after `else`.")
            }
            Some(_) => return Ok(()),
        };
        Err(Failure::syntax(message, line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(t: &str) -> String {
        lower(t).unwrap().source
    }

    #[test]
    fn text_and_tags_keep_their_lines() {
        assert_eq!(source("a\n{{ x\n }}\nb"), "a\n{{ x\n }}\nb");
        assert_eq!(
            source("{%- if a -%}y{% elseif b %}n{% else %}z{% endif %}"),
            "{%- if a -%}y{% elif b %}n{% else %}z{% endif %}"
        );
    }

    #[test]
    fn loops_iterate_maps_as_entries_and_pebble_indices_start_at_zero() {
        assert_eq!(
            source("{% for e in m %}{{ loop.index }}{% endfor %}"),
            "{% for e in _k_entries(m) %}{{ loop.index0 }}{% endfor %}"
        );
        assert_eq!(
            source("{% for k, v in m %}{% endfor %}"),
            "{% for k, v in _k_pairs(m) %}{% endfor %}"
        );
    }

    #[test]
    fn comments_and_raw_blocks() {
        assert_eq!(source("{# a\nb #}x"), "{#\n#}x");
        assert_eq!(
            source("{% raw %}{{ y }}{% endraw %}"),
            "{% raw %}{{ y }}{% endraw %}"
        );
    }

    #[test]
    fn blocks_are_macros_printed_in_place() {
        assert_eq!(
            source("{% block \"post\" %} x {%- endblock %}{{ block('post') }}"),
            "{% macro _k_block_post() %} x {%- endmacro %}{{ _k_block_post() }}{{ _k_block_post() }}"
        );
        assert!(lower("{% block a %}").is_err());
        assert!(lower("{% block 'a b' %}{% endblock %}").is_err());
    }

    #[test]
    fn filter_tags_are_minijinjas() {
        assert_eq!(
            source("{% filter upper | replace({'A': 'b'}) %}a{% endfilter %}"),
            "{% filter upper|replace({\"A\": \"b\"}) %}a{% endfilter %}"
        );
        assert!(lower("{% filter upper %}").is_err());
    }

    #[test]
    fn spans_point_back_at_the_tag_as_written() {
        let lowered = lower("ab\n{{inputs.x}}").unwrap();
        let span = lowered
            .span_at(Some(lowered.source.len() - 3), None)
            .unwrap();
        assert_eq!((span.text, span.line), ("{{inputs.x}}", 2));
    }

    #[test]
    fn block_structure_is_checked() {
        assert_eq!(
            lower("{% if a %}").unwrap_err().message,
            "Unclosed `if` tag: expected `{% endif %}` before the end of the template."
        );
        assert_eq!(
            lower("{% for x in y %}{% endif %}").unwrap_err().message,
            "`endif` does not match the block opened at line 1."
        );
        assert_eq!(
            lower("{% endfor %}").unwrap_err().message,
            "`endfor` without an opening tag."
        );
        assert!(lower("{% if a %}{% else %}{% elseif b %}{% endif %}").is_err());
    }

    #[test]
    fn nesting_minijinja_would_refuse_is_a_syntax_error() {
        let deep = format!("{{{{ {}x }}}}", "not ".repeat(90));
        assert_eq!(
            lower(&deep).unwrap_err().message,
            "The expression is nested too deeply."
        );
    }

    include!("../../tests/support/fragments.rs");

    fn template() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..40)
            .prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        /// Whatever the front end accepts, minijinja compiles: lowering never produces
        /// invalid source.
        #[test]
        fn accepted_templates_lower_to_valid_minijinja(t in template()) {
            if let Ok(lowered) = lower(&t) {
                let env = minijinja::Environment::new();
                let compiled = env.template_from_str(&lowered.source).map(|_| ());
                proptest::prop_assert!(compiled.is_ok(), "{t:?} -> {:?}: {compiled:?}", lowered.source);
            }
        }

        #[test]
        fn lowering_arbitrary_text_never_panics(t in "\\PC*") {
            let _ = lower(&t);
        }
    }
}
