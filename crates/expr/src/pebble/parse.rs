//! Step two of the front end: Pebble's grammar, parsed by precedence climbing.
//!
//! Binding strengths (higher binds tighter, binary operators left-associative), as Pebble has
//! them: `or` 10, `and` 15, `is`/`contains` 20, comparisons 30, `+ -` 40, `* / %` 60, `|` 100,
//! `~` 110, `.. ?? ???` 120, unary `not - +` 500; attribute access, subscripts and calls bind
//! tightest; the ternary `c ? a : b` is loosest.

use super::scan::{Tok, Token};
use crate::error::Failure;
use std::fmt;

/// An expression as Pebble reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Str(String),
    Int(String),
    Float(String),
    Bool(bool),
    Null,
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Var(String),
    Attr(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Slice(Box<Expr>, Option<Box<Expr>>, Option<Box<Expr>>),
    Call(Box<Expr>, Vec<Arg>),
    Filter(Box<Expr>, String, Vec<Arg>),
    Test(Box<Expr>, bool, String, Vec<Arg>),
    Unary(Unary, Box<Expr>),
    Binary(Binary, Box<Expr>, Box<Expr>),
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// A call argument: positional or `name=value`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Pos(Expr),
    Named(String, Expr),
}

/// Prefix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unary {
    Not,
    Neg,
    Plus,
}

/// Infix operators other than `is` and `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binary {
    Or,
    And,
    Contains,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
    Range,
    /// `??`: null or undefined coalescing.
    Coalesce,
    /// `???`: undefined-only coalescing.
    CoalesceUndefined,
}

/// A `{% %}` tag.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tag {
    If(Expr),
    ElseIf(Expr),
    Else,
    EndIf,
    For(Vec<String>, Expr),
    EndFor,
    Set(String, Expr),
    /// `{% block name %}` (or `"name"`): a name of letters, digits and `_`.
    Block(String),
    EndBlock,
    /// `{% filter upper | replace({'a': 'b'}) %}`: filters applied to the body.
    Filter(Vec<(String, Vec<Arg>)>),
    EndFilter,
}

enum Infix {
    Binary(Binary),
    Is,
    Filter,
}

/// Deeper nesting than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 100;

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Name(s) | Tok::Int(s) | Tok::Float(s) => f.write_str(s),
            Tok::Str(_) => f.write_str("a string"),
            Tok::Op(op) => f.write_str(op),
        }
    }
}

fn infix(tok: &Tok) -> Option<(u8, Infix)> {
    use Binary::*;
    let bin = |p, b| Some((p, Infix::Binary(b)));
    match tok {
        Tok::Name(n) => match n.as_str() {
            "or" => bin(10, Or),
            "and" => bin(15, And),
            "is" => Some((20, Infix::Is)),
            "contains" => bin(20, Contains),
            "equals" => bin(30, Eq),
            _ => None,
        },
        Tok::Op(op) => match *op {
            "==" => bin(30, Eq),
            "!=" => bin(30, Ne),
            "<" => bin(30, Lt),
            ">" => bin(30, Gt),
            "<=" => bin(30, Le),
            ">=" => bin(30, Ge),
            "+" => bin(40, Add),
            "-" => bin(40, Sub),
            "*" => bin(60, Mul),
            "/" => bin(60, Div),
            "%" => bin(60, Mod),
            "|" => Some((100, Infix::Filter)),
            "~" => bin(110, Concat),
            ".." => bin(120, Range),
            "??" => bin(120, Coalesce),
            "???" => bin(120, CoalesceUndefined),
            _ => None,
        },
        _ => None,
    }
}

/// Parses the inside of `{{ }}`.
pub(crate) fn parse_print(tokens: &[Token], line: usize) -> Result<Expr, Failure> {
    let mut p = Parser::new(tokens, line);
    let e = p.expr()?;
    p.finish()?;
    Ok(e)
}

