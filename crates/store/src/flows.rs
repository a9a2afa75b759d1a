//! The server's flows: YAML sources kept with every revision.

use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// One revision of a flow as stored: its address, its source as written, and whether this
/// revision marks the flow deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    /// The tenant (`main`).
    pub tenant: String,
    /// The flow's namespace.
    pub namespace: String,
    /// The flow's id.
    pub id: String,
    /// Numbered from 1; every change (a new source, a deletion) adds one.
    pub revision: u64,
    /// The YAML source.
    pub source: String,
    /// Whether this revision deleted the flow.
    pub deleted: bool,
    /// When this revision was saved.
    pub updated_at: DateTime<Utc>,
}

/// Where flows live: every revision kept, the latest one answering.
///
/// The protocol: `create_flow` saves revision 1 (or, for a flow deleted earlier, the next
/// revision) and fails with [`StoreError::Conflict`] while a live flow has that address;
/// `update_flow` saves the next revision only when the source changed; `delete_flow` saves a
/// revision marked deleted. Readers see the latest revision unless they ask for another.
#[async_trait]
pub trait FlowStore: Send + Sync {
    /// Saves a new flow; [`StoreError::Conflict`] when a live one has that address.
    async fn create_flow(
        &self,
        tenant: &str,
        namespace: &str,
        id: &str,
        source: &str,
    ) -> Result<FlowRecord, StoreError>;

    /// Saves `source` as the next revision of a live flow (the same source keeps the
    /// revision); `None` when there is no live flow to update.
    async fn update_flow(
        &self,
        tenant: &str,
        namespace: &str,
        id: &str,
        source: &str,
    ) -> Result<Option<FlowRecord>, StoreError>;

    /// The latest live revision (`revision: None`), or the given revision even if it is a
    /// deletion; `None` when absent.
    async fn get_flow(
        &self,
        tenant: &str,
        namespace: &str,
        id: &str,
        revision: Option<u64>,
    ) -> Result<Option<FlowRecord>, StoreError>;

    /// Marks a live flow deleted (a new revision); `false` when there was none.
    async fn delete_flow(
        &self,
        tenant: &str,
        namespace: &str,
        id: &str,
    ) -> Result<bool, StoreError>;

    /// The latest revision of every live flow in `namespace` and its children (every
    /// namespace for `None`), sorted by namespace then id.
    async fn list_flows(
        &self,
        tenant: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<FlowRecord>, StoreError>;
}
