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

pub(super) async fn list(State(ui): State<Ui>, current: Current) -> Result<Response, UiError> {
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
    let rows: Vec<Value> = names
        .iter()
        .filter(|ns| current.caller.reaches(ns))
        .map(|ns| {
            context! {
                name => ns,
                depth => ns.matches('.').count(),
                flows => counts.get(ns.as_str()).copied().unwrap_or(0),
                secrets => with_secrets.contains(ns),
            }
        })
        .collect();
    let values = context! { title => "Namespaces", nav => "namespaces", namespaces => rows };
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
) -> Result<Response, UiError> {
    checked(&current, &namespace)?;
    let tenant = &ui.app.options().tenant;
    let flows = ui
        .app
        .store()
        .list_flows(tenant, Some(&namespace))
        .await?
        .into_iter()
        .filter(|f| f.namespace == namespace)
        .collect::<Vec<_>>();
    let mut rows = Vec::with_capacity(flows.len());
    for f in flows {
        let tasks = crate::flows::source_json(&f.source)
            .get("tasks")
            .and_then(|t| t.as_array().map(Vec::len))
            .unwrap_or(0);
        let latest = Shown {
            flow_id: Some(&f.id),
            state: None,
            page: 1,
            size: 1,
        };
        let (last, _) = executions_of(&ui.app, &current, Some(&namespace), &latest).await?;
        rows.push(context! {
            id => f.id, revision => f.revision, updated => when(f.updated_at), tasks,
            last => last.into_iter().next(),
        });
    }
    let flows = rows;
    let values = context! { flows, ..tab_values(&namespace, "Flows") };
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
}

/// Which executions a list shows: of one flow, in one state, which page.
pub(super) struct Shown<'a> {
    pub(super) flow_id: Option<&'a str>,
    pub(super) state: Option<&'a str>,
    pub(super) page: u32,
    pub(super) size: u32,
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
        page: shown.page,
        size: shown.size,
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
    let shown = Shown {
        flow_id: None,
        state,
        page: number,
        size: EXECUTIONS_PER_PAGE,
    };
    let (rows, total) = executions_of(&ui.app, current, namespace, &shown).await?;
    let shown_before = u64::from(number - 1) * u64::from(EXECUTIONS_PER_PAGE);
    Ok(context! {
        executions => rows,
        total,
        states => STATES,
        state,
        page => number,
        previous => (number > 1).then(|| number - 1),
        next => (shown_before + u64::from(EXECUTIONS_PER_PAGE) < total).then_some(number + 1),
    })
}
