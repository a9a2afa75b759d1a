//! `api_body`: the server's request bodies, through its router.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use http_body_util::BodyExt as _;
use kestrel_crypto::MasterKey;
use kestrel_server::{AppState, NewToken, ServerOptions, WorkerOptions};
use kestrel_store::{AuthStore as _, SecretAccess, TokenRecord};
use kestrel_store_sqlite::{SqliteStore, StoreOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt as _;

/// A namespace secret stored before any fuzzed request (`fuzz.vault`, key `UPFRONT`).
const UPFRONT: &str = "Upfront-9f2c-Qm7x-secret-Lw4e";
/// A secret of the environment (`SECRET_ENV_TOKEN`).
const ENV_SECRET: &str = "env-token-Hs4k-7Pq2-value";
/// The key of the webhook flow's trigger, a secret of the environment (`SECRET_WEBHOOK_KEY`).
const WEBHOOK_KEY: &str = "hook-key-Vd83-Zr5m-secret";

/// A flow whose inputs the execution routes read: one of each kind a body can give.
const INPUTS_FLOW: &str = r#"id: inputs
namespace: fuzz.fixed
inputs:
  - id: name
    type: STRING
    defaults: kestrel
  - id: password
    type: SECRET
    required: false
  - id: count
    type: INT
    required: false
    min: 0
    max: 1000
  - id: ratio
    type: FLOAT
    required: false
  - id: flag
    type: BOOLEAN
    required: false
  - id: payload
    type: JSON
    required: false
  - id: when
    type: DATETIME
    required: false
  - id: day
    type: DATE
    required: false
  - id: wait
    type: DURATION
    required: false
  - id: color
    type: ENUM
    values: [red, green, blue]
    required: false
  - id: sizes
    type: MULTISELECT
    values: [S, M, L]
    required: false
  - id: items
    type: ARRAY
    itemType: INT
    required: false
  - id: site
    type: URI
    required: false
  - id: mail
    type: EMAIL
    required: false
  - id: config
    type: YAML
    required: false
  - id: upload
    type: FILE
    required: false
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.name }} {{ inputs.password }}"
"#;

/// A flow started by a Webhook trigger whose key is a secret and whose condition reads the body.
const WEBHOOK_FLOW: &str = r#"id: hook
namespace: fuzz.fixed
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.body }}"
triggers:
  - id: webhook
    type: io.kestra.plugin.core.trigger.Webhook
    key: "{{ secret('WEBHOOK_KEY') }}"
    conditions:
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{ trigger.body.go ?? true }}"
"#;

/// A flow the update route writes new revisions of.
const EDITED_FLOW: &str = "id: edited\nnamespace: fuzz.flows\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: first\n";

/// What a fuzzed body is sent to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    CreateFlow,
    ValidateFlows,
    UpdateFlow,
    PutSecret,
    PatchSecret,
    JsonInputs,
    MultipartInputs,
    Webhook,
}

/// The routes, with the body type each reads.
const ROUTES: &[(Kind, &str, &str)] = &[
    (Kind::CreateFlow, "/api/v1/main/flows", "application/x-yaml"),
    (
        Kind::ValidateFlows,
        "/api/v1/main/flows/validate",
        "application/x-yaml",
    ),
    (
        Kind::UpdateFlow,
        "/api/v1/main/flows/fuzz.flows/edited",
        "application/x-yaml",
    ),
    (
        Kind::PutSecret,
        "/api/v1/main/namespaces/fuzz.secrets/secrets",
        "application/json",
    ),
    (
        Kind::PatchSecret,
        "/api/v1/main/namespaces/fuzz.secrets/secrets/EXISTING",
        "application/json",
    ),
    (
        Kind::JsonInputs,
        "/api/v1/main/executions/fuzz.fixed/inputs",
        "application/json",
    ),
    (
        Kind::MultipartInputs,
        "/api/v1/main/executions/fuzz.fixed/inputs",
        "multipart/form-data; boundary=kestrelfuzz",
    ),
    (
        Kind::Webhook,
        "/api/v1/main/executions/webhook/fuzz.fixed/hook/hook-key-Vd83-Zr5m-secret",
        "application/json",
    ),
];

