//! The flow editor: the YAML in a text area; saving validates it and shows each violation at
//! its line (`line:col: message`, the line highlighted in a listing of the source). A saved
//! flow can be run from its page, with its inputs (a SECRET input in a password field).

use super::Ui;
use super::namespaces::{ExecutionRow, Shown, checked, executions_of};
use super::page::{self, Notice, UiError, when};
use super::session::Current;
use crate::error::AppError;
use crate::executor::{self, Submission};
use crate::extract::Path;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Redirect, Response};
use kestrel_flow::{InputType, Violation};
use kestrel_store::{FlowRecord, validate_namespace};
use minijinja::{Value, context};
use serde::Deserialize;

/// Executions listed on a flow's page.
const RECENT_EXECUTIONS: usize = 10;

/// The editor's form.
#[derive(Debug, Deserialize)]
pub(super) struct Edited {
    #[serde(default)]
    source: String,
    /// The namespace whose page the editor was opened from (a new flow).
    #[serde(default)]
    from: String,
}

/// A new flow's starting point.
fn starter(namespace: &str) -> String {
    format!(
        "id: hello\nnamespace: {namespace}\n\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: Hello from {{{{ flow.namespace }}}}\n"
    )
}

/// What the editor shows besides the source.
#[derive(Default)]
struct Editor<'a> {
    /// The flow edited; `None` for a new one.
    saved: Option<&'a FlowRecord>,
    violations: &'a [Violation],
    /// A refusal that is not about a line (a name taken, a namespace out of reach).
    error: Option<String>,
    /// The saved flow's inputs, for its run form.
    inputs: Vec<Value>,
    /// The saved flow's latest executions.
    recent: Vec<ExecutionRow>,
}

fn editor_page(
    current: &Current,
    status: StatusCode,
    namespace: &str,
    source: &str,
    editor: Editor<'_>,
) -> Response {
    let bad: Vec<usize> = editor.violations.iter().filter_map(|v| v.line).collect();
    let lines: Vec<Value> = source
        .lines()
        .enumerate()
        .map(|(i, text)| context! { number => i + 1, text, bad => bad.contains(&(i + 1)) })
        .collect();
    let violations: Vec<Value> = editor
        .violations
        .iter()
        .map(|v| context! { line => v.line, text => v.to_string() })
        .collect();
    let (action, title) = match editor.saved {
        Some(flow) => (
            format!("/ui/flows/{}/{}", flow.namespace, flow.id),
            format!("{}.{}", flow.namespace, flow.id),
        ),
        None => ("/ui/flows".to_owned(), "New flow".to_owned()),
    };
    let saved = editor.saved.map(|flow| {
        context! {
            id => flow.id, revision => flow.revision, updated => when(flow.updated_at),
            run => format!("/ui/flows/{}/{}/run", flow.namespace, flow.id),
        }
    });
    let values = context! {
        title, nav => "namespaces", namespace, action, source, saved, violations,
        lines => if violations.is_empty() { Vec::new() } else { lines },
        error => editor.error, inputs => editor.inputs, recent => editor.recent,
    };
    page::render_status(current, status, "flow.html", values)
}

pub(super) async fn new(
    current: Current,
    Path(namespace): Path<String>,
) -> Result<Response, UiError> {
    checked(&current, &namespace)?;
    let editor = Editor::default();
    let source = starter(&namespace);
    Ok(editor_page(
        &current,
        StatusCode::OK,
        &namespace,
        &source,
        editor,
    ))
}

/// Back to the editor with what refused the save.
fn refused(
    current: &Current,
    namespace: &str,
    source: &str,
    saved: Option<&FlowRecord>,
    error: UiError,
) -> Response {
    let editor = Editor {
        saved,
        error: Some(error.message().to_owned()),
        ..Editor::default()
    };
    editor_page(current, error.status(), namespace, source, editor)
}

/// The editor again, with the violations at their lines.
fn invalid(
    current: &Current,
    namespace: &str,
    source: &str,
    saved: Option<&FlowRecord>,
    violations: &[Violation],
) -> Response {
    let editor = Editor {
        saved,
        violations,
        ..Editor::default()
    };
    editor_page(
        current,
        StatusCode::UNPROCESSABLE_ENTITY,
        namespace,
        source,
        editor,
    )
}

/// To the saved flow's page, saying which revision it is.
fn saved(ui: &Ui, current: &Current, record: &FlowRecord) -> Response {
    ui.app.0.flows.forget(&record.namespace, &record.id);
    let notice = format!(
        "Flow {}.{} saved (revision {}).",
        record.namespace, record.id, record.revision
    );
    ui.sessions.notify(&current.id, Notice::done(notice));
    Redirect::to(&format!("/ui/flows/{}/{}", record.namespace, record.id)).into_response()
}

