//! An execution's page: its state, its task runs' states, its logs (live while it runs here,
//! through Server-Sent Events; at its end when it runs on another node), its inputs and
//! outputs, a kill button, and a restart button once it failed. Everything shown was masked
//! by the engine before the server kept it.

use super::Ui;
use super::page::{self, Notice, UiError, when};
use super::session::Current;
use crate::error::AppError;
use crate::executor::{self, Live, LiveEvent};
use crate::extract::{Params, Path, Query};
use crate::state::AppState;
use axum::extract::{Form, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse as _, Redirect, Response};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, BoxStream, Stream, StreamExt as _};
use kestrel_storage::{ExecutionFiles, StorageUri};
use kestrel_store::{ExecutionRecord, LogRecord};
use minijinja::{Value, context};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::io::Read as _;
use std::sync::Arc;
use tokio::sync::broadcast::{Receiver, error::RecvError};

/// The execution `id` as it is now (from memory while it runs here), if the caller reaches
/// its namespace.
async fn find(
    ui: &Ui,
    current: &Current,
    id: &str,
) -> Result<(ExecutionRecord, Option<Arc<Live>>), UiError> {
    // One that ended is read from the store, where it is complete.
    let live = ui
        .app
        .0
        .executor
        .get(id)
        .filter(|live| live.record().ended_at.is_none());
    let record = match &live {
        Some(live) => live.record(),
        None => ui
            .app
            .store()
            .get_execution(&ui.app.options().tenant, id)
            .await?
            .ok_or_else(|| UiError::new(StatusCode::NOT_FOUND, format!("No execution {id}.")))?,
    };
    current.caller.require_namespace(&record.namespace)?;
    Ok((record, live))
}

fn log_row(log: &LogRecord) -> serde_json::Value {
    json!({
        "time": log.at.format("%H:%M:%S%.3f").to_string(),
        "level": log.level,
        "task": log.task_id,
        "message": log.message,
    })
}

/// The resume form of a PAUSED execution running here: where it posts and the `onResume`
/// inputs it asks for; none otherwise.
async fn resume_form(
    ui: &Ui,
    record: &ExecutionRecord,
    here: bool,
) -> Result<Option<Value>, UiError> {
    if record.state != "PAUSED" || !here {
        return Ok(None);
    }
    let (defs, _) = executor::on_resume_inputs(&ui.app, record).await?;
    let inputs: Vec<Value> = defs
        .iter()
        .map(|def| {
            context! {
                id => def.id,
                kind => def.input_type.as_str(),
                required => def.required,
                secret => def.input_type == kestrel_flow::InputType::Secret,
                description => def.description,
            }
        })
        .collect();
    Ok(Some(context! {
        action => format!("/ui/executions/{}/resume", record.id),
        inputs,
    }))
}

/// Resumes a PAUSED execution running here with the form's `onResume` inputs.
pub(super) async fn resume(
    State(ui): State<Ui>,
    current: Current,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let (record, live) = find(&ui, &current, &id).await?;
    let notice = match live.filter(|_| record.state == "PAUSED") {
        None => Notice::error(format!(
            "Execution {id} is not paused here ({}): nothing to resume.",
            record.state
        )),
        Some(live) => match live.resumer.resume(super::form_inputs(fields)).await {
            Ok(()) => Notice::done(format!("Execution {id} resumes.")),
            Err(refused) => Notice::error(format!("Not resumed: {refused}")),
        },
    };
    Ok(back_with(&ui, &current, &id, notice))
}

/// The metrics the task runs recorded, as readers see them (a value equal to a numeric
/// secret is the mask).
fn metric_rows(record: &ExecutionRecord) -> Vec<Value> {
    record
        .task_runs
        .iter()
        .flat_map(|stored| {
            let run = crate::executor::record::prior_run(stored);
            run.metrics.into_iter().map(move |metric| {
                let tags: Vec<String> = metric
                    .tags
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                context! {
                    task => run.task_id.clone(),
                    name => metric.name,
                    kind => metric.kind.as_str(),
                    value => metric.value.to_json().to_string(),
                    tags,
                }
            })
        })
        .collect()
}

/// The tasks that ran, each once, in the order they first ran: the log filter's choices.
fn task_ids(record: &ExecutionRecord) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for run in &record.task_runs {
        if !ids.contains(&run.task_id) {
            ids.push(run.task_id.clone());
        }
    }
    ids
}

