//! The process itself: kestrel is made non-dumpable at start and reads its environment once,
//! into memory zeroized on drop, that the rest of the command line is handed instead of asking
//! `std::env` again. A task running as the same user can then read neither
//! `/proc/<kestrel pid>/environ` (where `SECRET_*`, `KESTREL_MASTER_KEY` and the redacted
//! variables sit) nor kestrel's memory.

use rustix::process::{DumpableBehavior, set_dumpable_behavior};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use zeroize::Zeroizing;

/// Makes this process non-dumpable: no core dump, no `ptrace` attach, and its `/proc/<pid>`
/// entries (`environ`, `mem`, `maps`...) owned by root, for every other process of the user.
/// A task's own processes are dumpable again (the flag resets at `exec`), and see only what
/// the engine passes them.
pub(crate) fn forbid_inspection() -> std::io::Result<()> {
    set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(std::io::Error::from)
}

/// The variables kestrel never passes to the engine: its own settings, the master key among
/// them (the engine's `envs` never holds them either).
const OWN_PREFIX: &str = "KESTREL_";

/// The process environment as it was at start, every value zeroized on drop. Variables whose
/// name is not Unicode are left out: kestrel reads none.
pub(crate) struct Environment {
    variables: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

/// A variable that is set but whose value is not Unicode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotText;

impl Environment {
    /// Reads the process environment: the one read kestrel makes of it.
    pub(crate) fn capture() -> Self {
        Self::from_pairs(std::env::vars_os())
    }

    /// An environment of the given variables.
    pub(crate) fn from_pairs(pairs: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        let variables = pairs
            .into_iter()
            .filter_map(|(name, value)| {
                Some((name.into_string().ok()?, Zeroizing::new(value.into_vec())))
            })
            .collect();
        Self { variables }
    }

    /// The value of `name`, if set.
    pub(crate) fn os(&self, name: &str) -> Option<&OsStr> {
        self.variables
            .get(name)
            .map(|value| OsStr::from_bytes(value))
    }

    /// The value of `name`, if set and not empty.
    pub(crate) fn non_empty_os(&self, name: &str) -> Option<&OsStr> {
        self.os(name).filter(|value| !value.is_empty())
    }

    /// The text of `name`, if set; an error when its value is not Unicode.
    pub(crate) fn text(&self, name: &str) -> Result<Option<&str>, NotText> {
        self.variables
            .get(name)
            .map(|value| std::str::from_utf8(value).map_err(|_| NotText))
            .transpose()
    }

    /// Whether `name` is set.
    pub(crate) fn is_set(&self, name: &str) -> bool {
        self.variables.contains_key(name)
    }

    /// The variables the engine loads its secrets (`SECRET_*`) and `envs` from, as text:
    /// every one whose value is Unicode but kestrel's own settings (`KESTREL_*`) and the names
    /// in `left_out` (the redacted variables, which the engine never exposes either).
    pub(crate) fn for_engine(&self, left_out: &[String]) -> Vec<(String, String)> {
        self.variables
            .iter()
            .filter(|(name, _)| !name.starts_with(OWN_PREFIX) && !left_out.contains(name))
            .filter_map(|(name, value)| {
                let text = std::str::from_utf8(value).ok()?;
                Some((name.clone(), text.to_owned()))
            })
            .collect()
    }
}

impl fmt::Debug for Environment {
    /// The names only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.variables.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(pairs: &[(&str, &[u8])]) -> Environment {
        Environment::from_pairs(
            pairs
                .iter()
                .map(|(name, value)| (OsString::from(name), OsString::from_vec(value.to_vec()))),
        )
    }

    #[test]
    fn values_are_read_as_text_or_paths() {
        let env = environment(&[("HOME", b"/home/ada"), ("EMPTY", b""), ("BAD", b"\xff")]);
        assert_eq!(env.text("HOME"), Ok(Some("/home/ada")));
        assert_eq!(env.text("UNSET"), Ok(None));
        assert_eq!(env.text("BAD"), Err(NotText));
        assert_eq!(env.os("BAD").map(OsStr::as_bytes), Some(&b"\xff"[..]));
        assert_eq!(env.non_empty_os("EMPTY"), None);
        assert!(env.is_set("EMPTY") && !env.is_set("UNSET"));
    }

    #[test]
    fn the_engine_gets_neither_kestrels_settings_nor_the_left_out_names() {
        let env = environment(&[
            ("SECRET_A", b"YQ=="),
            ("KESTREL_MASTER_KEY", b"key"),
            ("VAULT_TOKEN", b"token"),
            ("ENV_X", b"x"),
            ("NOT_TEXT", b"\xff"),
        ]);
        let names: Vec<String> = env
            .for_engine(&["VAULT_TOKEN".to_owned()])
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["ENV_X", "SECRET_A"]);
    }

    #[test]
    fn debug_shows_names_never_values() {
        let env = environment(&[("SECRET_A", b"c2VjcmV0LXZhbHVl")]);
        let shown = format!("{env:?}");
        assert!(shown.contains("SECRET_A"), "{shown}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }
}
