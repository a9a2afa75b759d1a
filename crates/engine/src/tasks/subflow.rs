//! `io.kestra.plugin.core.flow.Subflow`: an execution of another flow, through the host's
//! [`SubflowLauncher`](crate::SubflowLauncher).

use crate::runner::CORRELATION_ID;
use crate::subflow::{Parent, SubflowEnd, SubflowRequest};
use crate::{State, Task, TaskContext, TaskError};
use async_trait::async_trait;
use kestrel_expr::Context;
use kestrel_flow::SubflowCall;
use kestrel_secrets::{MaskRegistry, SecretValue};
use serde_json::{Map, Value, json};

/// Renders its call, starts the child and, when it waits, ends as Kestra's Subflow does: the
/// child's state passed on under `transmitFailed`, its outputs as the task's `outputs`.
#[derive(Debug, Clone)]
pub(crate) struct SubflowTask {
    call: SubflowCall,
}

impl SubflowTask {
    pub(crate) fn new(call: SubflowCall) -> Self {
        Self { call }
    }

    /// The request for the child: every template rendered in this task run's context.
    async fn request(
        &self,
        ctx: &TaskContext<'_>,
        parent: &Parent,
    ) -> Result<SubflowRequest, TaskError> {
        let call = &self.call;
        let mut registered = Vec::new();
        let mut inputs = Vec::new();
        let rendered = ctx
            .render_value(&Value::Object(call.inputs.clone()))
            .await?;
        for (id, value) in rendered.as_object().into_iter().flatten() {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            keep_secret(
                ctx.registry(),
                &mut registered,
                &format!("input {id}"),
                &text,
            );
            inputs.push((id.clone(), SecretValue::new(text)));
        }
        let mut labels = if call.inherit_labels {
            parent.labels.clone()
        } else {
            Vec::new()
        };
        // Every execution has one (its own id at the root): the child keeps the root's.
        let correlation = parent.labels.iter().find(|(key, _)| key == CORRELATION_ID);
        if !call.inherit_labels {
            labels.extend(correlation.cloned());
        }
        for (key, value) in &call.labels {
            let key = ctx.render(key).await?;
            let value = ctx.render(value).await?;
            keep_secret(
                ctx.registry(),
                &mut registered,
                &format!("label {key}"),
                &value,
            );
            labels.push((key, value));
        }
        Ok(SubflowRequest {
            namespace: ctx.render(&call.namespace).await?,
            flow_id: ctx.render(&call.flow_id).await?,
            revision: call.revision,
            inputs,
            registered,
            labels,
            trigger: json!({
                "executionId": parent.execution_id,
                "namespace": parent.namespace,
                "flowId": parent.flow_id,
                "flowRevision": parent.revision,
            }),
            wait: call.wait,
        })
    }

    /// The child's outputs: its flow's, else the task's own `outputs` rendered against its
    /// task runs' outputs (no secret resolves there: they are the child's namespace's).
    async fn outputs(
        &self,
        ctx: &TaskContext<'_>,
        end: &SubflowEnd,
        namespace: &str,
        flow_id: &str,
    ) -> Result<Option<Map<String, Value>>, TaskError> {
        if !end.outputs.is_empty() || self.call.outputs.is_empty() {
            return Ok((!end.outputs.is_empty()).then(|| end.outputs.clone()));
        }
        let vars = json!({
            "outputs": end.task_outputs,
            "flow": {"namespace": namespace, "id": flow_id},
            "execution": {"id": end.execution_id},
        });
        let child = Context::new(vars, None);
        let template = Value::Object(self.call.outputs.clone());
        match crate::render::render_value(ctx.engine().expressions(), &template, &child).await {
            Ok(Value::Object(outputs)) => Ok(Some(outputs)),
            Ok(_) => Ok(None),
            Err(error) => Err(TaskError::new(format!(
                "Failed to extract outputs with the error: '{error}'"
            ))),
        }
    }
}

