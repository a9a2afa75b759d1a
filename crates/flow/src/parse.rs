//! YAML to [`Flow`], with validation.

use crate::{Flow, Violation};

/// Parses and validates a flow's YAML source; on failure, every violation found.
pub fn parse_flow(source: &str) -> Result<Flow, Vec<Violation>> {
    todo!("{source}")
}
