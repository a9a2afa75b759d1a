//! `kestrel validate FLOW.yml...`: every violation of every file, one per line.

use crate::commands::{read_text, violation_lines};
use crate::error::CliError;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The flow files to check.
    #[arg(required = true)]
    flows: Vec<PathBuf>,
}

/// Checks every file; exit 0 when all are valid (one `FILE: valid` line each on stdout),
/// otherwise exit 2 with each violation on stderr and nothing on stdout.
pub(crate) fn run(args: &ValidateArgs) -> Result<u8, CliError> {
    let mut problems = Vec::new();
    let mut valid = Vec::new();
    for path in &args.flows {
        let source = match read_text(path) {
            Ok(source) => source,
            Err(error) => {
                problems.push(format!("{}: {error}", path.display()));
                continue;
            }
        };
        match kestrel_engine::check_flow(&source) {
            Ok(flow) => valid.push(format!(
                "{}: valid ({}.{})",
                path.display(),
                flow.namespace,
                flow.id
            )),
            Err(violations) => problems.extend(violation_lines(path, &violations)),
        }
    }
    if !problems.is_empty() {
        return Err(CliError::usage_lines(problems));
    }
    let mut stdout = std::io::stdout().lock();
    for line in valid {
        let _ = writeln!(stdout, "{line}");
    }
    Ok(0)
}