/// Parses the inside of `{% %}` (other than `raw`, which the scanner handles).
pub(crate) fn parse_tag(tokens: &[Token], line: usize) -> Result<Tag, Failure> {
    let mut p = Parser::new(tokens, line);
    let word = p.name("a tag name")?;
    let tag = match word.as_str() {
        "if" => Tag::If(p.expr()?),
        "elseif" => Tag::ElseIf(p.expr()?),
        "else" => Tag::Else,
        "endif" => Tag::EndIf,
        "endfor" => Tag::EndFor,
        "for" => {
            let mut vars = vec![p.name("a loop variable")?];
            if p.eat_op(",") {
                vars.push(p.name("a second loop variable")?);
            }
            if !p.eat_name("in") {
                return Err(p.error("Expected `in` in the `for` tag."));
            }
            Tag::For(vars, p.expr()?)
        }
        "set" => {
            let name = p.name("a variable name")?;
            if !p.eat_op("=") {
                return Err(p.error("Expected `=` in the `set` tag."));
            }
            Tag::Set(name, p.expr()?)
        }
        "block" => {
            let name = match p.bump() {
                Some(Tok::Name(n) | Tok::Str(n)) => n.clone(),
                _ => return Err(p.unexpected("a block name")),
            };
            if !super::is_block_name(&name) {
                return Err(p.error("A block name is made of letters, digits and `_`."));
            }
            Tag::Block(name)
        }
        "filter" => {
            let mut chain = Vec::new();
            loop {
                let name = p.name("a filter name")?;
                chain.push((name, p.optional_args()?));
                if !p.eat_op("|") {
                    break;
                }
            }
            Tag::Filter(chain)
        }
        "endfilter" => Tag::EndFilter,
        "endblock" => {
            // Pebble allows the block's name again after `endblock`.
            if matches!(p.peek(), Some(Tok::Name(_) | Tok::Str(_))) {
                p.bump();
            }
            Tag::EndBlock
        }
        "endraw" | "endverbatim" => {
            return Err(p.error(&format!("`{word}` without an opening tag.")));
        }
        _ => return Err(p.error(&format!("Unknown tag `{word}`."))),
    };
    p.finish()?;
    Ok(tag)
}

struct Parser<'t> {
    toks: &'t [Token],
    pos: usize,
    depth: usize,
    line: usize,
}

impl<'t> Parser<'t> {
    fn new(toks: &'t [Token], line: usize) -> Self {
        Self {
            toks,
            pos: 0,
            depth: 0,
            line,
        }
    }

    fn peek(&self) -> Option<&'t Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn bump(&mut self) -> Option<&'t Tok> {
        let tok = self.peek();
        self.pos += usize::from(tok.is_some());
        tok
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        let found = self.is_op(op);
        self.pos += usize::from(found);
        found
    }

    fn eat_name(&mut self, name: &str) -> bool {
        let found = matches!(self.peek(), Some(Tok::Name(n)) if n == name);
        self.pos += usize::from(found);
        found
    }

    fn error(&self, message: &str) -> Failure {
        let line = self
            .toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(self.line, |t| t.line);
        Failure::syntax(message, line)
    }

