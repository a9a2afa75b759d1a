//! A server over a temporary store, called without a socket (`oneshot`), with a cast of
//! callers, and every answer kept so that a test can check none held a secret value.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // Test helpers: a failure is a failed test.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use chrono::Utc;
use http_body_util::BodyExt as _;
use kestrel_crypto::MasterKey;
use kestrel_server::{AppState, NewToken, ServerOptions, app};
use kestrel_store::{AuthStore, Route, Routed, SecretAccess, SecretStore, TokenRecord, UserRecord};
use kestrel_store_sqlite::{SqliteStore, StoreOptions};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tower::ServiceExt as _;

/// A secret value held in the environment (`SECRET_ENV_TOKEN`).
pub const ENV_SECRET: &str = "env-secret-value-42";

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// A token reaching every namespace, secrets write.
    Admin,
    /// A token reaching every namespace, secrets read.
    Reader,
    /// A token reaching every namespace, no secrets.
    NoSecrets,
    /// A token reaching only `team` (and its children), secrets write.
    Team,
    /// The user `ada` (Basic), every namespace, secrets write.
    Ada,
    /// No credentials.
    Nobody,
    /// A token nobody issued.
    Forged,
    /// Basic with a wrong password.
    WrongPassword,
}

/// `ada`'s password.
pub const ADA_PASSWORD: &str = "correct horse battery staple";

pub struct Harness {
    pub state: AppState,
    pub app: Router,
    pub store: SqliteStore,
    tokens: Vec<(Who, String)>,
    seen: Mutex<Vec<String>>,
    pub dir: tempfile::TempDir,
}

/// An answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

pub fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A server with default options but two workers and `SECRET_ENV_TOKEN` in its environment.
pub async fn harness() -> Harness {
    harness_with(|_| {}).await
}

pub async fn harness_with(configure: impl FnOnce(&mut ServerOptions)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path(),
        MasterKey::generate().unwrap(),
        StoreOptions::default(),
    )
    .unwrap();
    harness_on(dir, store, configure).await
}

/// A harness whose secrets of `namespace` (and its children) live in a read-only backend, as
/// `namespaces.<ns>.secret.read-only: true` configures.
pub async fn harness_read_only(namespace: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path(),
        MasterKey::generate().unwrap(),
        StoreOptions::default(),
    )
    .unwrap();
    let home: Arc<dyn SecretStore> = Arc::new(store.clone());
    let route = |read_only| Route {
        store: Arc::clone(&home),
        read_only,
    };
    let routed = Routed::new(
        Arc::clone(&home),
        route(false),
        vec![(namespace.to_owned(), route(true))],
    );
    harness_over(dir, store, |_| {}, Some(Arc::new(routed))).await
}

/// A harness over an existing store (a restart).
pub async fn harness_on(
    dir: tempfile::TempDir,
    store: SqliteStore,
    configure: impl FnOnce(&mut ServerOptions),
) -> Harness {
    harness_over(dir, store, configure, None).await
}

/// A harness over `store`, its secrets in `secrets` when given.
async fn harness_over(
    dir: tempfile::TempDir,
    store: SqliteStore,
    configure: impl FnOnce(&mut ServerOptions),
    secrets: Option<Arc<dyn SecretStore>>,
) -> Harness {
    let mut options = ServerOptions {
        worker_threads: 2,
        process_env: vec![("SECRET_ENV_TOKEN".into(), b64(ENV_SECRET))],
        ..ServerOptions::default()
    };
    configure(&mut options);
    let tokens = cast(&store).await;
    let records = Arc::new(store.clone());
    let state = match secrets {
        Some(secrets) => AppState::with_secrets(options, records, secrets),
        None => AppState::new(options, records),
    }
    .unwrap();
    Harness {
        app: app(state.clone()),
        state,
        store,
        tokens,
        seen: Mutex::new(Vec::new()),
        dir,
    }
}

/// Adds the cast's tokens (new ones each time) and `ada`, once.
async fn cast(store: &SqliteStore) -> Vec<(Who, String)> {
    let cast = [
        (Who::Admin, Vec::new(), SecretAccess::Write),
        (Who::Reader, Vec::new(), SecretAccess::Read),
        (Who::NoSecrets, Vec::new(), SecretAccess::None),
        (Who::Team, vec!["team".to_owned()], SecretAccess::Write),
    ];
    let mut tokens = Vec::new();
    for (who, namespaces, secrets) in cast {
        let token = NewToken::generate().unwrap();
        let name = format!("{who:?}-{}", &token.hash()[..8]);
        let record = TokenRecord {
            name,
            namespaces,
            secrets,
            created_at: Utc::now(),
            revoked_at: None,
        };
        store.add_token(&record, &token.hash()).await.unwrap();
        tokens.push((who, token.expose_secret().to_owned()));
    }
    if store.user("ada").await.unwrap().is_none() {
        let ada = UserRecord {
            name: "ada".into(),
            password_hash: kestrel_server::hash_password(ADA_PASSWORD).unwrap(),
            namespaces: Vec::new(),
            secrets: SecretAccess::Write,
            created_at: Utc::now(),
        };
        store.add_user(&ada).await.unwrap();
    }
    tokens
}