/// The log of an ended execution as a text file (`<time> <LEVEL> <task> <message>` lines),
/// masked as the page shows it.
pub(super) async fn logs(
    State(ui): State<Ui>,
    current: Current,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let (record, _) = find(&ui, &current, &id).await?;
    let tenant = &ui.app.options().tenant;
    let entries = ui.app.store().execution_logs(tenant, &record.id).await?;
    let text: String = entries
        .iter()
        .map(|entry| {
            let at = entry
                .at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let task = entry.task_id.as_deref().unwrap_or("-");
            format!("{at} {:<5} {task} {}\n", entry.level, entry.message)
        })
        .collect();
    let disposition = format!("attachment; filename=\"{}.log\"", record.id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    )
        .into_response())
}

fn task_rows(record: &ExecutionRecord) -> Vec<Value> {
    record
        .task_runs
        .iter()
        .map(|run| {
            context! {
                id => run.id,
                task => run.task_id,
                state => run.state,
                attempt => run.attempt,
                started => when(run.started_at),
                duration => run.ended_at.map(|end| super::page::human_duration((end - run.started_at).num_milliseconds())),
                error => run.error,
            }
        })
        .collect()
}

/// The Gantt timeline of the task runs: for each, its attempts as bars placed in the
/// execution's span (percentages of it), each with its state and a title for tooltips and
/// screen readers. A task run still running reaches `now`.
fn timeline(record: &ExecutionRecord, now: DateTime<Utc>) -> Vec<Value> {
    let start = record.created_at;
    let end = record.ended_at.unwrap_or(now);
    let span = (end - start).num_milliseconds().max(1) as f64;
    let at = |instant: DateTime<Utc>| {
        let offset = (instant - start).num_milliseconds().max(0) as f64;
        (offset * 100.0 / span).min(100.0)
    };
    record
        .task_runs
        .iter()
        .map(|stored| {
            let run = crate::executor::record::prior_run(stored);
            let spans: Vec<(DateTime<Utc>, Option<DateTime<Utc>>, String)> =
                if run.attempts.is_empty() {
                    vec![(run.start, run.end, run.state.as_str().to_owned())]
                } else {
                    run.attempts
                        .iter()
                        .map(|a| (a.start, a.end, a.state.as_str().to_owned()))
                        .collect()
                };
            let bars: Vec<Value> = spans
                .iter()
                .enumerate()
                .map(|(number, (from, to, state))| {
                    let to = to.unwrap_or(now);
                    let left = at(*from);
                    let width = (at(to) - left).max(0.4);
                    let took = super::page::human_duration((to - *from).num_milliseconds());
                    context! {
                        x => format!("{left:.2}%"),
                        width => format!("{:.2}%", width.min(100.0 - left).max(0.4)),
                        state => state.to_lowercase(),
                        title => format!("{} · attempt {} · {state} · {took}", run.task_id, number + 1),
                    }
                })
                .collect();
            context! { task => run.task_id, bars }
        })
        .collect()
}

/// Pretty JSON of inputs or outputs, or nothing when empty.
fn pretty(value: &serde_json::Value) -> Option<String> {
    let empty = value.is_null() || value.as_object().is_some_and(serde_json::Map::is_empty);
    (!empty).then(|| serde_json::to_string_pretty(value).unwrap_or_default())
}

/// The tabs of an execution's page: name, label.
const TABS: [(&str, &str); 4] = [
    ("logs", "Logs"),
    ("outputs", "Outputs"),
    ("metrics", "Metrics"),
    ("inputs", "Inputs"),
];

/// Which tab of the page is shown (the logs when none is named).
#[derive(Deserialize)]
pub(super) struct Shown {
    tab: Option<String>,
}

/// The tab links, `current`'s marked, the outputs and metrics ones with how many they hold.
fn tab_links(current: &str, outputs: usize, metrics: usize) -> Vec<Value> {
    TABS.iter()
        .map(|(name, label)| {
            let count = match *name {
                "outputs" => Some(outputs),
                "metrics" => Some(metrics),
                _ => None,
            };
            context! { name, label, count, current => *name == current }
        })
        .collect()
}