    fn unexpected(&self, wanted: &str) -> Failure {
        match self.peek() {
            Some(tok) => self.error(&format!("Unexpected `{tok}`: expected {wanted}.")),
            None => self.error(&format!(
                "Unexpected end of the expression: expected {wanted}."
            )),
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), Failure> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{op}`")))
        }
    }

    fn name(&mut self, wanted: &str) -> Result<String, Failure> {
        match self.peek() {
            Some(Tok::Name(n)) => {
                self.pos += 1;
                Ok(n.clone())
            }
            _ => Err(self.unexpected(wanted)),
        }
    }

    fn finish(&self) -> Result<(), Failure> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.unexpected("the end of the expression")),
        }
    }

    fn enter(&mut self) -> Result<(), Failure> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("The expression is nested too deeply."));
        }
        Ok(())
    }

    /// A full expression: the ternary, lowest of all, is right-associative.
    fn expr(&mut self) -> Result<Expr, Failure> {
        self.enter()?;
        let cond = self.binary(0)?;
        let e = if self.eat_op("?") {
            let then = self.expr()?;
            self.expect_op(":")?;
            let otherwise = self.expr()?;
            Expr::Ternary(Box::new(cond), Box::new(then), Box::new(otherwise))
        } else {
            cond
        };
        self.depth -= 1;
        Ok(e)
    }

    fn binary(&mut self, min: u8) -> Result<Expr, Failure> {
        let mut left = self.unary()?;
        let depth = self.depth;
        while let Some((prec, op)) = self.peek().and_then(infix) {
            if prec < min {
                break;
            }
            self.pos += 1;
            // Each operator nests the tree one level deeper, loop or not.
            self.enter()?;
            left = match op {
                Infix::Filter => {
                    let name = self.name("a filter name")?;
                    let args = self.optional_args()?;
                    Expr::Filter(Box::new(left), name, args)
                }
                Infix::Is => {
                    let negated = self.eat_name("not");
                    let name = self.name("a test name")?;
                    let args = self.optional_args()?;
                    Expr::Test(Box::new(left), negated, name, args)
                }
                Infix::Binary(b) => {
                    let right = self.binary(prec + 1)?;
                    Expr::Binary(b, Box::new(left), Box::new(right))
                }
            };
        }
        self.depth = depth;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, Failure> {
        let op = match self.peek() {
            Some(Tok::Name(n)) if n == "not" => Unary::Not,
            Some(Tok::Op("-")) => Unary::Neg,
            Some(Tok::Op("+")) => Unary::Plus,
            _ => {
                let primary = self.primary()?;
                return self.postfix(primary);
            }
        };
        self.pos += 1;
        self.enter()?;
        let operand = self.unary()?;
        self.depth -= 1;
        Ok(Expr::Unary(op, Box::new(operand)))
    }

    fn postfix(&mut self, mut e: Expr) -> Result<Expr, Failure> {
        let depth = self.depth;
        loop {
            if self.is_op(".") || self.is_op("[") || self.is_op("(") {
                self.enter()?;
            }
            if self.eat_op(".") {
                e = match self.bump() {
                    Some(Tok::Name(n)) => Expr::Attr(Box::new(e), n.clone()),
                    Some(Tok::Int(i)) => Expr::Index(Box::new(e), Box::new(Expr::Int(i.clone()))),
                    _ => {
                        self.pos -= 1;
                        return Err(self.unexpected("an attribute name after `.`"));
                    }
                };
            } else if self.eat_op("[") {
                e = self.subscript(e)?;
            } else if self.eat_op("(") {
                e = Expr::Call(Box::new(e), self.args()?);
            } else {
                self.depth = depth;
                return Ok(e);
            }
        }
    }

    /// After `[`: an index `[i]` or a slice `[a:b]`, `[:b]`, `[a:]`.
    fn subscript(&mut self, e: Expr) -> Result<Expr, Failure> {
        let start = if self.is_op(":") {
            None
        } else {
            Some(Box::new(self.expr()?))
        };
        if self.eat_op(":") {
            let end = if self.is_op("]") {
                None
            } else {
                Some(Box::new(self.expr()?))
            };
            self.expect_op("]")?;
            return Ok(Expr::Slice(Box::new(e), start, end));
        }
        self.expect_op("]")?;
        match start {
            Some(index) => Ok(Expr::Index(Box::new(e), index)),
            None => Err(self.unexpected("an index")),
        }
    }

    fn optional_args(&mut self) -> Result<Vec<Arg>, Failure> {
        if self.eat_op("(") {
            self.args()
        } else {
            Ok(Vec::new())
        }
    }

    /// After `(`: `a, b, name=c` up to `)`.
    fn args(&mut self) -> Result<Vec<Arg>, Failure> {
        let mut args = Vec::new();
        while !self.eat_op(")") {
            if !args.is_empty() {
                self.expect_op(",")?;
            }
            let named = match (self.peek(), self.toks.get(self.pos + 1).map(|t| &t.tok)) {
                (Some(Tok::Name(n)), Some(Tok::Op("="))) => Some(n.clone()),
                _ => None,
            };
            match named {
                Some(name) => {
                    self.pos += 2;
                    args.push(Arg::Named(name, self.expr()?));
                }
                None if matches!(args.last(), Some(Arg::Named(..))) => {
                    return Err(self.error("A positional argument cannot follow a named one."));
                }
                None => args.push(Arg::Pos(self.expr()?)),
            }
        }
        Ok(args)
    }

    fn primary(&mut self) -> Result<Expr, Failure> {
        let e = match self.peek() {
            Some(Tok::Name(n)) => match n.as_str() {
                "true" => Expr::Bool(true),
                "false" => Expr::Bool(false),
                "null" | "none" => Expr::Null,
                _ => Expr::Var(n.clone()),
            },
            Some(Tok::Int(i)) => Expr::Int(i.clone()),
            Some(Tok::Float(f)) => Expr::Float(f.clone()),
            Some(Tok::Str(s)) => Expr::Str(s.clone()),
            Some(Tok::Op("(")) => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect_op(")")?;
                return Ok(e);
            }
            Some(Tok::Op("[")) => {
                self.pos += 1;
                return Ok(Expr::List(self.items("]", |p| p.expr())?));
            }
            Some(Tok::Op("{")) => {
                self.pos += 1;
                return Ok(Expr::Map(self.items("}", Self::map_entry)?));
            }
            _ => return Err(self.unexpected("an expression")),
        };
        self.pos += 1;
        Ok(e)
    }

    fn map_entry(&mut self) -> Result<(Expr, Expr), Failure> {
        let key = self.expr()?;
        self.expect_op(":")?;
        Ok((key, self.expr()?))
    }

    /// Comma-separated items up to `close` (a trailing comma is allowed).
    fn items<T>(
        &mut self,
        close: &str,
        mut item: impl FnMut(&mut Self) -> Result<T, Failure>,
    ) -> Result<Vec<T>, Failure> {
        self.enter()?;
        let mut items = Vec::new();
        while !self.eat_op(close) {
            if !items.is_empty() {
                self.expect_op(",")?;
                if self.eat_op(close) {
                    break;
                }
            }
            items.push(item(self)?);
        }
        self.depth -= 1;
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pebble::scan::{PieceKind, scan};

    fn parse(src: &str) -> Result<Expr, Failure> {
        let text = format!("{{{{ {src} }}}}");
        let pieces = scan(&text)?;
        let PieceKind::Print(_, toks) = &pieces[0].kind else {
            panic!("not a print")
        };
        parse_print(toks, 1)
    }

    /// A compact rendering of the tree, fully parenthesised.
    fn show(e: &Expr) -> String {
        match e {
            Expr::Var(n) | Expr::Int(n) | Expr::Float(n) => n.clone(),
            Expr::Str(s) => format!("'{s}'"),
            Expr::Bool(b) => b.to_string(),
            Expr::Null => "null".into(),
            Expr::Unary(op, e) => format!("({op:?} {})", show(e)),
            Expr::Binary(op, l, r) => format!("({} {op:?} {})", show(l), show(r)),
            Expr::Filter(e, name, _) => format!("({} | {name})", show(e)),
            Expr::Test(e, neg, name, _) => {
                format!("({} is{} {name})", show(e), if *neg { " not" } else { "" })
            }
            Expr::Ternary(c, a, b) => format!("({} ? {} : {})", show(c), show(a), show(b)),
            Expr::Attr(e, n) => format!("{}.{n}", show(e)),
            Expr::Call(f, args) => format!("{}({})", show(f), args.len()),
            other => format!("{other:?}"),
        }
    }

    #[track_caller]
    fn check(src: &str, want: &str) {
        assert_eq!(show(&parse(src).unwrap()), want, "{src}");
    }

    #[test]
    fn filter_binds_looser_than_concat_and_coalesce() {
        check(
            "'Bearer ' ~ t | base64encode",
            "(('Bearer ' Concat t) | base64encode)",
        );
        check("a ?? b | upper", "((a Coalesce b) | upper)");
        check("a + b | f", "(a Add (b | f))");
    }

    #[test]
    fn unary_binds_tighter_than_everything_binary() {
        check("not a == b", "((Not a) Eq b)");
        check("-a.b * c", "((Neg a.b) Mul c)");
    }

    #[test]
    fn left_associativity_and_levels() {
        check("a - b - c", "((a Sub b) Sub c)");
        check("a or b and c", "(a Or (b And c))");
        check("a and b is null", "(a And (b is null))");
        check("a == b is not null", "((a Eq b) is not null)");
        check("a contains b == c", "(a Contains (b Eq c))");
        check("a ~ b ?? c", "(a Concat (b Coalesce c))");
        check("1..3 ~ x", "((1 Range 3) Concat x)");
    }

    #[test]
    fn ternary_is_loosest_and_right_associative() {
        check("a or b ? c : d ? e : f", "((a Or b) ? c : (d ? e : f))");
    }

    #[test]
    fn calls_attributes_and_named_args() {
        check("secret('K', namespace='a.b').x", "secret(2).x");
        assert!(parse("f(a=1, 2)").is_err());
    }

    #[test]
    fn literals() {
        assert_eq!(
            parse("[1, 'a', {'k': none},]").unwrap(),
            Expr::List(vec![
                Expr::Int("1".into()),
                Expr::Str("a".into()),
                Expr::Map(vec![(Expr::Str("k".into()), Expr::Null)])
            ])
        );
    }

    #[test]
    fn errors_say_what_was_expected() {
        let e = parse("a +").unwrap_err();
        assert_eq!(
            e.message,
            "Unexpected end of the expression: expected an expression."
        );
        let e = parse("a b").unwrap_err();
        assert_eq!(
            e.message,
            "Unexpected `b`: expected the end of the expression."
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(parse(&deep).is_err());
        let negs = "-".repeat(500) + "1";
        assert!(parse(&negs).is_err());
        let chain = vec!["a"; 5000].join(" + ");
        assert!(parse(&chain).is_err());
        let attrs = "a".to_string() + &".b".repeat(5000);
        assert!(parse(&attrs).is_err());
    }

    #[test]
    fn tags() {
        let tag = |src: &str| {
            let text = format!("{{% {src} %}}");
            let pieces = scan(&text).unwrap();
            let PieceKind::Tag(_, toks) = &pieces[0].kind else {
                panic!("not a tag")
            };
            parse_tag(toks, 1)
        };
        assert_eq!(
            tag("for k, v in m").unwrap(),
            Tag::For(vec!["k".into(), "v".into()], Expr::Var("m".into()))
        );
        assert_eq!(
            tag("set x = 1").unwrap(),
            Tag::Set("x".into(), Expr::Int("1".into()))
        );
        assert_eq!(
            tag("macro m()").unwrap_err().message,
            "Unknown tag `macro`."
        );
    }
}
