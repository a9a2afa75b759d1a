//! Flows as the server holds them: parsed once per revision and cached, their YAML shown as
//! JSON in Kestra's shape.

use crate::error::AppError;
use kestrel_flow::{Flow, Violation};
use kestrel_store::{FlowRecord, FlowStore};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A flow revision, parsed.
#[derive(Debug)]
pub(crate) struct LoadedFlow {
    pub(crate) record: FlowRecord,
    pub(crate) flow: Flow,
}

/// A violation as the API shows it.
pub(crate) fn violation_json(violation: &Violation) -> Value {
    json!({"message": violation.message, "line": violation.line, "column": violation.column})
}

/// 422 for a flow that breaks the rules, every violation listed.
pub(crate) fn invalid(violations: &[Violation]) -> AppError {
    let lines: Vec<String> = violations.iter().map(ToString::to_string).collect();
    AppError::Invalid {
        message: format!("Invalid flow: {}", lines.join("; ")),
        violations: violations.iter().map(violation_json).collect(),
    }
}

/// The YAML source as a JSON object (the flow as written), or an empty one.
pub(crate) fn source_json(source: &str) -> Map<String, Value> {
    serde_yaml_ng::from_str::<Value>(source)
        .ok()
        .and_then(|v| match v {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default()
}

/// A flow as Kestra's API shows it: its properties as written, then `revision`, `disabled`,
/// `deleted`, `draft` and `source`.
pub(crate) fn flow_json(record: &FlowRecord) -> Value {
    let mut map = source_json(&record.source);
    let disabled = map
        .get("disabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    map.insert("id".into(), json!(record.id));
    map.insert("namespace".into(), json!(record.namespace));
    map.insert("revision".into(), json!(record.revision));
    map.insert("disabled".into(), json!(disabled));
    map.insert("deleted".into(), json!(record.deleted));
    map.insert("draft".into(), json!(false));
    map.insert(
        "updated".into(),
        json!(crate::view::date(record.updated_at)),
    );
    map.insert("source".into(), json!(record.source));
    Value::Object(map)
}

/// How long a latest revision read from the store is used before it is read again: a flow
/// saved through another node (several servers on one database) runs here within this bound.
const LATEST_FRESH_FOR: Duration = Duration::from_secs(1);

/// How many revisions a worker keeps parsed; beyond it, the cache starts afresh.
const REVISIONS_KEPT: usize = 1024;

/// The key of a flow revision: namespace, id, revision.
type RevisionKey = (String, String, u64);

/// A latest revision and when it was read.
type ReadAt = (Instant, Arc<LoadedFlow>);

/// Parsed flows: the latest revision of each flow (read again after [`LATEST_FRESH_FOR`],
/// forgotten at once by every change made here), and the revisions workers run (a revision
/// never changes, so it is parsed once).
#[derive(Default)]
pub(crate) struct FlowCache {
    latest: Mutex<HashMap<(String, String), ReadAt>>,
    revisions: Mutex<HashMap<RevisionKey, Arc<LoadedFlow>>>,
}

/// Entries are whole values: a panic elsewhere cannot leave one half-written.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FlowCache {
    /// The latest live revision of a flow, parsed; `None` when there is none.
    pub(crate) async fn latest(
        &self,
        store: &dyn FlowStore,
        tenant: &str,
        namespace: &str,
        id: &str,
    ) -> Result<Option<Arc<LoadedFlow>>, AppError> {
        let key = (namespace.to_owned(), id.to_owned());
        if let Some((read_at, found)) = locked(&self.latest).get(&key)
            && read_at.elapsed() < LATEST_FRESH_FOR
        {
            return Ok(Some(Arc::clone(found)));
        }
        let read_at = Instant::now();
        let Some(loaded) = load(store, tenant, namespace, id, None).await? else {
            locked(&self.latest).remove(&key);
            return Ok(None);
        };
        let loaded = Arc::new(loaded);
        locked(&self.latest).insert(key, (read_at, Arc::clone(&loaded)));
        Ok(Some(loaded))
    }

    /// Revision `revision` of a flow, parsed (a deleted one included, as executions queued
    /// before the deletion still run it); `None` when there is none.
    pub(crate) async fn revision(
        &self,
        store: &dyn FlowStore,
        tenant: &str,
        namespace: &str,
        id: &str,
        revision: u64,
    ) -> Result<Option<Arc<LoadedFlow>>, AppError> {
        let key = (namespace.to_owned(), id.to_owned(), revision);
        if let Some(found) = locked(&self.revisions).get(&key) {
            return Ok(Some(Arc::clone(found)));
        }
        let Some(loaded) = load(store, tenant, namespace, id, Some(revision)).await? else {
            return Ok(None);
        };
        let loaded = Arc::new(loaded);
        let mut revisions = locked(&self.revisions);
        if revisions.len() >= REVISIONS_KEPT {
            revisions.clear();
        }
        revisions.insert(key, Arc::clone(&loaded));
        Ok(Some(loaded))
    }

    /// Forgets a flow's latest revision after a change.
    pub(crate) fn forget(&self, namespace: &str, id: &str) {
        locked(&self.latest).remove(&(namespace.to_owned(), id.to_owned()));
    }
}

/// The stored flows as one background task sees them, read again whole from time to time:
/// what each revision gives (`T`, or nothing) is computed once per revision.
pub(crate) struct StoredFlows<T> {
    known: HashMap<(String, String), (u64, Option<T>)>,
}

impl<T> Default for StoredFlows<T> {
    fn default() -> Self {
        Self {
            known: HashMap::new(),
        }
    }
}

impl<T> StoredFlows<T> {
    /// Reads the tenant's flows again; a revision not seen before gives `from(record)`.
    pub(crate) async fn refresh(
        &mut self,
        store: &dyn FlowStore,
        tenant: &str,
        from: impl Fn(FlowRecord) -> Option<T>,
    ) -> Result<(), AppError> {
        let records = store.list_flows(tenant, None).await?;
        let mut old = std::mem::take(&mut self.known);
        for record in records {
            let address = (record.namespace.clone(), record.id.clone());
            let known = match old.remove(&address) {
                Some(known) if known.0 == record.revision => known,
                _ => (record.revision, from(record)),
            };
            self.known.insert(address, known);
        }
        Ok(())
    }

    /// What the flows' revisions gave.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.known.values().filter_map(|(_, given)| given.as_ref())
    }

    /// Whether the flow `namespace`.`id` is stored.
    pub(crate) fn contains(&self, namespace: &str, id: &str) -> bool {
        self.known
            .contains_key(&(namespace.to_owned(), id.to_owned()))
    }
}

/// A revision of a flow (the latest live one for `None`), parsed.
async fn load(
    store: &dyn FlowStore,
    tenant: &str,
    namespace: &str,
    id: &str,
    revision: Option<u64>,
) -> Result<Option<LoadedFlow>, AppError> {
    let Some(record) = store.get_flow(tenant, namespace, id, revision).await? else {
        return Ok(None);
    };
    // Stored flows were valid when saved; one that no longer parses (a newer kestrel saved
    // it, or the rules changed) cannot run.
    let flow = kestrel_flow::parse_flow(&record.source).map_err(|violations| {
        AppError::Conflict(format!(
            "flow {namespace}.{id} revision {} no longer validates: {}",
            record.revision,
            violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    Ok(Some(LoadedFlow { record, flow }))
}

/// [`kestrel_engine::check_flow`] of each of `sources`, off the runtime's threads: a large or
/// hostile flow takes its time on a blocking thread, never on one that answers other requests
/// (`/health` included).
pub(crate) async fn check_all(sources: Vec<String>) -> Vec<Result<Flow, Vec<Violation>>> {
    let count = sources.len();
    let checked = tokio::task::spawn_blocking(move || {
        sources
            .iter()
            .map(|source| kestrel_engine::check_flow(source))
            .collect()
    })
    .await;
    checked.unwrap_or_else(|_| {
        let failed = Violation {
            message: "the flow could not be checked".to_owned(),
            line: None,
            column: None,
        };
        (0..count).map(|_| Err(vec![failed.clone()])).collect()
    })
}

/// [`check_all`] of one source.
pub(crate) async fn check(source: &str) -> Result<Flow, Vec<Violation>> {
    check_all(vec![source.to_owned()])
        .await
        .pop()
        .unwrap_or_else(|| Err(Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_WEBHOOK: &str = "id: hook\nnamespace: dev\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\ntriggers:\n  - id: webhook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: \"{{ secret('WEBHOOK_KEY') }}\"\n";

    #[test]
    fn the_flow_json_has_kestras_fields() {
        let record = FlowRecord {
            tenant: "main".into(),
            namespace: "dev".into(),
            id: "hook".into(),
            revision: 3,
            source: WITH_WEBHOOK.into(),
            deleted: false,
            updated_at: chrono::DateTime::UNIX_EPOCH,
        };
        let json = flow_json(&record);
        assert_eq!(json["revision"], 3);
        assert_eq!(json["disabled"], false);
        assert_eq!(json["draft"], false);
        assert_eq!(json["tasks"][0]["id"], "log");
        assert_eq!(json["source"], WITH_WEBHOOK);
    }
}