pub(super) async fn page(
    State(ui): State<Ui>,
    current: Current,
    Path(id): Path<String>,
    Query(shown): Query<Shown>,
) -> Result<Response, UiError> {
    let tab = shown
        .tab
        .filter(|tab| TABS.iter().any(|(name, _)| name == tab))
        .unwrap_or_else(|| "logs".to_owned());
    let (record, live) = find(&ui, &current, &id).await?;
    let running = record.ended_at.is_none();
    let resume = resume_form(&ui, &record, live.is_some()).await?;
    // While it runs (here or elsewhere) the log comes through the stream, from its first entry.
    let logs: Vec<serde_json::Value> = if running {
        Vec::new()
    } else {
        let tenant = &ui.app.options().tenant;
        ui.app
            .store()
            .execution_logs(tenant, &id)
            .await?
            .iter()
            .map(log_row)
            .collect()
    };
    let files = file_rows(&ui.app, &record);
    let metrics = metric_rows(&record);
    let outputs = record.outputs.as_object().map_or(0, serde_json::Map::len) + files.len();
    let tabs = tab_links(&tab, outputs, metrics.len());
    let values = context! {
        title => format!("Execution {id}"),
        nav => "namespaces",
        execution => context! {
            id => record.id,
            namespace => record.namespace,
            flow => record.flow_id,
            revision => record.flow_revision,
            state => record.state,
            created => when(record.created_at),
            duration => record.ended_at.map(|end| super::page::human_duration((end - record.created_at).num_milliseconds())),
            inputs => pretty(&record.inputs),
            outputs => pretty(&record.outputs),
        },
        tasks => task_rows(&record),
        timeline => timeline(&record, Utc::now()),
        metrics,
        tabs,
        tab,
        files,
        logs,
        running,
        follow => format!("/ui/executions/{id}/follow"),
        kill => format!("/ui/executions/{id}/kill"),
        download => format!("/ui/executions/{id}/logs"),
        resume,
        task_ids => task_ids(&record),
        restartable => kestrel_store::keeps_inputs(&record.state) && !running,
        restart => format!("/ui/executions/{id}/restart"),
        replay => format!("/ui/executions/{id}/replay"),
    };
    Ok(page::render(&current, "execution.html", values))
}

/// The execution's files with their sizes and preview links, once it ended (none before, or
/// when the server keeps no files).
fn file_rows(app: &AppState, record: &ExecutionRecord) -> Vec<Value> {
    let Ok(files) = crate::files::ended_files(app, record) else {
        return Vec::new();
    };
    let listed = files.storage().list(files.execution_prefix());
    let uris = listed.unwrap_or_else(|error| {
        crate::log::error(&format!("the files of execution {}: {error}", record.id));
        Vec::new()
    });
    let prefix = format!("{}/", files.execution_prefix());
    uris.iter()
        .map(|uri| {
            let text = uri.to_string();
            context! {
                path => text.strip_prefix(&prefix).unwrap_or(&text),
                size => files.storage().size(uri).ok(),
                preview => format!("/ui/executions/{}/file?path={}", record.id, query_value(&text)),
            }
        })
        .collect()
}

