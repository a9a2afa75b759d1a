//! Kestra's file functions: `read()`, `fileSize()`, `fileExists()` and `isFileEmpty()` reach the
//! execution's internal storage through the render's [`crate::Files`]; `fileURI()` only builds a
//! namespace file's URI.
//!
//! As in Kestra, an internal storage URI is readable when it belongs to the current execution
//! (`kestra:///<namespace as a path>/<flow id slugified>/executions/<execution id>/...`) or to
//! the execution that triggered it (`trigger.namespace`, `trigger.flowId`,
//! `trigger.executionId`); a `..` segment is refused. What is read is not tainted unless the
//! path was derived from a secret: files are outputs, masked where they are shown.

use super::{Flow, function, strings};
use crate::context::RenderState;
use crate::error::function_error;
use crate::limits::Cap;
use minijinja::value::Value;
use minijinja::{Environment, Error, State};

const SCHEME: &str = "kestra:///";

pub(super) fn register(env: &mut Environment<'static>, cap: Cap) {
    const PATH: Option<&[&str]> = Some(&["path"]);
    function(
        env,
        "read",
        PATH,
        Flow::Derived,
        move |state: &State<'_, '_>, path: Value| read(state, &path, cap),
    );
    for (name, ask) in [
        ("fileSize", Ask::Size),
        ("fileExists", Ask::Exists),
        ("isFileEmpty", Ask::Empty),
    ] {
        function(
            env,
            name,
            PATH,
            Flow::Derived,
            move |state: &State<'_, '_>, path: Value| {
                let (files, uri) = storage(state, name, &path)?;
                match ask {
                    Ask::Size => files.size(&uri).map(Value::from),
                    Ask::Exists => files.exists(&uri).map(Value::from),
                    Ask::Empty => files.size(&uri).map(|n| Value::from(n == 0)),
                }
                .map_err(|e| failed(name, &e))
            },
        );
    }
    function(
        env,
        "fileURI",
        PATH,
        Flow::Derived,
        move |state: &State<'_, '_>, path: Value| file_uri(state, &path, cap),
    );
}

/// What `fileSize()`, `fileExists()` and `isFileEmpty()` ask of a file.
#[derive(Clone, Copy)]
enum Ask {
    Size,
    Exists,
    Empty,
}

fn failed(name: &str, why: &str) -> Error {
    function_error(format!("{name}(): {why}"))
}

/// `read(path)`: the text of a file of the internal storage, at most `expression.max-value-size`
/// bytes (invalid UTF-8 replaced, as Java's `new String(bytes, UTF_8)` does).
fn read(state: &State<'_, '_>, path: &Value, cap: Cap) -> Result<String, Error> {
    let (files, uri) = storage(state, "read", path)?;
    let bytes = files
        .read(&uri, cap.max())
        .map_err(|e| failed("read", &e))?;
    cap.check(Some(bytes.len()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The render's files and the checked URI `path` names.
fn storage(
    state: &State<'_, '_>,
    name: &str,
    path: &Value,
) -> Result<(std::sync::Arc<dyn crate::Files>, String), Error> {
    let uri = path.as_str().filter(|p| !p.is_empty()).ok_or_else(|| {
        function_error(format!(
            "{name}(): expects an argument 'path' that is an internal storage URI (kestra:///...)."
        ))
    })?;
    if !uri.starts_with(SCHEME) {
        return Err(function_error(format!(
            "{name}(): '{}' is not an internal storage URI (kestra:///...); namespace files are not supported by kestrel.",
            shown(state, uri)
        )));
    }
    if uri.split('/').any(|segment| segment == "..") {
        return Err(function_error(format!(
            "{name}(): the path must not contain '..'."
        )));
    }
    let me = RenderState::of(state);
    let files = me
        .as_ref()
        .and_then(|me| me.files.clone())
        .ok_or_else(|| failed(name, "this context has no internal storage."))?;
    let owner = |root: &str, namespace: &str, flow: &str, execution: &str| {
        let ns = state.lookup(root)?.get_attr(namespace).ok()?;
        let flow = state.lookup(root)?.get_attr(flow).ok()?;
        let execution = match root {
            "flow" => state.lookup("execution")?.get_attr(execution).ok()?,
            _ => state.lookup(root)?.get_attr(execution).ok()?,
        };
        let (ns, flow, execution) = (ns.as_str()?, flow.as_str()?, execution.as_str()?);
        let flow = strings::slugify(&Value::from(flow), Cap::new(flow.len() * 3 + 8)).ok()?;
        Some(format!(
            "{SCHEME}{}/{flow}/executions/{execution}/",
            ns.replace('.', "/")
        ))
    };
    let allowed = [
        owner("flow", "namespace", "id", "id"),
        owner("trigger", "namespace", "flowId", "executionId"),
    ];
    if !allowed
        .iter()
        .flatten()
        .any(|base| uri.starts_with(base.as_str()))
    {
        return Err(function_error(format!(
            "Unable to read the file '{}' as it didn't belong to the current execution",
            shown(state, uri)
        )));
    }
    Ok((files, uri.to_string()))
}

/// `text` for an error message, unless it holds a secret.
fn shown<'t>(state: &State<'_, '_>, text: &'t str) -> &'t str {
    let secret = RenderState::of(state)
        .and_then(|me| me.registry())
        .is_some_and(|r| r.contains_secret(text));
    if secret {
        "(a value holding a secret)"
    } else {
        text
    }
}

/// Kestra's `fileURI(path)`: the URI of the namespace file `path` of the flow's namespace.
fn file_uri(state: &State<'_, '_>, path: &Value, cap: Cap) -> Result<String, Error> {
    let path = path.as_str().ok_or_else(|| {
        function_error(
            "The 'fileURI' function expects an argument 'path' that is a path to a namespace file.",
        )
    })?;
    let path = path.strip_prefix('/').unwrap_or(path);
    if path.contains("../") {
        return Err(function_error("Path must not contain '../'"));
    }
    let namespace = state
        .lookup("flow")
        .and_then(|flow| flow.get_attr("namespace").ok())
        .and_then(|ns| ns.as_str().map(str::to_string))
        .ok_or_else(|| function_error("The 'fileURI' function needs `flow.namespace`."))?;
    let uri = format!("kestra:///{}/_files/{path}", namespace.replace('.', "/"));
    cap.check(Some(uri.len()))?;
    Ok(uri)
}
