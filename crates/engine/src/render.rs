//! The renders of an execution, run off the async runtime's threads under
//! `expression.render-timeout`.
//!
//! Fuel stops a long render deterministically; the wall-clock backstop abandons one that fuel
//! did not stop. Awaiting a render on a blocking thread keeps the runtime's threads free, so
//! a task's `timeout`, the kill route, Ctrl-C and SIGTERM end a task mid-render: dropping the
//! future abandons the render, whose thread finishes on its own when its fuel runs out.

use kestrel_expr::{Context, ExprError, Expressions};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Renders `template` in `ctx`; the error as a text (real: readers see it through the edge).
/// Plain text is returned as it is, without leaving the current thread.
pub(crate) async fn render(
    expressions: &Arc<Expressions>,
    template: &str,
    ctx: &Context,
) -> Result<String, String> {
    if Expressions::is_plain(template) {
        return Ok(template.to_owned());
    }
    let template = template.to_owned();
    let ctx = ctx.clone();
    off_runtime(expressions, move |expressions| {
        expressions.render(&template, &ctx)
    })
    .await
}

/// Renders every text inside `value` (see [`Expressions::render_value`]) in `ctx`.
pub(crate) async fn render_value(
    expressions: &Arc<Expressions>,
    value: &Value,
    ctx: &Context,
) -> Result<Value, String> {
    let value = value.clone();
    let ctx = ctx.clone();
    off_runtime(expressions, move |expressions| {
        expressions.render_value(&value, &ctx)
    })
    .await
}

/// Runs `work` on a blocking thread and waits for it at most `expression.render-timeout`.
async fn off_runtime<T: Send + 'static>(
    expressions: &Arc<Expressions>,
    work: impl FnOnce(&Expressions) -> Result<T, ExprError> + Send + 'static,
) -> Result<T, String> {
    let limit = expressions.limits().render_timeout;
    let shared = Arc::clone(expressions);
    let running = tokio::task::spawn_blocking(move || work(&shared));
    match tokio::time::timeout(limit, running).await {
        Ok(Ok(rendered)) => rendered.map_err(|error| error.to_string()),
        // A panic's message may quote what the render held: it is not shown.
        Ok(Err(_)) => Err("The expression failed unexpectedly while rendering".into()),
        Err(_) => Err(timeout_message(limit)),
    }
}

/// The failure of a render abandoned past `expression.render-timeout`.
fn timeout_message(limit: Duration) -> String {
    format!(
        "The expression took longer than expression.render-timeout ({limit:?}) to render and \
         was abandoned"
    )
}
