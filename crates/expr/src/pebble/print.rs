//! Step three of the front end: print an [`Expr`] as minijinja source with explicit parentheses.
//!
//! Every compound expression is printed inside parentheses, so minijinja's own precedences never
//! come into play. Pebble constructs minijinja lacks are lowered to private helper functions
//! (registered by [`crate::library`]):
//!
//! - `L ?? R` becomes `(L if _k_nn(_k_get(root, seg, ...)) else R)`: `_k_get` walks the path of
//!   `L` (`a.b[c]`) one step at a time and stops at the first undefined or null step instead of
//!   failing, so the test never raises a strict-undefined error, while anything that is not a
//!   path step (a call such as `secret('X')`) is evaluated normally and still fails loudly.
//!   `???` tests `is defined` instead, so a null value is kept.
//! - `a..b` becomes `range(a, b)`: kestrel's `range` is Pebble's, inclusive.
//! - `a contains b` becomes `(b in a)`; `c ? a : b` becomes `(a if c else b)`.
//! - `x | default(d)`, `x is defined`, `x is null` and `x is empty` read `x` leniently, as
//!   Pebble does under strict variables, so a missing input gives the default.

use super::parse::{Arg, Binary, Expr, Unary};
use super::{FUNCTION_PREFIX, is_block_name};
use std::fmt::Write;

/// One step of a path after its root.
enum Step<'e> {
    Name(&'e str),
    Index(&'e Expr),
}

/// minijinja refuses expressions nested deeper than about 150 of its parser's levels; two of
/// them per level printed here keeps clear of it.
const MAX_PRINT_DEPTH: usize = 70;

/// Prints expressions into `out`. `in_loop` maps Pebble's 0-based `loop.index` to minijinja's.
pub(crate) struct Printer<'o> {
    out: &'o mut String,
    in_loop: bool,
    depth: usize,
    too_deep: bool,
}

impl<'o> Printer<'o> {
    pub(crate) fn new(out: &'o mut String, in_loop: bool) -> Self {
        Self {
            out,
            in_loop,
            depth: 0,
            too_deep: false,
        }
    }

    /// Prints `e`; `false` when the result would be nested too deeply for minijinja.
    pub(crate) fn print(mut self, e: &Expr) -> bool {
        self.expr(e);
        !self.too_deep
    }

    /// Prints the filters of a `filter` tag (`upper|replace(...)`); `false` as [`Self::print`].
    pub(crate) fn print_filters(mut self, chain: &[(String, Vec<Arg>)]) -> bool {
        for (i, (name, args)) in chain.iter().enumerate() {
            if i > 0 {
                self.push("|");
            }
            self.push(name);
            if !args.is_empty() {
                self.args(args);
            }
        }
        !self.too_deep
    }

    fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn expr(&mut self, e: &Expr) {
        self.depth += 1;
        self.too_deep |= self.depth > MAX_PRINT_DEPTH;
        self.node(e);
        self.depth -= 1;
    }

    fn node(&mut self, e: &Expr) {
        match e {
            Expr::Str(s) => self.string(s),
            Expr::Int(n) | Expr::Float(n) => self.push(n),
            Expr::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Expr::Null => self.push("none"),
            Expr::List(items) => {
                self.push("[");
                self.list(items, |p, e| p.expr(e));
                self.push("]");
            }
            Expr::Map(entries) => {
                self.push("{");
                self.list(entries, |p, (k, v)| {
                    p.expr(k);
                    p.push(": ");
                    p.expr(v);
                });
                self.push("}");
            }
            Expr::Var(name) => self.push(name),
            Expr::Attr(obj, name) => self.attr(obj, name),
            Expr::Index(obj, index) => {
                self.expr(obj);
                self.push("[");
                self.expr(index);
                self.push("]");
            }
            Expr::Slice(obj, start, end) => {
                self.expr(obj);
                self.push("[");
                if let Some(start) = start {
                    self.expr(start);
                }
                self.push(":");
                if let Some(end) = end {
                    self.expr(end);
                }
                self.push("]");
            }
            Expr::Call(f, args) => match (f.as_ref(), &args[..]) {
                // `block('name')` prints the block's macro (see `Tag::Block`).
                (Expr::Var(v), [Arg::Pos(Expr::Str(name))])
                    if v == "block" && is_block_name(name) =>
                {
                    self.push(&super::block_macro(name));
                    self.push("()");
                }
                (Expr::Var(name), _) => {
                    self.push(FUNCTION_PREFIX);
                    self.push(name);
                    self.args(args);
                }
                _ => {
                    self.expr(f);
                    self.args(args);
                }
            },
            Expr::Filter(input, name, args) => self.filter(input, name, args),
            Expr::Test(input, negated, name, args) => self.test(input, *negated, name, args),
            Expr::Unary(op, operand) => {
                self.push(match op {
                    Unary::Not => "(not ",
                    Unary::Neg => "(-",
                    Unary::Plus => "(",
                });
                self.expr(operand);
                self.push(")");
            }
            Expr::Binary(op, l, r) => self.binary(*op, l, r),
            Expr::Ternary(c, a, b) => {
                self.push("(");
                self.expr(a);
                self.push(" if ");
                self.expr(c);
                self.push(" else ");
                self.expr(b);
                self.push(")");
            }
        }
    }

