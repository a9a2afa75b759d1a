//! Fixture tests: each `tests/inputs/*.txt` is a context, a template and what it renders to.
//!
//! A file holds sections separated by lines `---`:
//! 1. the context, a JSON object; its key `"$secrets"` (a map) is not a variable but the
//!    secrets the scope resolves (a context without it has no scope, as `render_pure`);
//! 2. the template (its last line break is not part of it);
//! 3. the expected output, or `ERROR: <the error's Display>`;
//! 4. optionally, the expected output once masked by the execution's registry.

mod support;

use kestrel_expr::{Context, Expressions};
use std::collections::BTreeMap;
use std::path::Path;

struct Case {
    context: serde_json::Value,
    secrets: Option<BTreeMap<String, String>>,
    template: String,
    expected: String,
    masked: Option<String>,
}

fn read_case(text: &str) -> Result<Case, String> {
    let sections: Vec<&str> = text.split("\n---\n").collect();
    let [context, template, expected, rest @ ..] = &sections[..] else {
        return Err("expected at least three sections separated by `---` lines".into());
    };
    let mut context: serde_json::Value =
        serde_json::from_str(context).map_err(|e| format!("bad context JSON: {e}"))?;
    let secrets = context
        .as_object_mut()
        .and_then(|o| o.remove("$secrets"))
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| format!("bad $secrets: {e}"))?;
    let strip = |s: &str| s.strip_suffix('\n').unwrap_or(s).to_string();
    Ok(Case {
        context,
        secrets,
        template: template.to_string(),
        expected: strip(expected),
        masked: rest.first().map(|m| strip(m)),
    })
}

fn run_case(expressions: &Expressions, case: Case) -> Result<(), String> {
    let scope = case.secrets.map(support::scope);
    let ctx = Context::new(case.context, scope.clone());
    let got = match expressions.render(&case.template, &ctx) {
        Ok(out) => out,
        Err(e) => format!("ERROR: {e}"),
    };
    if got != case.expected {
        return Err(format!("rendered\n{got}\nexpected\n{}", case.expected));
    }
    if let Some(masked) = case.masked {
        let registry = scope
            .as_ref()
            .ok_or("a masked section needs $secrets")?
            .registry();
        let got = registry.mask(&got);
        if got != masked {
            return Err(format!("masked\n{got}\nexpected\n{masked}"));
        }
    }
    Ok(())
}

#[test]
fn fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inputs");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
    let expressions = Expressions::new(serde_json::json!({"region": "eu-west-1"}));
    let mut failures = Vec::new();
    for path in &paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        if let Err(why) = read_case(&text).and_then(|case| run_case(&expressions, case)) {
            failures.push(format!("{name}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n\n")
    );
}
