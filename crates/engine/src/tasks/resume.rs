//! `io.kestra.plugin.core.execution.Resume`: resumes a PAUSED execution through the host
//! (the server), as its resume route does. A secret of the resuming execution never travels
//! in the inputs: the paused execution could not mask it.

use crate::subflow::ResumeRequest;
use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use kestrel_secrets::SecretValue;
use serde_json::Value;

/// Renders its properties and asks the host to resume the execution.
#[derive(Debug, Clone)]
pub(crate) struct ResumeTask {
    /// `namespace`, `flowId` and `executionId` as written, in that order.
    target: [Option<String>; 3],
    inputs: Value,
}

impl ResumeTask {
    pub(crate) fn new(target: [Option<String>; 3], inputs: Value) -> Self {
        Self { target, inputs }
    }

    /// The request: the execution's own namespace where none is given (as in Kestra, the
    /// execution is found by its id, of any flow of the namespace unless `flowId` is given).
    async fn request(&self, ctx: &TaskContext<'_>) -> Result<ResumeRequest, TaskError> {
        let [namespace, flow_id, execution_id] = &self.target;
        let [own_namespace, _, own_id] = ctx.execution_logs().identity();
        let execution_id = or_own(ctx, execution_id, own_id.clone()).await?;
        if execution_id == own_id {
            return Err(TaskError::new(
                "executionId: an execution cannot resume itself; name a paused execution",
            ));
        }
        let namespace = or_own(ctx, namespace, own_namespace.clone()).await?;
        if namespace != own_namespace {
            return Err(TaskError::new(format!(
                "namespace: an execution resumes executions of its own namespace ({own_namespace}) only"
            )));
        }
        Ok(ResumeRequest {
            namespace,
            flow_id: match flow_id {
                Some(template) => Some(ctx.render(template).await?.trim().to_owned()),
                None => None,
            },
            execution_id,
            inputs: self.inputs(ctx).await?,
        })
    }

    /// The inputs, as text; one holding a secret of this execution is refused.
    async fn inputs(&self, ctx: &TaskContext<'_>) -> Result<Vec<(String, SecretValue)>, TaskError> {
        let rendered = ctx.render_value(&self.inputs).await?;
        let mut inputs = Vec::new();
        for (id, value) in rendered.as_object().into_iter().flatten() {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            if ctx.registry().contains_secret(&text) {
                return Err(TaskError::new(format!(
                    "inputs.{id}: must not hold a secret (the paused execution could not mask it)"
                )));
            }
            inputs.push((id.clone(), SecretValue::new(text)));
        }
        Ok(inputs)
    }
}

/// `template` rendered, or `own` when there is none.
async fn or_own(
    ctx: &TaskContext<'_>,
    template: &Option<String>,
    own: String,
) -> Result<String, TaskError> {
    match template {
        Some(template) => Ok(ctx.render(template).await?.trim().to_owned()),
        None => Ok(own),
    }
}

#[async_trait]
impl Task for ResumeTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let request = self.request(ctx).await?;
        let Some(subflows) = ctx.subflows() else {
            return Err(TaskError::new(format!(
                "Cannot resume execution {}: only the server holds other executions",
                request.execution_id
            )));
        };
        subflows.launcher.resume(request).await
    }
}
