//! Flowable task runs: Sequential, Parallel, If, Switch, AllowFailure and ForEach run their
//! children as task runs of their own, listed under the flowable's task run; `errors` run when
//! a child failed; `timeout` kills the children still running.

use crate::attempts::{failed, timeout_message};
use crate::cache::CacheSlot;
use crate::dag::{PlannedDag, plan_dag};
use crate::pause::Unpaused;
use crate::runner::{
    Branch, Frame, OpenRun, PlannedTask, Run, Unrendered, is_truthy, plan, together,
};
use crate::workdir::{Place, SharedDir, WorkDir};
use crate::{CancelToken, State, TaskError};
use kestrel_flow::{CheckFrequency, Flowable, FlowableKind, InputDef, Level, WorkingDirectory};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// A flowable task ready to run: its children planned.
pub(crate) struct PlannedFlowable {
    kind: PlannedKind,
    errors: Vec<PlannedTask>,
}

enum PlannedKind {
    Sequential(Vec<PlannedTask>),
    Parallel {
        tasks: Vec<PlannedTask>,
        concurrent: usize,
    },
    If {
        condition: String,
        then: Vec<PlannedTask>,
        otherwise: Vec<PlannedTask>,
    },
    Switch {
        value: String,
        cases: Vec<(String, Vec<PlannedTask>)>,
        defaults: Vec<PlannedTask>,
    },
    AllowFailure(Vec<PlannedTask>),
    ForEach {
        values: Value,
        limit: usize,
        tasks: Vec<PlannedTask>,
    },
    WaitFor {
        condition: String,
        tasks: Vec<PlannedTask>,
        check: CheckFrequency,
        fail_on_max_reached: bool,
    },
    Pause {
        delay: Option<String>,
        on_resume: Vec<InputDef>,
        tasks: Vec<PlannedTask>,
    },
    Dag(PlannedDag),
    WorkingDirectory {
        tasks: Vec<PlannedTask>,
        spec: Box<WorkingDirectory>,
    },
}

/// The plan of a flowable task and its children.
pub(crate) fn plan_flowable(flowable: &Flowable) -> PlannedFlowable {
    let kind = match &flowable.kind {
        FlowableKind::Sequential { tasks } => PlannedKind::Sequential(plan(tasks)),
        FlowableKind::Parallel { tasks, concurrent } => PlannedKind::Parallel {
            tasks: plan(tasks),
            concurrent: *concurrent,
        },
        FlowableKind::If {
            condition,
            then,
            otherwise,
        } => PlannedKind::If {
            condition: condition.clone(),
            then: plan(then),
            otherwise: plan(otherwise),
        },
        FlowableKind::Switch {
            value,
            cases,
            defaults,
        } => PlannedKind::Switch {
            value: value.clone(),
            cases: cases
                .iter()
                .map(|(key, tasks)| (key.clone(), plan(tasks)))
                .collect(),
            defaults: plan(defaults),
        },
        FlowableKind::AllowFailure { tasks } => PlannedKind::AllowFailure(plan(tasks)),
        FlowableKind::ForEach {
            values,
            concurrency_limit,
            tasks,
        } => PlannedKind::ForEach {
            values: values.clone(),
            limit: *concurrency_limit,
            tasks: plan(tasks),
        },
        FlowableKind::WaitFor {
            condition,
            tasks,
            check,
            fail_on_max_reached,
        } => PlannedKind::WaitFor {
            condition: condition.clone(),
            tasks: plan(tasks),
            check: *check,
            fail_on_max_reached: *fail_on_max_reached,
        },
        FlowableKind::Dag {
            tasks,
            depends_on,
            concurrent,
        } => PlannedKind::Dag(plan_dag(tasks, depends_on, *concurrent)),
        FlowableKind::WorkingDirectory(spec) => PlannedKind::WorkingDirectory {
            tasks: plan(&spec.tasks),
            spec: spec.clone(),
        },
        FlowableKind::Pause {
            delay,
            on_resume,
            tasks,
        } => PlannedKind::Pause {
            delay: delay.clone(),
            on_resume: on_resume.clone(),
            tasks: plan(tasks),
        },
    };
    PlannedFlowable {
        kind,
        errors: plan(&flowable.errors),
    }
}

/// A WaitFor's properties, for its loop.
struct WaitFor<'p> {
    condition: &'p str,
    tasks: &'p [PlannedTask],
    check: CheckFrequency,
    fail_on_max_reached: bool,
}

/// How a flowable's children ended: their state together, and the flowable's outputs (a
/// Switch's `value` and `defaults`).
struct Ended {
    state: State,
    outputs: Map<String, Value>,
}