fn method(kind: Kind) -> Method {
    match kind {
        Kind::UpdateFlow | Kind::PutSecret => Method::PUT,
        Kind::PatchSecret => Method::PATCH,
        _ => Method::POST,
    }
}

/// The server every input is sent to: built once per process.
struct Harness {
    runtime: tokio::runtime::Runtime,
    app: Router,
    authorization: String,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let (app, authorization) = runtime.block_on(start(&store_dir()));
        Harness {
            runtime,
            app,
            authorization,
        }
    })
}

/// A directory of its own for this process's store; those of processes gone are removed.
fn store_dir() -> PathBuf {
    const PREFIX: &str = "kestrel-fuzz-api-";
    let temp = std::env::temp_dir();
    if Path::new("/proc/self").exists()
        && let Ok(entries) = std::fs::read_dir(&temp)
    {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name.to_str().and_then(|name| name.strip_prefix(PREFIX));
            if let Some(pid) = pid.filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = temp.join(format!("{PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The router over a new store in `dir`, with an admin token (secret access write, every
/// namespace), the worker off (no fuzzed flow ever runs: executions stay queued), the fixed
/// flows and the up-front secret. Returns the router and the token's `Authorization`.
async fn start(dir: &Path) -> (Router, String) {
    let key = MasterKey::generate().expect("a master key");
    let store = SqliteStore::open(dir, key, StoreOptions::default()).expect("the store opens");
    let token = NewToken::generate().expect("a token");
    let record = TokenRecord {
        name: "fuzz".into(),
        namespaces: Vec::new(),
        secrets: SecretAccess::Write,
        created_at: Utc::now(),
        revoked_at: None,
    };
    store
        .add_token(&record, &token.hash())
        .await
        .expect("the token is stored");
    let options = ServerOptions {
        worker_threads: 1,
        worker: WorkerOptions {
            enabled: false,
            ..WorkerOptions::default()
        },
        process_env: vec![
            ("SECRET_ENV_TOKEN".into(), STANDARD.encode(ENV_SECRET)),
            ("SECRET_WEBHOOK_KEY".into(), STANDARD.encode(WEBHOOK_KEY)),
        ],
        ..ServerOptions::default()
    };
    let state = AppState::new(options, Arc::new(store)).expect("the server state");
    let app = kestrel_server::app(state);
    let authorization = format!("Bearer {}", token.expose_secret());
    let setup: [(Method, &str, &str, Vec<u8>); 5] = [
        (
            Method::PUT,
            "/api/v1/main/namespaces/fuzz.vault/secrets",
            "application/json",
            serde_json::json!({"key": "UPFRONT", "value": UPFRONT})
                .to_string()
                .into_bytes(),
        ),
        (
            Method::PUT,
            "/api/v1/main/namespaces/fuzz.secrets/secrets",
            "application/json",
            serde_json::json!({"key": "EXISTING", "value": "existing-secret-value"})
                .to_string()
                .into_bytes(),
        ),
        (
            Method::POST,
            "/api/v1/main/flows",
            "application/x-yaml",
            INPUTS_FLOW.into(),
        ),
        (
            Method::POST,
            "/api/v1/main/flows",
            "application/x-yaml",
            WEBHOOK_FLOW.into(),
        ),
        (
            Method::POST,
            "/api/v1/main/flows",
            "application/x-yaml",
            EDITED_FLOW.into(),
        ),
    ];
    for (method, path, content_type, body) in setup {
        let (status, text) =
            send(&app, &authorization, method, path, Some(content_type), body).await;
        assert_eq!(status, StatusCode::OK, "setup {path}: {text}");
    }
    (app, authorization)
}

async fn send(
    app: &Router,
    authorization: &str,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, authorization);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let request = request.body(Body::from(body)).expect("a request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the body is read")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Sends the input as the body of one of the server's routes (picked by the first byte, with
/// the route's content type, another one, or none) and checks the answer.
///
/// The routes: create a flow, validate flows, update a flow (YAML); create a namespace secret,
/// change a secret's metadata (JSON); trigger an execution with JSON or multipart inputs (the
/// boundary is `kestrelfuzz`); a
/// Webhook trigger whose key is a secret. The server is built once per process over a
/// temporary SQLite store, with an admin token and the worker off (executions are queued,
/// never run, so no fuzzed flow ever runs a task).
///
/// Panics when the server panics; when it answers 5xx; when an error is not a JSON
/// `{"message"}`; when an answer holds a secret set up before (a namespace secret, two
/// environment secrets, in clear or base64) in a form the request did not hold itself; when creating
/// a secret answers its value (other than inside the key, description or tags the request
/// gave); or when a created execution shows the text of its SECRET input in its inputs.
pub fn api_body(data: &[u8]) {
    let Some((&head, body)) = data.split_first() else {
        return;
    };
    let (kind, path, content_type) = ROUTES[usize::from(head) % ROUTES.len()];
    // Most inputs carry the route's own content type; some another one, or none.
    let content_type = match (usize::from(head) / ROUTES.len()) % 8 {
        6 => Some("text/plain"),
        7 => None,
        _ => Some(content_type),
    };
    let harness = harness();
    let (status, answer) = harness.runtime.block_on(send(
        &harness.app,
        &harness.authorization,
        method(kind),
        path,
        content_type,
        body.to_vec(),
    ));
    let sent = String::from_utf8_lossy(body);
    assert!(
        !status.is_server_error(),
        "{} {path} answered {status}: {answer}",
        method(kind)
    );
    if status.is_client_error() {
        let message = serde_json::from_str::<Value>(&answer)
            .ok()
            .and_then(|json| {
                json.get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        assert!(
            message.is_some(),
            "{path} answered {status} without a JSON message: {answer}"
        );
    }
    // The request may hold a value itself (coverage-guided fuzzing learns the strings this
    // check compares with): an answer may quote what the request said.
    for secret in [UPFRONT, ENV_SECRET, WEBHOOK_KEY] {
        for form in [secret.to_owned(), STANDARD.encode(secret)] {
            assert!(
                sent.contains(secret) || sent.contains(&form) || !answer.contains(&form),
                "{path} answered a secret set up before: {answer}"
            );
        }
    }
    if status != StatusCode::OK {
        return;
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let Ok(answered) = serde_json::from_str::<Value>(&answer) else {
        return;
    };
    match kind {
        Kind::PutSecret => check_secret_not_answered(&request, &answered),
        Kind::JsonInputs => check_secret_input_masked(&request, &answered),
        _ => {}
    }
}

/// A value long enough to be masked (the default minimum, 4), without the mask's `*`.
fn maskable(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Null => return None,
        other => other.to_string(),
    };
    (text.chars().count() >= 4 && !text.contains('*')).then_some(text)
}

/// Every string leaf of `value`, keys too when `keys`.
fn strings<'a>(value: &'a Value, keys: bool, out: &mut Vec<&'a str>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|item| strings(item, keys, out)),
        Value::Object(map) => {
            for (key, item) in map {
                if keys {
                    out.push(key);
                }
                strings(item, keys, out);
            }
        }
        _ => {}
    }
}

/// `PUT .../secrets` answers the secret's metadata, never its value.
fn check_secret_not_answered(request: &Value, answered: &Value) {
    let Some(value) = request.get("value").and_then(maskable) else {
        return;
    };
    let mut others = request.clone();
    if let Some(object) = others.as_object_mut() {
        object.remove("value");
    }
    let mut given = vec!["fuzz.secrets"];
    strings(&others, true, &mut given);
    let lower = value.to_lowercase();
    if given
        .iter()
        .any(|text| text.to_lowercase().contains(&lower))
    {
        return;
    }
    let mut leaves = Vec::new();
    strings(answered, false, &mut leaves);
    assert!(
        !leaves.iter().any(|leaf| leaf.contains(value.as_str())),
        "creating a secret answered its value: {answered}"
    );
}

/// A created execution shows every input with the SECRET input's text masked.
fn check_secret_input_masked(request: &Value, answered: &Value) {
    let Some(password) = request.get("password").and_then(maskable) else {
        return;
    };
    let Some(inputs) = answered.get("inputs") else {
        return;
    };
    let mut leaves = Vec::new();
    strings(inputs, false, &mut leaves);
    assert!(
        !leaves.iter().any(|leaf| leaf.contains(password.as_str())),
        "the execution shows its SECRET input: {inputs}"
    );
}
