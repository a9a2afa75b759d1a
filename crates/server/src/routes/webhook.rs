//! `/api/v1/main/executions/webhook/{namespace}/{flowId}/{key}`: a flow's Webhook trigger,
//! public. The key in the path is the credential: compared in constant time with each
//! trigger's `key`, rendered (it may be `{{ secret('WEBHOOK_KEY') }}`); 404 when none
//! matches, and a client that keeps guessing waits (429). A key `secret()` resolved is
//! registered in the execution it starts, so that it is masked wherever the caller sends it
//! again (a header, the query, the body: `{{ trigger }}`). A webhook with `conditions`
//! (Kestra's `Expression`, over the request as `trigger`) starts nothing and answers 204 when
//! one does not hold, as Kestra does.

use super::executions::answer;
use crate::auth::client_of;
use crate::error::AppError;
use crate::executor::{self, Submission};
use crate::extract::Path;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kestrel_expr::Context;
use kestrel_flow::{Facts, Flow};
use kestrel_secrets::{Reader, SecretValue};
use serde_json::{Map, Value, json};
use std::time::Instant;
use subtle::ConstantTimeEq as _;

/// The largest body a webhook takes.
const BODY_LIMIT: usize = 1024 * 1024;

/// The answer to a wrong key, an unknown flow and a flow without a webhook alike.
fn not_found() -> AppError {
    AppError::NotFound("Webhook not found".into())
}

pub(super) async fn trigger(
    State(state): State<AppState>,
    Path((namespace, flow_id, key)): Path<(String, String, String)>,
    request: Request,
) -> Result<Response, AppError> {
    let client = format!("webhook:{}", client_of(&request));
    let failures = &state.0.webhook_failures;
    if let Some(left) = failures.blocked(&client, Instant::now()) {
        return Err(AppError::TooManyRequests(left.as_secs().max(1)));
    }
    let (parts, body) = request.into_parts();
    let found = match state.latest_flow(&namespace, &flow_id).await {
        Ok(Some(flow)) => matching_key(&state, &flow.flow, &key).map(|matched| (flow, matched)),
        Ok(None) | Err(AppError::Invalid { .. }) => None,
        Err(other) => return Err(other),
    };
    let Some((flow, matched)) = found else {
        failures.fail(&client, Instant::now());
        return Err(not_found());
    };
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| AppError::BadRequest("The body is too large or cut short".into()))?;
    let trigger = trigger_variable(&parts.headers, parts.uri.query(), &body);
    if !conditions_hold(&state, &flow.flow, &matched.trigger_id, &trigger) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let submission = Submission {
        id: None,
        flow,
        inputs: Vec::new(),
        trigger: Some(trigger),
        triggered_by: "webhook".into(),
    };
    let submitted =
        executor::submit_registering(&state, submission, matched.into_registered()).await?;
    Ok(answer(&state, submitted, false).await?.into_response())
}

/// Whether every condition of the webhook `trigger_id` holds for the request `trigger`,
/// rendered without a secret scope (a condition reading a secret does not hold).
fn conditions_hold(state: &AppState, flow: &Flow, trigger_id: &str, trigger: &Value) -> bool {
    let Some(webhook) = flow.webhooks.iter().find(|w| w.id == trigger_id) else {
        return false;
    };
    if webhook.conditions.is_empty() {
        return true;
    }
    let vars = json!({
        "flow": {"id": flow.id, "namespace": flow.namespace},
        "vars": flow.variables,
        "trigger": trigger,
    });
    let context = Context::new(vars, None);
    let engine = state.0.engines.engine();
    let render = |template: &str| engine.expressions().render(template, &context).ok();
    // A webhook's conditions are expressions only: they read no execution.
    let facts = Facts {
        namespace: &flow.namespace,
        flow_id: &flow.id,
        state: "CREATED",
        labels: &[],
    };
    webhook.conditions.iter().all(|c| c.holds(&facts, &render))
}

/// The Webhook trigger a key matched.
struct Matched {
    /// The trigger's id.
    trigger_id: String,
    /// The key, when `secret()` resolved it.
    secret: Option<SecretValue>,
}

