//! The Namespaces list (every namespace a flow or a secret names, with its ancestors, as far
//! as the caller reaches) and a namespace's Flows and Executions tabs.

use super::Ui;
use super::page::{self, UiError, when};
use super::session::Current;
use crate::extract::Path;
use crate::namespaces::{known, with_ancestors};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::response::{IntoResponse as _, Redirect, Response};
use kestrel_store::{ExecutionQuery, ExecutionRecord, validate_namespace};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Executions per page of the Executions tab.
pub(super) const EXECUTIONS_PER_PAGE: u32 = 25;

/// Rows per page of the flows and namespaces lists.
const ROWS_PER_PAGE: usize = 50;

/// A search of a list (its text, anywhere in a name, any case) and the page shown.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Searched {
    #[serde(default)]
    q: String,
    page: Option<usize>,
}

impl Searched {
    fn matches(&self, name: &str) -> bool {
        let text = self.q.trim().to_lowercase();
        text.is_empty() || name.to_lowercase().contains(&text)
    }

    /// The rows of the page asked for, and the template's values for the search and pages.
    fn page_of<T>(&self, rows: Vec<T>) -> (Vec<T>, Value) {
        let total = rows.len();
        let last = total.div_ceil(ROWS_PER_PAGE).max(1);
        let page = self.page.unwrap_or(1).clamp(1, last);
        let shown = rows
            .into_iter()
            .skip((page - 1) * ROWS_PER_PAGE)
            .take(ROWS_PER_PAGE)
            .collect();
        let q = self.q.trim();
        let values = context! {
            q, total, page,
            previous => (page > 1).then(|| page - 1),
            next => (page < last).then_some(page + 1),
            search => serde_urlencoded::to_string([("q", q)]).unwrap_or_default(),
        };
        (shown, values)
    }
}

pub(super) async fn list(
    State(ui): State<Ui>,
    current: Current,
    Query(searched): Query<Searched>,
) -> Result<Response, UiError> {
    let tenant = &ui.app.options().tenant;
    let store = ui.app.store();
    let flows = store.list_flows(tenant, None).await?;
    let with_secrets = ui.app.secrets().list_namespaces(tenant).await?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for flow in &flows {
        *counts.entry(flow.namespace.as_str()).or_default() += 1;
    }
    let names = known(
        flows
            .iter()
            .map(|f| f.namespace.as_str())
            .chain(with_secrets.iter().map(String::as_str)),
    );
    let reached: Vec<&String> = names
        .iter()
        .filter(|ns| current.caller.reaches(ns) && searched.matches(ns))
        .collect();
    let (reached, pages) = searched.page_of(reached);
    let rows: Vec<Value> = reached
        .into_iter()
        .map(|ns| {
            context! {
                name => ns,
                depth => ns.matches('.').count(),
                flows => counts.get(ns.as_str()).copied().unwrap_or(0),
                secrets => with_secrets.contains(ns),
            }
        })
        .collect();
    let values =
        context! { title => "Namespaces", nav => "namespaces", namespaces => rows, ..pages };
    Ok(page::render(&current, "namespaces.html", values))
}

#[derive(Debug, Deserialize)]
pub(super) struct Open {
    #[serde(default)]
    name: String,
}

/// The "Open a namespace" form: any valid name, existing or not (a namespace exists once a
/// flow or a secret names it).
pub(super) async fn open(current: Current, Query(open): Query<Open>) -> Result<Response, UiError> {
    let namespace = open.name.trim();
    checked(&current, namespace)?;
    Ok(Redirect::to(&format!("/ui/namespaces/{namespace}")).into_response())
}

pub(super) async fn home(
    current: Current,
    Path(namespace): Path<String>,
) -> Result<Response, UiError> {
    checked(&current, &namespace)?;
    Ok(Redirect::to(&format!("/ui/namespaces/{namespace}/flows")).into_response())
}

/// 422 for a name that breaks the rules, 403 outside the caller's namespaces.
pub(super) fn checked(current: &Current, namespace: &str) -> Result<(), UiError> {
    validate_namespace(namespace)?;
    current.caller.require_namespace(namespace)?;
    Ok(())
}

