//! Secrets: what a secret value is, where it comes from, and how it is kept out of sight.
//!
//! This crate owns every step between a `secret('KEY')` call and the masked text a person reads:
//! [`SecretValue`] (zeroized on drop, never printed by `Debug`), the [`SecretBackend`] trait that
//! every source implements (the environment-variable backend [`EnvBackend`] here; the embedded
//! store and external managers elsewhere), the [`Resolver`] that checks the [`ReadPolicy`] for
//! the [`Reader`] every read names, then walks a namespace's parents and the environment, the per-execution [`SecretScope`] that caches and registers what an
//! execution resolved, and the [`MaskRegistry`] that replaces every registered value, derived
//! value and encoded form with `******` (and, in JSON, every number whose decimal text is a
//! registered value).
//!
//! ```
//! use kestrel_secrets::MaskRegistry;
//! let registry = MaskRegistry::new(4);
//! registry.register("MYPASSWORD", "password");
//! assert_eq!(registry.mask("login with password"), "login with ******");
//! assert_eq!(registry.mask("cGFzc3dvcmQ="), "******");
//! ```

mod backend;
mod dotenv;
mod encoded;
mod env;
mod mask;
mod matcher;
mod policy;
mod resolver;
mod value;

pub use backend::{BackendError, SecretBackend};
pub use dotenv::{DotenvEntry, DotenvError, parse_dotenv};
pub use encoded::EncodedForms;
pub use env::{EnvBackend, EnvLoad, EnvOptions, decode_secret_value};
pub use mask::{MASK, MaskRegistry};
pub use policy::{ReadPolicy, Reader, Refusal, is_within, with_ancestors};

pub use resolver::{ResolveError, Resolver, SecretScope};
pub use value::SecretValue;