impl Matched {
    /// What the execution registers for masking at its start: the key `secret()` resolved.
    fn into_registered(self) -> Vec<(String, SecretValue)> {
        let name = format!("the key of Webhook trigger {}", self.trigger_id);
        self.secret.map(|key| (name, key)).into_iter().collect()
    }
}

/// The Webhook trigger of the flow whose key `key` is, if any. Every trigger is checked, each
/// in constant time; a key that cannot be rendered matches nothing (and is logged).
fn matching_key(state: &AppState, flow: &Flow, key: &str) -> Option<Matched> {
    let vars = json!({
        "flow": {"id": flow.id, "namespace": flow.namespace},
        "vars": flow.variables,
    });
    let reader = Reader::Trigger {
        namespace: flow.namespace.clone(),
        flow_id: flow.id.clone(),
    };
    flow.webhooks
        .iter()
        .filter(|webhook| !webhook.disabled)
        .filter_map(|webhook| {
            match state.0.engines.render_clear(
                &webhook.key,
                &flow.namespace,
                vars.clone(),
                reader.clone(),
            ) {
                Ok(rendered) => Some((webhook, rendered)),
                Err(error) => {
                    crate::log::warn(&format!(
                        "the webhook key of flow {}.{} cannot be rendered: {error}",
                        flow.namespace, flow.id
                    ));
                    None
                }
            }
        })
        .fold(None, |matched, (webhook, expected)| {
            let same: bool = expected.as_bytes().ct_eq(key.as_bytes()).into();
            matched.or_else(|| {
                same.then(|| Matched {
                    trigger_id: webhook.id.clone(),
                    secret: webhook
                        .key
                        .contains("secret(")
                        .then(|| SecretValue::new(expected.to_string())),
                })
            })
        })
}

/// Request headers kept out of `trigger.headers`.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// The `trigger` variable of the execution: Kestra's `body` (JSON when it parses, else text;
/// null when empty), `headers` and `parameters`.
fn trigger_variable(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Value {
    // No body (a GET) is null, as in Kestra.
    let body = match body {
        [] => Value::Null,
        bytes => serde_json::from_slice::<Value>(bytes)
            .unwrap_or_else(|_| json!(String::from_utf8_lossy(bytes))),
    };
    let mut header_map = Map::new();
    for (name, value) in headers {
        // A caller's credentials are not the flow's business, and the trigger variable is stored
        // with the execution: they never enter it.
        if CREDENTIAL_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if let Ok(text) = value.to_str() {
            push(&mut header_map, name.as_str().to_owned(), text.to_owned());
        }
    }
    let mut parameters = Map::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        push(
            &mut parameters,
            percent_decoded(name),
            percent_decoded(value),
        );
    }
    json!({"body": body, "headers": header_map, "parameters": parameters})
}

/// Adds `value` to the list under `name` (headers and parameters may repeat).
fn push(map: &mut Map<String, Value>, name: String, value: String) {
    if let Value::Array(values) = map.entry(name).or_insert_with(|| json!([])) {
        values.push(Value::String(value));
    }
}

/// A path or query segment with its `%XX` escapes decoded (and `+` as a space).
fn percent_decoded(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(percent_decoded("a%2Fb+c%zz"), "a/b c%zz");
    }

    #[test]
    fn the_trigger_variable_holds_body_headers_and_parameters() {
        let mut headers = HeaderMap::new();
        headers.insert("x-id", "7".parse().unwrap());
        let trigger = trigger_variable(&headers, Some("a=1&a=2&b"), br#"{"n": 1}"#);
        assert_eq!(trigger["body"]["n"], 1);
        assert_eq!(trigger["headers"]["x-id"], json!(["7"]));
        assert_eq!(trigger["parameters"], json!({"a": ["1", "2"], "b": [""]}));
        let text = trigger_variable(&HeaderMap::new(), None, b"plain");
        assert_eq!(text["body"], "plain");
    }

    #[test]
    fn credentials_sent_with_a_webhook_stay_out_of_the_trigger_variable() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer kst_caller".parse().unwrap());
        headers.insert("cookie", "kestrel_session=abc".parse().unwrap());
        headers.insert("x-id", "7".parse().unwrap());
        let trigger = trigger_variable(&headers, None, b"");
        assert_eq!(trigger["headers"], json!({"x-id": ["7"]}));
    }
}
