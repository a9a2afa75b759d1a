//! `kestrel secrets encode-env [FILE|-]`: a plain env file turned into `SECRET_KEY=<base64>`
//! lines for the environment-variable backend.

use crate::commands::read_text;
use crate::error::CliError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use kestrel_expr::Expressions;
use kestrel_secrets::DotenvEntry;
use std::io::Write;
use std::path::PathBuf;
use zeroize::Zeroizing;

#[derive(Debug, Args)]
pub(crate) struct EncodeEnvArgs {
    /// The env file; `-` or nothing reads stdin.
    file: Option<PathBuf>,
}

pub(crate) fn run(args: &EncodeEnvArgs) -> Result<u8, CliError> {
    let path = args.file.clone().unwrap_or_else(|| PathBuf::from("-"));
    let text = Zeroizing::new(read_text(&path)?);
    let expressions = Expressions::new(serde_json::json!({}));
    let encoded = encode_env(&text, &expressions)
        .map_err(|error| CliError::usage(format!("{}: {error}", path.display())))?;
    std::io::stdout()
        .lock()
        .write_all(encoded.as_bytes())
        .map_err(|error| CliError::failed("cannot write to stdout").caused_by(error))?;
    Ok(0)
}

/// One `SECRET_KEY=<base64>` line per variable of the env file `text`, in order: the key keeps
/// its case, a `SECRET_` prefix is not doubled, and a value written as an expression is
/// rendered (pure filters only) and then encoded once. Errors name the line and the variable,
/// never the value.
pub(crate) fn encode_env(
    text: &str,
    expressions: &Expressions,
) -> Result<Zeroizing<String>, String> {
    let entries = kestrel_secrets::parse_dotenv(text).map_err(|error| error.to_string())?;
    let mut out = Zeroizing::new(String::new());
    for entry in entries {
        let key = entry.name.strip_prefix("SECRET_").unwrap_or(&entry.name);
        let value = rendered_value(&entry, expressions)?;
        out.push_str("SECRET_");
        out.push_str(key);
        out.push('=');
        out.push_str(&STANDARD.encode(value.as_bytes()));
        out.push('\n');
    }
    Ok(out)
}

/// An env file entry's value, rendered (pure filters only) when it is written as an
/// expression. The error names the line and the variable, never the value.
pub(crate) fn rendered_value(
    entry: &DotenvEntry,
    expressions: &Expressions,
) -> Result<Zeroizing<String>, String> {
    if !is_expression(&entry.value) {
        return Ok(entry.value.clone());
    }
    let rendered = expressions.render_pure(&entry.value).map_err(|error| {
        // The error quotes its template, which is the secret value itself.
        format!(
            "line {}: the value of {} could not be rendered ({:?} error)",
            entry.line, entry.name, error.kind
        )
    })?;
    Ok(Zeroizing::new(rendered))
}

fn is_expression(value: &str) -> bool {
    value.contains("{{") || value.contains("{%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(text: &str) -> Result<String, String> {
        let expressions = Expressions::new(serde_json::json!({}));
        encode_env(text, &expressions).map(|out| out.to_string())
    }

    #[test]
    fn the_concept_pages_env_file_is_encoded() {
        let out = encode("MYPASSWORD=password\nGITHUB_ACCESS_TOKEN=mypat").unwrap();
        assert_eq!(
            out,
            "SECRET_MYPASSWORD=cGFzc3dvcmQ=\nSECRET_GITHUB_ACCESS_TOKEN=bXlwYXQ=\n"
        );
    }

    #[test]
    fn keys_keep_their_case_and_the_prefix_is_not_doubled() {
        let out = encode("SECRET_token=abcd\nmixed_Case=abcd\n").unwrap();
        assert_eq!(out, "SECRET_token=YWJjZA==\nSECRET_mixed_Case=YWJjZA==\n");
    }

    #[test]
    fn an_expression_is_rendered_then_encoded_once() {
        let out = encode("P={{ \"password\" | base64encode }}\n").unwrap();
        // base64 of the rendered text `cGFzc3dvcmQ=`.
        assert_eq!(out, "SECRET_P=Y0dGemMzZHZjbVE9\n");
    }

    #[test]
    fn a_failing_expression_names_the_variable_not_the_value() {
        let error = encode("TOKEN={{ 'hunter2' | nosuchfilter }}\n").unwrap_err();
        assert!(error.contains("TOKEN"), "{error}");
        assert!(error.contains("line 1"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    proptest! {
        #[test]
        fn random_env_files_never_panic(text in r#"(([A-Za-z_ #="'{}|$\\\-.]|é|\r|\n|export ){0,12}){0,20}"#) {
            let _ = encode(&text);
        }

        #[test]
        fn any_plain_value_round_trips(value in "[a-zA-Z0-9 ]{0,40}") {
            let out = encode(&format!("K='{value}'\n")).unwrap();
            let encoded = out.trim_end().strip_prefix("SECRET_K=").unwrap();
            prop_assert_eq!(STANDARD.decode(encoded).unwrap(), value.as_bytes());
        }
    }
}
