//! Expressions: Kestra's Pebble templates, lowered to minijinja and rendered.
//!
//! [`Expressions`] owns the minijinja environment with Kestra's filters and functions
//! (`secret()`, `render()`, `fromJson`, `base64encode`, ...) and a cache of lowered, compiled
//! templates. A Pebble front end parses each `{{ }}` and `{% %}` with Pebble's precedences and
//! `??`/`???`/ternary, and prints minijinja source with explicit parentheses. A render gets a
//! [`Context`]: the variables (`flow`, `execution`, `task`, `inputs`, `outputs`, `labels`,
//! `vars`, `envs`, `globals`) and the execution's [`kestrel_secrets::SecretScope`], through
//! which `secret()` resolves and registers values, and every filter or function whose input is
//! tainted (holds a secret, or a value the render derived from one, at any depth) registers its
//! result too (derived masking). Every render runs under [`ExpressionLimits`] (fuel, the largest
//! value a filter may build, the wall-clock backstop the caller enforces). Errors are
//! [`ExprError`]s naming the template and line, never a secret value.
//!
//! ```
//! use kestrel_expr::{Context, Expressions};
//! let expr = Expressions::new(serde_json::json!({}));
//! let ctx = Context::new(serde_json::json!({"name": "kestrel"}), None);
//! assert_eq!(expr.render("{{ 'Hi ' ~ name | upper }}", &ctx).unwrap(), "HI KESTREL");
//! ```
//!
//! The pipeline, one module each: `pebble` (scan, parse, print minijinja source), `library`
//! (filters, functions and the derived-masking wrapper, registered in one place), `limits`
//! (fuel, value sizes), `render` (environment, cache, errors traced back to the tag as written). The language kestrel accepts
//! is described in `docs/expressions.md`; `tests/inputs/*.txt` are worked examples of every
//! operator, filter and function.

mod context;
mod error;
mod files;
mod library;
mod limits;
mod pebble;
mod references;
mod render;

pub use context::Context;

/// The variable under which a task's render finds its execution's ERROR entries for
/// `errorLogs()`; not an identifier, so no template names it.
pub const ERROR_LOGS: &str = "kestrel:errorLogs";
pub use error::{ExprError, ExprErrorKind};
pub use files::Files;
pub use limits::ExpressionLimits;
pub use references::{SecretReference, secret_references};
pub use render::Expressions;
