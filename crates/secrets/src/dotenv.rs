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
pub fn parse_dotenv(text: &str) -> Result<Vec<DotenvEntry>, DotenvError> {
    todo!("{text}")
}