impl Harness {
    /// A new server over the same store, as after a restart (the old one is left as it is).
    pub async fn restart(&self, configure: impl FnOnce(&mut ServerOptions)) -> Harness {
        harness_on(tempfile::tempdir().unwrap(), self.store.clone(), configure).await
    }

    /// The `Authorization` header of `who`, if any.
    pub fn authorization(&self, who: Who) -> Option<String> {
        match who {
            Who::Nobody => None,
            Who::Forged => Some("Bearer kst_forged-token-nobody-issued".into()),
            Who::Ada => Some(format!("Basic {}", b64(&format!("ada:{ADA_PASSWORD}")))),
            Who::WrongPassword => Some(format!("Basic {}", b64("ada:guess"))),
            other => {
                let token = &self.tokens.iter().find(|(w, _)| *w == other).unwrap().1;
                Some(format!("Bearer {token}"))
            }
        }
    }

    /// Sends a request as `who`, with a body of `content_type` (or none).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        who: Who,
        body: Option<(&str, Vec<u8>)>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(auth) = self.authorization(who) {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let request = match body {
            Some((content_type, bytes)) => request
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(bytes)),
            None => request.body(Body::empty()),
        }
        .unwrap();
        self.call(request).await
    }

    /// Sends a prepared request.
    pub async fn call(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        self.seen.lock().unwrap().push(text.clone());
        Answer {
            status,
            headers,
            text,
        }
    }

    pub async fn get(&self, path: &str, who: Who) -> Answer {
        self.send(Method::GET, path, who, None).await
    }

    pub async fn delete(&self, path: &str, who: Who) -> Answer {
        self.send(Method::DELETE, path, who, None).await
    }

    pub async fn post_yaml(&self, path: &str, who: Who, yaml: &str) -> Answer {
        let body = Some(("application/x-yaml", yaml.as_bytes().to_vec()));
        self.send(Method::POST, path, who, body).await
    }

    pub async fn json(&self, method: Method, path: &str, who: Who, json: &Value) -> Answer {
        let body = Some(("application/json", json.to_string().into_bytes()));
        self.send(method, path, who, body).await
    }

    /// Creates a flow as the admin; panics unless it was created.
    pub async fn flow(&self, yaml: &str) -> Value {
        let answer = self.post_yaml("/api/v1/main/flows", Who::Admin, yaml).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()
    }

    /// Sets a namespace secret as the admin.
    pub async fn secret(&self, namespace: &str, key: &str, value: &str) {
        let path = format!("/api/v1/main/namespaces/{namespace}/secrets");
        let body = serde_json::json!({"key": key, "value": value});
        let answer = self.json(Method::PUT, &path, Who::Admin, &body).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }

    /// Triggers a flow with `?wait=true` as the admin and returns the ended execution.
    pub async fn run(&self, namespace: &str, flow: &str) -> Value {
        let path = format!("/api/v1/main/executions/{namespace}/{flow}?wait=true");
        let answer = self.send(Method::POST, &path, Who::Admin, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()
    }

    /// An execution as the API answers it.
    pub async fn execution(&self, id: &str) -> Value {
        let answer = self
            .get(&format!("/api/v1/main/executions/{id}"), Who::Admin)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()
    }

    /// The execution once it ended, polled (tests wait for the end, never for a time).
    pub async fn ended(&self, id: &str) -> Value {
        for _ in 0..400 {
            let execution = self.execution(id).await;
            let state = execution["state"]["current"].as_str().unwrap().to_owned();
            if !["CREATED", "RUNNING", "RESTARTED"].contains(&state.as_str()) {
                return execution;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("execution {id} did not end");
    }

    /// Every answer so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Panics if any answer so far holds one of `values`.
    pub fn assert_never_answered(&self, values: &[&str]) {
        for answer in self.seen() {
            for value in values {
                assert!(
                    !answer.contains(value),
                    "an answer holds a secret value: {answer}"
                );
            }
        }
    }
}

/// A flow that logs a namespace secret, then returns a value.
pub fn logging_flow(namespace: &str, id: &str, key: &str) -> String {
    format!(
        "id: {id}\nnamespace: {namespace}\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"the secret is {{{{ secret('{key}') }}}}\"\n  - id: done\n    type: io.kestra.plugin.core.debug.Return\n    format: \"ok {{{{ secret('{key}') | upper }}}}\"\n"
    )
}