/// What the tabs of a namespace page show: the namespace, its ancestors and the tab.
pub(super) fn tab_values(namespace: &str, tab: &str) -> Value {
    let mut ancestors: Vec<&str> = with_ancestors(namespace).skip(1).collect();
    ancestors.reverse();
    context! {
        title => format!("{namespace} · {tab}"),
        nav => "namespaces",
        namespace,
        ancestors,
        tab,
    }
}

pub(super) async fn flows(
    State(ui): State<Ui>,
    current: Current,
    Path(namespace): Path<String>,
    Query(searched): Query<Searched>,
) -> Result<Response, UiError> {
    checked(&current, &namespace)?;
    let tenant = &ui.app.options().tenant;
    let flows = ui
        .app
        .store()
        .list_flows(tenant, Some(&namespace))
        .await?
        .into_iter()
        .filter(|f| f.namespace == namespace && searched.matches(&f.id))
        .collect::<Vec<_>>();
    let (flows, pages) = searched.page_of(flows);
    let mut rows = Vec::with_capacity(flows.len());
    for f in flows {
        let tasks = crate::flows::source_json(&f.source)
            .get("tasks")
            .and_then(|t| t.as_array().map(Vec::len))
            .unwrap_or(0);
        let latest = Shown {
            flow_id: Some(&f.id),
            page: 1,
            size: 1,
            ..Shown::default()
        };
        let (last, _) = executions_of(&ui.app, &current, Some(&namespace), &latest).await?;
        rows.push(context! {
            id => f.id, revision => f.revision, updated => when(f.updated_at), tasks,
            last => last.into_iter().next(),
        });
    }
    let flows = rows;
    let listing = context! { ..pages, ..tab_values(&namespace, "Flows") };
    let values = context! { flows, ..listing };
    Ok(page::render(&current, "flows.html", values))
}

/// An execution as a row of a table.
#[derive(Debug, Serialize)]
pub(super) struct ExecutionRow {
    id: String,
    namespace: String,
    flow: String,
    state: String,
    created: String,
    duration: Option<String>,
}

