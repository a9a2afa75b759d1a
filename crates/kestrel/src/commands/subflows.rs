//! The subflows of `kestrel run`: flows found in the flow file's folder and in each `--flows`
//! folder, run in this process when a Subflow task asks for them by namespace and id.
//!
//! `kestrel run` waits for every execution it starts: a child the task does not wait for
//! (`wait: false`) still runs to its end before the task does, its outputs holding only its
//! `executionId`, as Kestra's do.

use crate::commands::leftovers::RunClaim;
use crate::error::CliError;
use crate::output::warn;
use async_trait::async_trait;
use kestrel_engine::{
    CancelToken, Engine, Execution, Host, Inputs, Listener, Origin, SUBFLOW_MAX_DEPTH, SubflowEnd,
    SubflowLauncher, SubflowRequest, TaskError, too_deep,
};
use kestrel_flow::Flow;
use kestrel_storage::{ExecutionFiles, Storage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The flows of the folders `kestrel run` looks in, by namespace and id.
#[derive(Default)]
pub(crate) struct Catalog {
    flows: BTreeMap<(String, String), Found>,
    folders: Vec<PathBuf>,
}

/// What a namespace and id name in the folders.
enum Found {
    /// The flow, and the file it is in.
    One(Box<Flow>, PathBuf),
    /// Several files define it: which, for the error.
    Several(Vec<PathBuf>),
}

impl Catalog {
    /// Every valid flow of `folders` (the `*.yml` and `*.yaml` files right in them); a file
    /// that is not a valid flow is skipped with a warning naming it. The same folder given
    /// twice is read once.
    pub(crate) fn read(folders: &[PathBuf]) -> Result<Self, CliError> {
        let mut catalog = Self::default();
        let mut seen = Vec::new();
        for folder in folders {
            let canonical = folder.canonicalize().map_err(|error| {
                CliError::usage(format!("cannot read the folder {}", folder.display()))
                    .caused_by(error)
            })?;
            if seen.contains(&canonical) {
                continue;
            }
            seen.push(canonical);
            catalog.read_folder(folder)?;
            catalog.folders.push(folder.clone());
        }
        Ok(catalog)
    }

    fn read_folder(&mut self, folder: &Path) -> Result<(), CliError> {
        let entries = std::fs::read_dir(folder).map_err(|error| {
            CliError::usage(format!("cannot read the folder {}", folder.display())).caused_by(error)
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.is_file()
                    && path
                        .extension()
                        .is_some_and(|ext| ext == "yml" || ext == "yaml")
            })
            .collect();
        paths.sort();
        for path in paths {
            let Ok(source) = std::fs::read_to_string(&path) else {
                warn(&format!("{}: cannot be read; skipped", path.display()));
                continue;
            };
            match kestrel_engine::check_flow(&source) {
                Ok(flow) => self.add(flow, path),
                Err(violations) => warn(&format!(
                    "{}: not a valid flow ({} violation(s)); skipped",
                    path.display(),
                    violations.len()
                )),
            }
        }
        Ok(())
    }

    fn add(&mut self, flow: Flow, path: PathBuf) {
        let key = (flow.namespace.clone(), flow.id.clone());
        let found = match self.flows.remove(&key) {
            None => Found::One(Box::new(flow), path),
            Some(Found::One(_, first)) => Found::Several(vec![first, path]),
            Some(Found::Several(mut paths)) => {
                paths.push(path);
                Found::Several(paths)
            }
        };
        self.flows.insert(key, found);
    }

    /// The flow `namespace`.`flow_id`, or why not.
    fn find(&self, namespace: &str, flow_id: &str) -> Result<&Flow, TaskError> {
        let key = (namespace.to_owned(), flow_id.to_owned());
        match self.flows.get(&key) {
            Some(Found::One(flow, _)) => Ok(flow),
            Some(Found::Several(paths)) => {
                let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                Err(TaskError::new(format!(
                    "Flow '{namespace}'.'{flow_id}' is defined more than once, in {}",
                    files.join(", ")
                )))
            }
            None => {
                let folders: Vec<String> = self
                    .folders
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                Err(TaskError::new(format!(
                    "Unable to find flow '{namespace}'.'{flow_id}' in {} (kestrel run looks in \
                     the flow file's folder and in each --flows folder)",
                    folders.join(", ")
                )))
            }
        }
    }
}

/// Runs children of the flows of a [`Catalog`] in this process, each with a launcher one
/// level deeper for its own children; every child execution ends up in `children`.
pub(crate) struct FolderLauncher<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) catalog: &'a Catalog,
    pub(crate) listener: &'a dyn Listener,
    pub(crate) cancel: &'a CancelToken,
    pub(crate) triggered_by: &'a str,
    /// How many subflows deep the executions this launcher starts are (1: children of the
    /// flow `kestrel run` was given).
    pub(crate) depth: usize,
    /// Every child execution, in the order they ended.
    pub(crate) children: &'a Mutex<Vec<Execution>>,
    /// The run's claim, which lists every child's files for a clean-up should the run die.
    pub(crate) claim: &'a RunClaim,
    /// The internal storage the children's files go to.
    pub(crate) storage: &'a Arc<dyn Storage>,
}

#[async_trait]
impl SubflowLauncher for FolderLauncher<'_> {
    async fn launch(&self, request: SubflowRequest) -> Result<SubflowEnd, TaskError> {
        let (namespace, flow_id) = (&request.namespace, &request.flow_id);
        if self.depth > SUBFLOW_MAX_DEPTH {
            return Err(too_deep(namespace, flow_id));
        }
        let flow = self.catalog.find(namespace, flow_id)?;
        if let Some(wanted) = request.revision
            && flow.revision != Some(wanted)
        {
            return Err(TaskError::new(format!(
                "Unable to find flow '{namespace}'.'{flow_id}' with revision '{wanted}': kestrel \
                 run has each flow file as it is (give the file `revision: {wanted}`, or no \
                 revision to the task)"
            )));
        }
        if flow.disabled {
            return Err(TaskError::new(format!(
                "Cannot execute flow '{namespace}'.'{flow_id}', which is disabled"
            )));
        }
        let mut inputs = Inputs::parse(&flow.inputs, request.inputs)
            .map_err(|error| TaskError::new(format!("Flow '{namespace}'.'{flow_id}': {error}")))?;
        for (name, value) in request.registered {
            inputs.register_secret(&name, value);
        }
        let id = kestrel_engine::new_id();
        if let Ok(files) = ExecutionFiles::new(Arc::clone(self.storage), namespace, flow_id, &id) {
            self.claim.record(&files);
        }
        let origin = Origin {
            id: Some(id),
            trigger: Some(request.trigger),
            labels: request.labels,
            ..Origin::by(self.triggered_by)
        };
        let deeper = FolderLauncher {
            depth: self.depth + 1,
            ..*self
        };
        let host = Host {
            subflows: Some(&deeper),
            resumes: None,
        };
        let execution = self
            .engine
            .run_hosted(flow, inputs, origin, self.listener, self.cancel, host)
            .await;
        let end = if request.wait {
            SubflowEnd::ended(&execution)
        } else {
            SubflowEnd::started(execution.id.clone())
        };
        self.children
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(execution);
        Ok(end)
    }
}