/// `text` encoded for a query string's value.
fn query_value(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// How much of a file its preview shows.
const PREVIEW: u64 = 64 * 1024;

/// A file of an ended execution: its first [`PREVIEW`] bytes as text, and a download link.
pub(super) async fn file(
    State(ui): State<Ui>,
    current: Current,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, UiError> {
    let (record, files, uri) = located_file(&ui, &current, &id, &params).await?;
    let size = files.storage().size(&uri).map_err(crate::files::served)?;
    let mut head = Vec::new();
    files
        .storage()
        .open(&uri)
        .map_err(crate::files::served)?
        .take(PREVIEW)
        .read_to_end(&mut head)
        .map_err(|error| AppError::internal("previewing a file", error))?;
    let text = uri.to_string();
    let values = context! {
        title => format!("File {}", uri.file_name()),
        nav => "namespaces",
        namespace => record.namespace,
        execution => record.id,
        name => uri.file_name(),
        uri => text,
        size,
        cut => size > PREVIEW,
        shown => PREVIEW,
        content => String::from_utf8_lossy(&head),
        download => format!("/ui/executions/{id}/file/download?path={}", query_value(&text)),
    };
    Ok(page::render(&current, "file.html", values))
}

/// A file of an ended execution, as an attachment.
pub(super) async fn download(
    State(ui): State<Ui>,
    current: Current,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, UiError> {
    let (_, files, uri) = located_file(&ui, &current, &id, &params).await?;
    Ok(crate::files::attachment(&files, &uri)?)
}

/// The ended execution `id` and its file `?path=` names, if the caller reaches it.
async fn located_file(
    ui: &Ui,
    current: &Current,
    id: &str,
    params: &Params,
) -> Result<(ExecutionRecord, ExecutionFiles, StorageUri), UiError> {
    let (record, _) = find(ui, current, id).await?;
    let (files, uri) = crate::files::located(&ui.app, &record, params.get("path"))?;
    Ok((record, files, uri))
}

fn log_event(log: &LogRecord) -> Result<Event, Infallible> {
    Ok(Event::default().event("log").data(log_row(log).to_string()))
}

/// A running execution's receiver of events, and the execution.
type Following = (Receiver<LiveEvent>, Arc<Live>);

/// The next entry of a running execution; `None` once it ended.
async fn next_entry(
    (mut receiver, live): Following,
) -> Option<(Result<Event, Infallible>, Following)> {
    loop {
        let event = tokio::select! {
            // Entries come before the end: those sent are all read first.
            biased;
            event = receiver.recv() => event,
            _ = live.ended() => return None,
        };
        match event {
            Ok(LiveEvent::Log(log)) => return Some((log_event(&log), (receiver, live))),
            // A follower too slow for the buffer misses entries; the page shows them all
            // once the execution ended.
            Err(RecvError::Lagged(_)) => {}
            Ok(LiveEvent::End) | Err(RecvError::Closed) => return None,
        }
    }
}

/// Every log entry so far, then each new one while the execution runs, then an `end` event
/// (the page reloads to show the final states).
pub(super) async fn follow(
    State(ui): State<Ui>,
    current: Current,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, UiError> {
    let (_, live) = find(&ui, &current, &id).await?;
    let entries = match live {
        Some(live) => {
            let (past, receiver) = live.follow();
            let past: Vec<_> = past.iter().map(log_event).collect();
            let coming = stream::unfold((receiver, live), next_entry);
            stream::iter(past).chain(coming).boxed()
        }
        None => stored_entries(ui.app.clone(), id),
    };
    let end = stream::once(async { Ok(Event::default().event("end").data("ended")) });
    Ok(Sse::new(entries.chain(end)).keep_alive(KeepAlive::default()))
}

/// The entries of an execution not running here, once it ended (the store has none before).
fn stored_entries(app: AppState, id: String) -> BoxStream<'static, Result<Event, Infallible>> {
    let ended = async move {
        let events: Vec<_> = match executor::ended_with_logs(&app, &id).await {
            Ok((_, logs)) => logs.iter().map(log_event).collect(),
            // Gone meanwhile (purged): the page reloads and says so.
            Err(_) => Vec::new(),
        };
        stream::iter(events)
    };
    stream::once(ended).flatten().boxed()
}

/// Restarts an ended execution (see [`executor::restart`]) and shows it.
pub(super) async fn restart(
    State(ui): State<Ui>,
    current: Current,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let (record, _) = find(&ui, &current, &id).await?;
    let notice = match executor::restart(&ui.app, &record).await {
        Ok(_) => Notice::done(format!(
            "Execution {id} restarts: its failed task runs run again."
        )),
        Err(
            refused
            @ (crate::error::AppError::Conflict(_) | crate::error::AppError::Invalid { .. }),
        ) => Notice::error(refused.to_string()),
        Err(error) => return Err(error.into()),
    };
    Ok(back_with(&ui, &current, &id, notice))
}

/// The replay form: the task run to run again from (none: from the start).
#[derive(Deserialize)]
pub(super) struct ReplayForm {
    #[serde(default)]
    task_run: String,
}

/// Replays an ended execution as a new one (see [`executor::replay`]) and shows the new one.
pub(super) async fn replay(
    State(ui): State<Ui>,
    current: Current,
    Path(id): Path<String>,
    Form(form): Form<ReplayForm>,
) -> Result<Response, UiError> {
    let (record, _) = find(&ui, &current, &id).await?;
    let from = Some(form.task_run.as_str()).filter(|run| !run.is_empty());
    let who = current.caller.actor().to_string();
    match executor::replay(&ui.app, &record, from, &who).await {
        Ok(created) => {
            let notice = format!("Execution {} replays execution {id}.", created.id);
            Ok(back_with(&ui, &current, &created.id, Notice::done(notice)))
        }
        Err(
            refused
            @ (crate::error::AppError::Conflict(_) | crate::error::AppError::Invalid { .. }),
        ) => Ok(back_with(
            &ui,
            &current,
            &id,
            Notice::error(refused.to_string()),
        )),
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn kill(
    State(ui): State<Ui>,
    current: Current,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let (record, _) = find(&ui, &current, &id).await?;
    let notice = match executor::kill(&ui.app, &record).await {
        Ok(()) => Notice::done(format!("Execution {id} is being killed.")),
        Err(refused @ crate::error::AppError::Conflict(_)) => Notice::error(refused.to_string()),
        Err(error) => return Err(error.into()),
    };
    Ok(back_with(&ui, &current, &id, notice))
}

/// Back to the execution's page, with `notice` shown there.
fn back_with(ui: &Ui, current: &Current, id: &str, notice: Notice) -> Response {
    ui.sessions.notify(&current.id, notice);
    Redirect::to(&format!("/ui/executions/{id}")).into_response()
}