impl ExecutionRow {
    pub(super) fn of(record: &ExecutionRecord) -> Self {
        Self {
            id: record.id.clone(),
            namespace: record.namespace.clone(),
            flow: record.flow_id.clone(),
            state: record.state.clone(),
            created: when(record.created_at),
            duration: record.ended_at.map(|end| {
                super::page::human_duration((end - record.created_at).num_milliseconds())
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Paged {
    page: Option<u32>,
    /// Only executions in this state.
    state: Option<String>,
    /// Only executions created within this period before now ([`PERIODS`]).
    #[serde(default)]
    created: String,
    /// Only executions with these labels: `key:value`, separated by spaces.
    #[serde(default)]
    labels: String,
}

/// The periods the executions list filters by: name, label, length.
const PERIODS: [(&str, &str, i64); 4] = [
    ("hour", "the last hour", 3_600),
    ("day", "the last 24 hours", 86_400),
    ("week", "the last 7 days", 604_800),
    ("month", "the last 30 days", 2_592_000),
];

/// Which executions a list shows: of one flow, in one state, created since when, with which
/// labels, which page.
#[derive(Default)]
pub(super) struct Shown<'a> {
    pub(super) flow_id: Option<&'a str>,
    pub(super) state: Option<&'a str>,
    pub(super) since: Option<chrono::DateTime<chrono::Utc>>,
    pub(super) labels: Vec<(String, String)>,
    pub(super) page: u32,
    pub(super) size: u32,
}

/// The `key:value` labels of the filter's text; an error naming a word that is not one.
fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split_whitespace()
        .map(|word| match word.split_once(':') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(format!("Labels are written key:value, not '{word}'.")),
        })
        .collect()
}

/// The states the executions tab filters by.
const STATES: [&str; 10] = [
    "CREATED",
    "QUEUED",
    "RUNNING",
    "PAUSED",
    "SUCCESS",
    "WARNING",
    "FAILED",
    "KILLED",
    "CANCELLED",
    "RETRIED",
];

/// The newest executions of `namespace` and its children (of one flow, with `flow_id`), a
/// page of them, and how many there are.
pub(super) async fn executions_of(
    app: &AppState,
    current: &Current,
    namespace: Option<&str>,
    shown: &Shown<'_>,
) -> Result<(Vec<ExecutionRow>, u64), UiError> {
    let query = ExecutionQuery {
        tenant: app.options().tenant.clone(),
        namespace: namespace.map(str::to_owned),
        flow_id: shown.flow_id.map(str::to_owned),
        state: shown.state.map(str::to_owned),
        within: current.caller.within().to_vec(),
        created_after: shown.since,
        labels: shown.labels.clone(),
        page: shown.page,
        size: shown.size,
        ..ExecutionQuery::default()
    };
    let (found, total) = app.store().search_executions(&query).await?;
    let rows = found
        .iter()
        .map(|stored| match app.0.executor.get(&stored.id) {
            // Running here: as it is now, not as last stored.
            Some(live) => ExecutionRow::of(&live.record()),
            None => ExecutionRow::of(stored),
        })
        .collect();
    Ok((rows, total))
}

pub(super) async fn executions(
    State(ui): State<Ui>,
    current: Current,
    Path(namespace): Path<String>,
    Query(paged): Query<Paged>,
) -> Result<Response, UiError> {
    checked(&current, &namespace)?;
    let listing = execution_listing(&ui, &current, Some(&namespace), &paged).await?;
    let values = context! { ..listing, ..tab_values(&namespace, "Executions") };
    Ok(page::render(&current, "executions.html", values))
}

/// Every execution the caller may see, across namespaces, newest first.
pub(super) async fn all_executions(
    State(ui): State<Ui>,
    current: Current,
    Query(paged): Query<Paged>,
) -> Result<Response, UiError> {
    let listing = execution_listing(&ui, &current, None, &paged).await?;
    let values = context! {
        title => "Executions",
        nav => "executions",
        namespace => Option::<String>::None,
        ..listing
    };
    Ok(page::render(&current, "executions.html", values))
}

/// A page of executions (of `namespace` and its children, or of every namespace the caller
/// reaches), in `paged`'s state: the template's values.
async fn execution_listing(
    ui: &Ui,
    current: &Current,
    namespace: Option<&str>,
    paged: &Paged,
) -> Result<Value, UiError> {
    let number = paged.page.unwrap_or(1).max(1);
    let state = paged
        .state
        .as_deref()
        .filter(|state| STATES.contains(state));
    let period = PERIODS.iter().find(|(name, _, _)| *name == paged.created);
    let (labels, error) = match parse_labels(&paged.labels) {
        Ok(labels) => (labels, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    let shown = Shown {
        state,
        since: period
            .map(|(_, _, seconds)| chrono::Utc::now() - chrono::Duration::seconds(*seconds)),
        labels,
        page: number,
        size: EXECUTIONS_PER_PAGE,
        ..Shown::default()
    };
    let (rows, total) = executions_of(&ui.app, current, namespace, &shown).await?;
    let shown_before = u64::from(number - 1) * u64::from(EXECUTIONS_PER_PAGE);
    let kept: Vec<(&str, &str)> = [
        ("state", state.unwrap_or_default()),
        ("created", period.map_or("", |(name, _, _)| name)),
        ("labels", paged.labels.trim()),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .collect();
    Ok(context! {
        executions => rows,
        total,
        states => STATES,
        state,
        periods => PERIODS.iter().map(|(name, label, _)| context! { name, label }).collect::<Vec<_>>(),
        created => period.map(|(name, _, _)| name),
        labels => paged.labels.trim(),
        filtered => !kept.is_empty(),
        filter => serde_urlencoded::to_string(&kept).unwrap_or_default(),
        error,
        page => number,
        previous => (number > 1).then(|| number - 1),
        next => (shown_before + u64::from(EXECUTIONS_PER_PAGE) < total).then_some(number + 1),
    })
}
