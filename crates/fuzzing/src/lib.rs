//! The properties kestrel's fuzz targets check, one public function per target.
//!
//! Each function takes the fuzzer's bytes, runs one public entry point of kestrel on them, and
//! panics only when a property is broken, so that a fuzzer reports the input; otherwise it
//! returns. The cargo-fuzz project in `fuzz/` calls them from two-line `fuzz_target!`s, and
//! `tests/corpus.rs` replays every file of `fuzz/corpus/<target>/` through them in `cargo test`.
//!
//! | target | entry point | property |
//! | --- | --- | --- |
//! | [`render`] | `kestrel_expr::Expressions::render` with a context and a secret scope, default limits but 1% of the fuel | never a panic or a hang; the output fits `expression.max-value-size`; masked, it shows no secret the render resolved; an error never quotes one |
//! | [`flow_yaml`] | `kestrel_engine::check_flow` (and `kestrel_flow::parse_flow`) | never a panic; every violation has a message; a flow that loads has a valid id, namespace and tasks |
//! | [`dotenv`] | `kestrel_secrets::parse_dotenv`, `decode_secret_value`, `EnvBackend::load` | never a panic; `encode-env` then loading `.env_encoded` gives every value back; a value written back (quoted or not) reads back as itself |
//! | [`masker`] | `kestrel_secrets::MaskRegistry` | never a panic; no registered value, line, JSON leaf or listed encoded form survives `mask`; masking twice changes nothing; the other queries agree with `mask` |
//! | [`api_body`] | the server's router (`kestrel_server::app`) over a temporary SQLite store | never a panic or a 5xx; errors are `{"message"}`; no answer holds a secret value |

mod api_body;
mod dotenv;
mod flow_yaml;
mod masker;
mod render;

pub use api_body::api_body;
pub use dotenv::dotenv;
pub use flow_yaml::flow_yaml;
pub use masker::masker;
pub use render::render;

/// A fuzz target: the bytes in, a panic when a property is broken.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` call
/// them.
pub const TARGETS: &[(&str, Target)] = &[
    ("render", render),
    ("flow_yaml", flow_yaml),
    ("dotenv", dotenv),
    ("masker", masker),
    ("api_body", api_body),
];