impl SubflowTask {
    /// A ForEachItem's children: one per batch, each seeing its batch as `taskrun.items` (and
    /// its index as `taskrun.iteration`), one after the other. Outputs `numberOfBatches`,
    /// `iterations` (how many children ended in each state; RUNNING for those not waited
    /// for) and, when any child gave outputs, `subflowOutputs` (a file, one JSON line each).
    async fn run_batches(
        &self,
        ctx: &mut TaskContext<'_>,
        subflows: crate::subflow::Subflows<'_>,
        batches: &str,
    ) -> Result<(), TaskError> {
        let text = ctx.render(batches).await?;
        let uris: Vec<String> = serde_json::from_str(&text)
            .map_err(|error| TaskError::new(format!("cannot read the batches: {error}")))?;
        if uris.is_empty() {
            return Ok(());
        }
        let base = ctx.render_context().clone();
        let mut iterations: Map<String, Value> = ["CREATED", "RUNNING"]
            .into_iter()
            .map(|state| (state.to_owned(), json!(0)))
            .collect();
        let mut lines = String::new();
        let mut worst = State::Success;
        for (iteration, uri) in uris.iter().enumerate() {
            let taskrun = json!({"items": uri, "iteration": iteration});
            if let Value::Object(extra) = taskrun {
                ctx.set_render_context(base.merged("taskrun", extra));
            }
            let request = self.request(ctx, subflows.parent).await?;
            let (namespace, flow_id) = (request.namespace.clone(), request.flow_id.clone());
            let end = subflows.launcher.launch(request).await?;
            let state = end.state.map_or("RUNNING", State::as_str);
            let count = iterations.entry(state).or_insert(json!(0));
            *count = json!(count.as_u64().unwrap_or(0) + 1);
            worst = match (worst, end.state) {
                (State::Failed, _) | (_, Some(State::Failed | State::Killed)) => State::Failed,
                (_, Some(State::Warning)) => State::Warning,
                (worst, _) => worst,
            };
            if let Some(outputs) = self.outputs(ctx, &end, &namespace, &flow_id).await? {
                lines.push_str(&Value::Object(outputs).to_string());
                lines.push('\n');
            }
        }
        ctx.set_render_context(base);
        ctx.output("numberOfBatches", json!(uris.len()));
        ctx.output("iterations", Value::Object(iterations));
        if !lines.is_empty() {
            let content = Box::new(std::io::Cursor::new(lines.into_bytes()));
            let file = ctx.store_file("outputs.jsonl", content).await?;
            ctx.output("subflowOutputs", Value::String(file));
        }
        self.transmit(ctx, worst, "ForEachItem: a subflow execution")
    }

    /// Ends the task run as the child's `state` asks under `transmitFailed`.
    fn transmit(
        &self,
        ctx: &mut TaskContext<'_>,
        state: State,
        which: &str,
    ) -> Result<(), TaskError> {
        if !self.call.transmit_failed {
            return Ok(());
        }
        match state {
            State::Warning => {
                ctx.warn();
                Ok(())
            }
            State::Failed | State::Killed => Err(TaskError::new(format!("{which} ended {state}"))),
            _ => Ok(()),
        }
    }
}

/// Adds `text` to what the child registers when it holds a secret of the parent.
fn keep_secret(
    registry: &MaskRegistry,
    registered: &mut Vec<(String, SecretValue)>,
    name: &str,
    text: &str,
) {
    if registry.contains_secret(text) {
        registered.push((name.to_owned(), SecretValue::new(text.to_owned())));
    }
}

#[async_trait]
impl Task for SubflowTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let Some(subflows) = ctx.subflows() else {
            return Err(TaskError::new(
                "Subflow tasks run where flows can be found: `kestrel run` (the flow's folder \
                 and --flows) or the server",
            ));
        };
        if let Some(batches) = &self.call.batches {
            return self.run_batches(ctx, subflows, batches).await;
        }
        let request = self.request(ctx, subflows.parent).await?;
        let (namespace, flow_id) = (request.namespace.clone(), request.flow_id.clone());
        let end = subflows.launcher.launch(request).await?;
        ctx.output("executionId", json!(end.execution_id));
        let Some(state) = end.state else {
            return Ok(());
        };
        ctx.output("state", json!(state.as_str()));
        if let Some(outputs) = self.outputs(ctx, &end, &namespace, &flow_id).await? {
            ctx.output("outputs", Value::Object(outputs));
        }
        let which = format!(
            "Subflow execution {} of flow '{namespace}'.'{flow_id}'",
            end.execution_id
        );
        self.transmit(ctx, state, &which)
    }
}