pub(super) async fn create(
    State(ui): State<Ui>,
    current: Current,
    Form(edited): Form<Edited>,
) -> Response {
    let from = if validate_namespace(&edited.from).is_ok() {
        edited.from.as_str()
    } else {
        ""
    };
    let source = edited.source.as_str();
    let flow = match crate::flows::check(source).await {
        Ok(flow) => flow,
        Err(violations) => return invalid(&current, from, source, None, &violations),
    };
    if let Err(error) = current.caller.require_namespace(&flow.namespace) {
        return refused(&current, from, source, None, error.into());
    }
    let tenant = &ui.app.options().tenant;
    match ui
        .app
        .store()
        .create_flow(tenant, &flow.namespace, &flow.id, source)
        .await
    {
        Ok(record) => saved(&ui, &current, &record),
        Err(kestrel_store::StoreError::Conflict(_)) => {
            let taken = format!(
                "Flow {}.{} already exists: open it from its namespace to change it, or choose another id.",
                flow.namespace, flow.id
            );
            refused(
                &current,
                from,
                source,
                None,
                UiError::new(StatusCode::CONFLICT, taken),
            )
        }
        Err(error) => refused(&current, from, source, None, error.into()),
    }
}

async fn stored(ui: &Ui, namespace: &str, id: &str) -> Result<FlowRecord, UiError> {
    let tenant = &ui.app.options().tenant;
    ui.app
        .store()
        .get_flow(tenant, namespace, id, None)
        .await?
        .ok_or_else(|| UiError::new(StatusCode::NOT_FOUND, format!("No flow {namespace}.{id}.")))
}

pub(super) async fn edit(
    State(ui): State<Ui>,
    current: Current,
    Path((namespace, id)): Path<(String, String)>,
) -> Result<Response, UiError> {
    checked(&current, &namespace)?;
    let record = stored(&ui, &namespace, &id).await?;
    let shown = Shown {
        flow_id: Some(&id),
        page: 1,
        size: super::namespaces::EXECUTIONS_PER_PAGE,
        ..Shown::default()
    };
    let (recent, _) = executions_of(&ui.app, &current, Some(&namespace), &shown).await?;
    let recent: Vec<ExecutionRow> = recent.into_iter().take(RECENT_EXECUTIONS).collect();
    let inputs: Vec<Value> = kestrel_flow::parse_flow(&record.source)
        .map(|flow| flow.inputs)
        .unwrap_or_default()
        .iter()
        .map(|input| {
            context! {
                id => input.id,
                kind => input.input_type.as_str(),
                secret => input.input_type == InputType::Secret,
                required => input.required && input.defaults.is_none(),
                description => input.description,
            }
        })
        .collect();
    let editor = Editor {
        saved: Some(&record),
        inputs,
        recent,
        ..Editor::default()
    };
    Ok(editor_page(
        &current,
        StatusCode::OK,
        &namespace,
        &record.source,
        editor,
    ))
}

pub(super) async fn save(
    State(ui): State<Ui>,
    current: Current,
    Path((namespace, id)): Path<(String, String)>,
    Form(edited): Form<Edited>,
) -> Result<Response, UiError> {
    checked(&current, &namespace)?;
    let record = stored(&ui, &namespace, &id).await?;
    let source = edited.source.as_str();
    let flow = match crate::flows::check(source).await {
        Ok(flow) => flow,
        Err(violations) => {
            return Ok(invalid(
                &current,
                &namespace,
                source,
                Some(&record),
                &violations,
            ));
        }
    };
    if (flow.namespace.as_str(), flow.id.as_str()) != (namespace.as_str(), id.as_str()) {
        let message = format!(
            "The YAML names {}.{} but this page edits {namespace}.{id}: keep its id and namespace, \
             or create a new flow.",
            flow.namespace, flow.id
        );
        let error = UiError::new(StatusCode::UNPROCESSABLE_ENTITY, message);
        return Ok(refused(&current, &namespace, source, Some(&record), error));
    }
    let tenant = &ui.app.options().tenant;
    let updated = ui
        .app
        .store()
        .update_flow(tenant, &namespace, &id, source)
        .await?
        .ok_or_else(|| UiError::new(StatusCode::NOT_FOUND, format!("No flow {namespace}.{id}.")))?;
    Ok(saved(&ui, &current, &updated))
}

pub(super) async fn run(
    State(ui): State<Ui>,
    current: Current,
    Path((namespace, id)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    checked(&current, &namespace)?;
    let flow =
        ui.app.latest_flow(&namespace, &id).await?.ok_or_else(|| {
            UiError::new(StatusCode::NOT_FOUND, format!("No flow {namespace}.{id}."))
        })?;
    let inputs = super::form_inputs(fields);
    let submission = Submission {
        id: None,
        flow,
        inputs,
        trigger: None,
        triggered_by: current.caller.actor().to_string(),
    };
    match executor::submit(&ui.app, submission).await {
        Ok(submitted) => {
            let page = format!("/ui/executions/{}", submitted.record.id);
            Ok(Redirect::to(&page).into_response())
        }
        Err(error @ (AppError::Invalid { .. } | AppError::Conflict(_))) => {
            ui.sessions
                .notify(&current.id, Notice::error(format!("Not run: {error}")));
            Ok(Redirect::to(&format!("/ui/flows/{namespace}/{id}")).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_flow_is_valid_in_its_namespace() {
        let flow = kestrel_flow::parse_flow(&starter("company.team")).unwrap();
        assert_eq!(flow.namespace, "company.team");
        assert_eq!(flow.id, "hello");
    }
}