    fn string(&mut self, s: &str) {
        // A JSON string literal is a valid minijinja string literal.
        let quoted = serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""));
        self.push(&quoted);
    }

    fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            each(self, item);
        }
    }

    fn args(&mut self, args: &[Arg]) {
        self.push("(");
        self.list(args, |p, arg| match arg {
            Arg::Pos(e) => p.expr(e),
            Arg::Named(name, e) => {
                p.push(name);
                p.push("=");
                p.expr(e);
            }
        });
        self.push(")");
    }

    fn attr(&mut self, obj: &Expr, name: &str) {
        self.expr(obj);
        let in_loop_var = self.in_loop && matches!(obj, Expr::Var(v) if v == "loop");
        let name = match name {
            "index" if in_loop_var => "index0",
            "revindex" if in_loop_var => "revindex0",
            _ => name,
        };
        self.push(".");
        self.push(name);
    }

    fn binary(&mut self, op: Binary, l: &Expr, r: &Expr) {
        let symbol = match op {
            Binary::Contains => {
                self.push("(");
                self.expr(r);
                self.push(" in ");
                self.expr(l);
                self.push(")");
                return;
            }
            Binary::Range => return self.call2(&format!("{FUNCTION_PREFIX}range"), l, r),
            Binary::Div => return self.call2("_k_div", l, r),
            Binary::Mod => return self.call2("_k_mod", l, r),
            Binary::Coalesce | Binary::CoalesceUndefined => {
                self.coalesce(op, &operands(op, l, r));
                return;
            }
            Binary::Concat => {
                self.push("_k_concat(");
                self.list(&operands(op, l, r), |p, e| p.expr(e));
                self.push(")");
                return;
            }
            Binary::Or => "or",
            Binary::And => "and",
            Binary::Eq => "==",
            Binary::Ne => "!=",
            Binary::Lt => "<",
            Binary::Gt => ">",
            Binary::Le => "<=",
            Binary::Ge => ">=",
            Binary::Add => "+",
            Binary::Sub => "-",
            Binary::Mul => "*",
        };
        self.push("(");
        self.expr(l);
        let _ = write!(self.out, " {symbol} ");
        self.expr(r);
        self.push(")");
    }

    /// `name(l, r)`.
    fn call2(&mut self, name: &str, l: &Expr, r: &Expr) {
        self.push(name);
        self.push("(");
        self.expr(l);
        self.push(", ");
        self.expr(r);
        self.push(")");
    }

    /// `a ?? b ?? c`: the first operand that passes the test, else the last one.
    fn coalesce(&mut self, op: Binary, operands: &[&Expr]) {
        let [first, rest @ ..] = operands else {
            return;
        };
        if rest.is_empty() {
            self.expr(first);
            return;
        }
        self.push("(");
        self.expr(first);
        self.push(" if ");
        if op == Binary::Coalesce {
            self.push("_k_nn(");
            self.lenient(first);
            self.push(")");
        } else {
            self.push("(");
            self.lenient(first);
            self.push(" is defined)");
        }
        self.push(" else ");
        self.depth += 1;
        self.too_deep |= self.depth > MAX_PRINT_DEPTH;
        self.coalesce(op, rest);
        self.depth -= 1;
        self.push(")");
    }

    /// `e` read without strict-undefined errors along its path: `_k_get(root, "b", c)`.
    fn lenient(&mut self, e: &Expr) {
        let (root, steps) = path(e);
        if steps.is_empty() {
            self.expr(e);
            return;
        }
        self.push("_k_get(");
        self.expr(root);
        for step in steps {
            self.push(", ");
            match step {
                Step::Name(name) => self.string(name),
                Step::Index(index) => self.expr(index),
            }
        }
        self.push(")");
    }

    fn filter(&mut self, input: &Expr, name: &str, args: &[Arg]) {
        self.push("(");
        if name == "default" {
            self.lenient(input);
        } else {
            self.expr(input);
        }
        self.push("|");
        self.push(name);
        if !args.is_empty() {
            self.args(args);
        }
        self.push(")");
    }

    fn test(&mut self, input: &Expr, negated: bool, name: &str, args: &[Arg]) {
        match name {
            "defined" | "null" | "none" => {
                // Pebble's `defined` is "not null"; `null` is its negation.
                let wants_null = name != "defined";
                self.push(if negated != wants_null {
                    "(not _k_nn("
                } else {
                    "(_k_nn("
                });
                self.lenient(input);
                self.push("))");
            }
            _ => {
                self.push("(");
                if name == "empty" {
                    self.lenient(input);
                } else {
                    self.expr(input);
                }
                self.push(if negated { " is not " } else { " is " });
                self.push(if name == "map" { "mapping" } else { name });
                if !args.is_empty() {
                    self.args(args);
                }
                self.push(")");
            }
        }
    }
}