/// Why a flowable's children did not all run well, beyond their own states.
enum Stopped {
    /// The flowable ran out of time; its children still running were killed.
    TimedOut(Duration),
    /// The flowable could not decide what to run (a condition or values that do not render).
    Broken(String),
    /// The execution was cancelled while the flowable rendered what it needs.
    Killed,
    /// A Pause that nothing can resume: the flowable stays PAUSED.
    Paused,
}

impl From<Unpaused> for Stopped {
    fn from(unpaused: Unpaused) -> Self {
        match unpaused {
            Unpaused::TimedOut(limit) => Self::TimedOut(limit),
            Unpaused::Killed => Self::Killed,
            Unpaused::Stays => Self::Paused,
        }
    }
}

impl From<Unrendered> for Stopped {
    fn from(unrendered: Unrendered) -> Self {
        match unrendered {
            Unrendered::Failed(message) => Self::Broken(message),
            Unrendered::Killed => Self::Killed,
        }
    }
}

impl Run<'_> {
    /// Runs a flowable task run and its children to their end; its final state: the
    /// children's together, FAILED when it timed out or could not render what it needs.
    pub(crate) async fn run_flowable(
        &self,
        planned: &PlannedTask,
        flowable: &PlannedFlowable,
        frame: &Frame,
        cancel: &CancelToken,
    ) -> State {
        let mut open = match self.open_unless_skipped(planned, frame, cancel).await {
            Ok(open) => open,
            Err(state) => return state,
        };
        self.begin_attempt(&mut open);
        let children = frame.under(&open.run);
        let mut limit = planned.common.timeout_duration();
        let mut outputs = Map::new();
        let paused = match &flowable.kind {
            // A restarted Pause was passed before: it does not pause again.
            PlannedKind::Pause { .. } if open.restarted => Ok(open.run.outputs.clone()),
            PlannedKind::Pause {
                delay, on_resume, ..
            } => {
                // A Pause's `timeout` bounds its pause alone, as Kestra's does.
                let timeout = limit.take();
                self.wait_paused(
                    &mut open,
                    frame,
                    delay.as_deref(),
                    on_resume,
                    timeout,
                    cancel,
                )
                .await
            }
            _ => Ok(Map::new()),
        };
        let ran = match paused {
            Ok(resumed) => {
                outputs = resumed;
                self.children(flowable, &open, &children, limit, cancel)
                    .await
            }
            Err(stopped) => Err(stopped),
        };
        let mut state = match ran {
            Ok(Ended {
                state,
                outputs: set,
            }) => {
                outputs.extend(set);
                state
            }
            Err(Stopped::TimedOut(limit)) => {
                self.fail_with(&mut open, &timeout_message(limit));
                State::Failed
            }
            Err(Stopped::Broken(message)) => {
                self.fail_with(&mut open, &message);
                State::Failed
            }
            Err(Stopped::Killed) => State::Killed,
            Err(Stopped::Paused) => State::Paused,
        };
        if state == State::Failed
            && self.sequence(&flowable.errors, &children, cancel).await == State::Killed
        {
            state = State::Killed;
        }
        if state == State::Failed {
            state = match flowable.kind {
                PlannedKind::AllowFailure(_) => State::Warning,
                _ => failed(planned),
            };
        }
        Run::end_attempt(&mut open, state);
        self.close(open, state, outputs, frame)
    }

    /// Pauses a Pause's task run until it is resumed (its `delay` rendered): its outputs.
    async fn wait_paused(
        &self,
        open: &mut OpenRun,
        frame: &Frame,
        delay: Option<&str>,
        on_resume: &[InputDef],
        timeout: Option<Duration>,
        cancel: &CancelToken,
    ) -> Result<Map<String, Value>, Stopped> {
        let delay = match delay {
            None => None,
            Some(template) => {
                let ctx = self.context(open, frame);
                let text = self.render(template, &ctx, cancel).await?;
                let parsed = kestrel_flow::parse_duration(text.trim()).ok_or_else(|| {
                    Stopped::Broken(format!(
                        "delay: must be an ISO-8601 duration such as PT30S, got '{text}'"
                    ))
                })?;
                Some(parsed)
            }
        };
        Ok(self.pause(open, delay, on_resume, timeout, cancel).await?)
    }

    /// Runs the children, killed when `limit` passes.
    async fn children(
        &self,
        flowable: &PlannedFlowable,
        open: &OpenRun,
        frame: &Frame,
        limit: Option<Duration>,
        cancel: &CancelToken,
    ) -> Result<Ended, Stopped> {
        let Some(limit) = limit else {
            return self.branches(&flowable.kind, open, frame, cancel).await;
        };
        // The children listen to a token of their own, so that the timeout stops them
        // alone; the execution's cancel is passed on to it.
        let scoped = CancelToken::new();
        let work = self.branches(&flowable.kind, open, frame, &scoped);
        tokio::pin!(work);
        tokio::select! {
            result = &mut work => result,
            () = cancel.cancelled() => {
                scoped.cancel();
                work.await
            }
            () = tokio::time::sleep(limit) => {
                scoped.cancel();
                // A render the timeout cut short is the timeout's doing, not a kill.
                if let Err(Stopped::Broken(message)) = work.await {
                    return Err(Stopped::Broken(message));
                }
                Err(Stopped::TimedOut(limit))
            }
        }
    }

    /// Runs the children the way the flowable's type says.
    async fn branches(
        &self,
        kind: &PlannedKind,
        open: &OpenRun,
        frame: &Frame,
        cancel: &CancelToken,
    ) -> Result<Ended, Stopped> {
        let state = match kind {
            PlannedKind::Sequential(tasks)
            | PlannedKind::AllowFailure(tasks)
            | PlannedKind::Pause { tasks, .. } => self.sequence(tasks, frame, cancel).await,
            PlannedKind::Parallel { tasks, concurrent } => {
                let branches: Vec<Branch<'_>> = tasks
                    .iter()
                    .map(|task| self.run_task(task, frame, cancel))
                    .collect();
                together(branches, *concurrent, cancel).await
            }
            PlannedKind::Dag(dag) => self.dag(dag, frame, cancel).await,
            PlannedKind::WorkingDirectory { tasks, spec } => {
                return self
                    .working_directory(tasks, spec, open, frame, cancel)
                    .await;
            }
            PlannedKind::If {
                condition,
                then,
                otherwise,
            } => {
                let ctx = self.context(open, frame);
                let text = self.render(condition, &ctx, cancel).await?;
                let branch = if is_truthy(&text) { then } else { otherwise };
                self.sequence(branch, frame, cancel).await
            }
            PlannedKind::Switch {
                value,
                cases,
                defaults,
            } => {
                let ctx = self.context(open, frame);
                let value = self.render(value, &ctx, cancel).await?;
                let case = cases.iter().find(|(key, _)| *key == value);
                let mut outputs = Map::new();
                outputs.insert("defaults".into(), Value::Bool(case.is_none()));
                outputs.insert("value".into(), Value::String(value));
                let branch = case.map_or(defaults, |(_, tasks)| tasks);
                if branch.is_empty() {
                    // Kestra fails a Switch with nothing to run (WARNING under allowFailure).
                    return Err(Stopped::Broken(
                        "No task found: no case matches the value and there are no defaults".into(),
                    ));
                }
                let state = self.sequence(branch, frame, cancel).await;
                return Ok(Ended { state, outputs });
            }
            PlannedKind::WaitFor {
                condition,
                tasks,
                check,
                fail_on_max_reached,
            } => {
                let wait = WaitFor {
                    condition,
                    tasks,
                    check: *check,
                    fail_on_max_reached: *fail_on_max_reached,
                };
                return self.wait_for(&wait, open, frame, cancel).await;
            }
            PlannedKind::ForEach {
                values,
                limit,
                tasks,
            } => {
                let values = self.values(values, open, frame, cancel).await?;
                let frames: Vec<Frame> =
                    values.iter().map(|value| frame.with_value(value)).collect();
                let iterations: Vec<Branch<'_>> = frames
                    .iter()
                    .map(|frame| -> Branch<'_> { Box::pin(self.sequence(tasks, frame, cancel)) })
                    .collect();
                together(iterations, *limit, cancel).await
            }
        };
        Ok(Ended {
            state,
            outputs: Map::new(),
        })
    }

    /// Runs a WorkingDirectory's tasks in one directory they share: its cache and input files
    /// put in first, its output files (the output `outputFiles`) and cache stored after tasks
    /// that ended well.
    async fn working_directory(
        &self,
        tasks: &[PlannedTask],
        spec: &WorkingDirectory,
        open: &OpenRun,
        frame: &Frame,
        cancel: &CancelToken,
    ) -> Result<Ended, Stopped> {
        let broken = |error: TaskError| Stopped::Broken(error.to_string());
        let shared = Arc::new(SharedDir {
            dir: WorkDir::create().map_err(broken)?,
            taskrun: json!({"id": open.run.id, "value": open.run.value}),
        });
        let place = Place {
            files: self.files.as_ref(),
            task_id: &open.run.task_id,
            task_run_id: &open.run.id,
        };
        let cache = match &spec.cache {
            Some(cache) => {
                let slot = CacheSlot::new(place.files().map_err(broken)?, &open.run.task_id)
                    .map_err(broken)?;
                let restored = slot.restore(&shared, cache).await.map_err(broken)?;
                Some((slot, cache, restored))
            }
            None => None,
        };
        let ctx = self.context(open, frame);
        for (name, template) in &spec.input_files {
            let content = self.render(template, &ctx, cancel).await?;
            place
                .write_input(&shared.dir, name, &content)
                .map_err(broken)?;
        }
        let inner = Frame {
            working_dir: Some(Arc::clone(&shared)),
            ..frame.clone()
        };
        let state = self.sequence(tasks, &inner, cancel).await;
        let mut outputs = Map::new();
        if !matches!(state, State::Success | State::Warning) {
            return Ok(Ended { state, outputs });
        }
        if !spec.output_files.is_empty() {
            let files = place
                .store_outputs(&shared.dir, &spec.output_files)
                .await
                .map_err(broken)?;
            outputs.insert("outputFiles".into(), Value::Object(files));
        }
        if let Some((slot, cache, false)) = cache {
            let registry = Arc::clone(&self.registry);
            slot.save(&shared, cache, registry).await.map_err(broken)?;
        }
        Ok(Ended { state, outputs })
    }

    /// Runs a WaitFor's tasks until its condition holds after them, one fails, or a maximum
    /// is reached (a failure under `failOnMaxReached`), `interval` apart. Bounded by
    /// `maxIterations` and `maxDuration`.
    async fn wait_for(
        &self,
        wait: &WaitFor<'_>,
        open: &OpenRun,
        frame: &Frame,
        cancel: &CancelToken,
    ) -> Result<Ended, Stopped> {
        let started = std::time::Instant::now();
        let mut iteration: u64 = 1;
        loop {
            let mut outputs = Map::new();
            outputs.insert("iterationCount".into(), Value::from(iteration));
            self.keep_outputs(open, frame, Value::Object(outputs.clone()));
            let state = self.sequence(wait.tasks, frame, cancel).await;
            if state != State::Success {
                return Ok(Ended { state, outputs });
            }
            let reached = if iteration > wait.check.max_iterations {
                Some("Max iterations reached")
            } else if started.elapsed() > wait.check.max_duration {
                Some("Max duration reached")
            } else {
                None
            };
            if let Some(reason) = reached {
                self.log_on(open, Level::Warn, reason);
                let state = if wait.fail_on_max_reached {
                    State::Failed
                } else {
                    State::Success
                };
                return Ok(Ended { state, outputs });
            }
            let ctx = self.context(open, frame);
            if is_truthy(&self.render(wait.condition, &ctx, cancel).await?) {
                return Ok(Ended { state, outputs });
            }
            tokio::select! {
                () = tokio::time::sleep(wait.check.interval) => iteration += 1,
                () = cancel.cancelled() => return Err(Stopped::Killed),
            }
        }
    }

    /// A ForEach's values, rendered: a list (each text rendered), or a text rendering to a
    /// JSON list. Values that are not texts are taken as their JSON.
    async fn values(
        &self,
        values: &Value,
        open: &OpenRun,
        frame: &Frame,
        cancel: &CancelToken,
    ) -> Result<Vec<String>, Stopped> {
        let ctx = self.context(open, frame);
        let items = match values {
            Value::String(template) => {
                let text = self.render(template, &ctx, cancel).await?;
                match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Array(items)) => items,
                    _ => {
                        return Err(Stopped::Broken(format!(
                            "values: must be a list or a JSON string of a list, got '{text}'"
                        )));
                    }
                }
            }
            Value::Array(items) => {
                let mut rendered = Vec::with_capacity(items.len());
                for item in items {
                    rendered.push(match item {
                        Value::String(template) => {
                            Value::String(self.render(template, &ctx, cancel).await?)
                        }
                        other => other.clone(),
                    });
                }
                rendered
            }
            _ => {
                return Err(Stopped::Broken(
                    "values: must be a list or a JSON string of a list".into(),
                ));
            }
        };
        let nulls = items.iter().filter(|item| item.is_null()).count();
        if nulls > 0 {
            // Kestra's words, the values as Java prints them.
            let all: Vec<String> = items.iter().map(java_text).collect();
            return Err(Stopped::Broken(format!(
                "Found '{nulls}' null values on Each, with values=[{}]",
                all.join(", ")
            )));
        }
        // As in Kestra, a value given twice runs once.
        let mut seen = std::collections::HashSet::new();
        Ok(items
            .into_iter()
            .map(|item| match item {
                Value::String(text) => text,
                other => other.to_string(),
            })
            .filter(|text| seen.insert(text.clone()))
            .collect())
    }
}

/// `value` as Java's `toString` prints the list or map Jackson read it into:
/// `{key=my-key, value=[1, null]}`.
fn java_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(java_text).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(key, value)| format!("{key}={}", java_text(value)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        other => other.to_string(),
    }
}