/// The operands of `l op r`, where either side may itself be a chain of `op` (an associative
/// operator: `~`, `??`, `???`), in order.
fn operands<'e>(op: Binary, l: &'e Expr, r: &'e Expr) -> Vec<&'e Expr> {
    fn flatten<'e>(op: Binary, e: &'e Expr, out: &mut Vec<&'e Expr>) {
        match e {
            Expr::Binary(o, l, r) if *o == op => {
                flatten(op, l, out);
                flatten(op, r, out);
            }
            _ => out.push(e),
        }
    }
    let mut out = Vec::new();
    flatten(op, l, &mut out);
    flatten(op, r, &mut out);
    out
}

/// Splits `a.b[c].d` into its root `a` and the steps `b`, `[c]`, `d`.
fn path(mut e: &Expr) -> (&Expr, Vec<Step<'_>>) {
    let mut steps = Vec::new();
    loop {
        match e {
            Expr::Attr(obj, name) => {
                steps.push(Step::Name(name));
                e = obj;
            }
            Expr::Index(obj, index) => {
                steps.push(Step::Index(index));
                e = obj;
            }
            _ => break,
        }
    }
    steps.reverse();
    (e, steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pebble::parse::parse_print;
    use crate::pebble::scan::{PieceKind, scan};

    fn lower(src: &str) -> String {
        let text = format!("{{{{ {src} }}}}");
        let pieces = scan(&text).unwrap();
        let PieceKind::Print(_, toks) = &pieces[0].kind else {
            panic!("not a print")
        };
        let e = parse_print(toks, 1).unwrap();
        let mut out = String::new();
        assert!(Printer::new(&mut out, false).print(&e));
        out
    }

    #[test]
    fn filters_wrap_what_pebble_binds_to_them() {
        assert_eq!(
            lower("'Bearer ' ~ secret('T') | base64encode"),
            r#"(_k_concat("Bearer ", _k_f_secret("T"))|base64encode)"#
        );
    }

    #[test]
    fn pebble_operators_become_minijinja_ones() {
        assert_eq!(lower("a contains b"), "(b in a)");
        assert_eq!(lower("a equals b"), "(a == b)");
        assert_eq!(lower("c ? a : b"), "(a if c else b)");
        assert_eq!(lower("1..3"), "_k_f_range(1, 3)");
        assert_eq!(lower("not a"), "(not a)");
        assert_eq!(lower("x is map"), "(x is mapping)");
    }

    #[test]
    fn coalescing_reads_the_left_path_leniently() {
        assert_eq!(
            lower("a.b[0].c ?? 'd'"),
            r#"(a.b[0].c if _k_nn(_k_get(a, "b", 0, "c")) else "d")"#
        );
        assert_eq!(lower("a ??? 'd'"), r#"(a if (a is defined) else "d")"#);
        assert_eq!(
            lower("secret('X') ?? 'd'"),
            r#"(_k_f_secret("X") if _k_nn(_k_f_secret("X")) else "d")"#
        );
    }

    #[test]
    fn coalescing_chains_do_not_grow_exponentially() {
        let lowered = lower("a ?? b ?? c ?? d");
        assert_eq!(
            lowered,
            r#"(a if _k_nn(a) else (b if _k_nn(b) else (c if _k_nn(c) else d)))"#
        );
    }

    #[test]
    fn lenient_tests_and_default() {
        assert_eq!(lower("a.b is defined"), r#"(_k_nn(_k_get(a, "b")))"#);
        assert_eq!(lower("a.b is not null"), r#"(_k_nn(_k_get(a, "b")))"#);
        assert_eq!(lower("a.b is null"), r#"(not _k_nn(_k_get(a, "b")))"#);
        assert_eq!(
            lower("a.b | default('x')"),
            r#"(_k_get(a, "b")|default("x"))"#
        );
    }
}
