//! The route table: every route once, with its method, path, summary and parameters. [`app`]
//! builds the router from it, and `/api/openapi.json` is generated from it, so the two cannot
//! drift apart.

mod executions;
mod files;
mod flows;
mod logs;
mod namespaces;
mod secrets;
mod system;
mod webhook;

use crate::auth;
use crate::error::AppError;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodFilter, MethodRouter, on};
use std::collections::BTreeMap;

/// What a route reads in its body, for the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// Nothing.
    None,
    /// A flow's YAML.
    Yaml,
    /// A JSON object.
    Json,
    /// Inputs: nothing, `multipart/form-data` or a JSON object.
    Inputs,
    /// Anything (a webhook's request).
    Any,
}

/// Who may call a route (what the reference says; the handler checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone, without credentials (health; webhooks, whose key is the credential).
    Public,
    /// Any user or token.
    SignedIn,
    /// A user or token whose namespaces reach the namespace concerned (listings keep to them).
    Namespace,
    /// Also secret access `read` (or `write`).
    SecretsRead,
    /// Also secret access `write`.
    SecretsWrite,
}

impl Access {
    /// Whether credentials are needed.
    pub(crate) fn is_public(self) -> bool {
        self == Access::Public
    }

    /// How the API reference says it.
    pub(crate) fn described(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::SignedIn => "any user or token",
            Access::Namespace => "a user or token reaching the namespace",
            Access::SecretsRead => "the namespace, with secret access read or write",
            Access::SecretsWrite => "the namespace, with secret access write",
        }
    }
}

/// One route.
pub(crate) struct Route {
    /// `get`, `post`, `put`, `patch` or `delete`.
    pub(crate) method: &'static str,
    /// The path, `{name}` for a path parameter (axum's syntax and OpenAPI's alike).
    pub(crate) path: &'static str,
    /// One line for the OpenAPI document.
    pub(crate) summary: &'static str,
    /// Query parameters: name and description.
    pub(crate) query: &'static [(&'static str, &'static str)],
    /// What the body holds.
    pub(crate) body: Body,
    /// The status of a success.
    pub(crate) ok: u16,
    /// Who may call it.
    pub(crate) access: Access,
    /// The handler, on the route's method.
    pub(crate) handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

const PAGING: [(&str, &str); 2] = [
    ("page", "The page, from 1 (default 1)"),
    ("size", "Results per page (default 10)"),
];

/// Every route of the server.
pub(crate) const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/health",
        summary: "Whether the server and its database are up",
        query: &[],
        body: Body::None,
        ok: 200,
        access: Access::Public,
        handler: |m| on(m, system::health),
    },
    Route {
        method: "get",
        path: "/api/openapi.json",
        summary: "This document",
        query: &[],
        body: Body::None,
        ok: 200,
        access: Access::Public,
        handler: |m| on(m, system::openapi),
    },
    Route {
        method: "post",
        path: "/api/v1/main/flows",
        summary: "Create a flow from its YAML",
        query: &[],
        body: Body::Yaml,
        ok: 200,
        access: Access::Namespace,
        handler: |m| on(m, flows::create),
    },
    Route {
        method: "post",
        path: "/api/v1/main/flows/validate",
        summary: "Validate flows (YAML documents separated by ---)",
        query: &[],
        body: Body::Yaml,
        ok: 200,
        access: Access::SignedIn,
        handler: |m| on(m, flows::validate),
    },
    Route {
        method: "get",
        path: "/api/v1/main/flows/search",
        summary: "Search flows",
        query: &[
            ("namespace", "Only this namespace and its children"),
            ("q", "Only flows whose id contains this"),
            PAGING[0],
            PAGING[1],
        ],
        body: Body::None,
        ok: 200,
        access: Access::Namespace,
        handler: |m| on(m, flows::search),
    },
    Route {
        method: "get",
        path: "/api/v1/main/flows/{namespace}/{id}",
        summary: "Get a flow",
        query: &[],
        body: Body::None,
        ok: 200,
        access: Access::Namespace,
        handler: |m| on(m, flows::get),
    },
    Route {
        method: "put",
        path: "/api/v1/main/flows/{namespace}/{id}",
        summary: "Update a flow from its YAML (a new revision)",
        query: &[],
        body: Body::Yaml,
        ok: 200,
        access: Access::Namespace,
        handler: |m| on(m, flows::update),
    },
    Route {
        method: "delete",
        path: "/api/v1/main/flows/{namespace}/{id}",
        summary: "Delete a flow",
        query: &[],
        body: Body::None,
        ok: 204,
        access: Access::Namespace,
        handler: |m| on(m, flows::delete),
    },
    Route {
        method: "post",
        path: "/api/v1/main/executions/{namespace}/{flowId}",
        summary: "Trigger an execution, with inputs as multipart/form-data or JSON",
        query: &[(
            "wait",
            "true: answer once the execution ended; else the execution as created (CREATED)",
        )],
        body: Body::Inputs,
        ok: 200,
        access: Access::Namespace,
        // File parts stream into the storage under its own bound; text parts and JSON
        // bodies count against the inputs' limit as they are read.
        handler: |m| on(m, executions::trigger).layer(DefaultBodyLimit::disable()),
    },
    Route {
        method: "get",
        path: "/api/v1/main/executions/search",
        summary: "Search executions, newest first",
        query: &[
            ("namespace", "Only this namespace and its children"),
            ("flowId", "Only this flow"),
            ("state", "Only executions in this state"),
            (
                "startDate",
                "Only executions created at this RFC 3339 instant or later",
            ),
            (
                "endDate",
                "Only executions created before this RFC 3339 instant",
            ),
            (
                "labels",
                "Only executions with this label, key:value (repeat for several)",
            ),
            PAGING[0],
            PAGING[1],
        ],
        body: Body::None,
        ok: 200,
        access: Access::Namespace,
        handler: |m| on(m, executions::search),
    },
    Route {
        method: "get",
        path: "/api/v1/main/executions/{executionId}",
        summary: "Get an execution",
        query: &[],
        body: Body::None,
        ok: 200,
        access: Access::Namespace,
        handler: |m| on(m, executions::get),
    },
    Route {
        method: "delete",
        path: "/api/v1/main/executions/{executionId}/kill",
        summary: "Kill an execution",
        query: &[],
        body: Body::None,
        ok: 202,
        access: Access::Namespace,
        handler: |m| on(m, executions::kill),
    },
    Route {
        method: "post",
        path: "/api/v1/main/executions/{executionId}/resume",
        summary: "Resume a paused execution, with its Pause's onResume inputs as multipart/form-data or JSON",
        query: &[],
        body: Body::Inputs,
        ok: 204,
        access: Access::Namespace,
        handler: |m| on(m, executions::resume),
    },
    Route {
        method: "post",
        path: "/api/v1/main/executions/{executionId}/restart",
        summary: "Restart an ended execution: its failed task runs run again under its id, the others are kept",
        query: &[],
        body: Body::None,
        ok: 200,
        access: Access::Namespace,
        handler: |m| on(m, executions::restart),
    },
    Route {
        method: "post",
        path: "/api/v1/main/executions/{executionId}/replay",
        summary: "Replay an ended execution as a new one, from one of its task runs (from the start without taskRunId): the task runs before it are kept",
        query: &[("taskRunId", "The task run to run again from")],
        body: Body::None,
        ok: 200,
        access: Access::Namespace,
        handler: |m| on(m, executions::replay),
    },
    Route {
        method: "get",
        path: "/api/v1/main/executions/{executionId}/file",
        summary: "Download a file of an ended execution (masked when it ended)",
        query: &[("path", "The file's kestra:/// URI")],
        body: Body::None,
        ok: 200,
        access: Access::Namespace,
        handler: |m| on(m, files::file),
    },
    Route {
        method: "get",
        path: "/api/v1/main/executions/{executionId}/file/metas",
        summary: "The size of a file of an ended execution",
        query: &[("path", "The file's kestra:/// URI")],
        body: Body::None,
        ok: 200,
        access: Access::Namespace,
        handler: |m| on(m, files::metas),
    },
    Route {
        method: "get",
        path: "/api/v1/main/executions/webhook/{namespace}/{flowId}/{key}",
        summary: "Trigger a flow by its Webhook trigger's key (204, nothing started, when its conditions do not hold)",
        query: &[],
        body: Body::None,
        ok: 200,
        access: Access::Public,
        handler: |m| on(m, webhook::trigger),
    },
    Route {
        method: "post",
        path: "/api/v1/main/executions/webhook/{namespace}/{flowId}/{key}",
        summary: "Trigger a flow by its Webhook trigger's key, with a body (204, nothing started, when its conditions do not hold)",
        query: &[],
        body: Body::Any,
        ok: 200,
        access: Access::Public,
        handler: |m| on(m, webhook::trigger),
    },
    Route {
        method: "put",
        path: "/api/v1/main/executions/webhook/{namespace}/{flowId}/{key}",
        summary: "Trigger a flow by its Webhook trigger's key, with a body, as POST does",
        query: &[],
        body: Body::Any,
        ok: 200,
        access: Access::Public,
        handler: |m| on(m, webhook::trigger),
    },
    Route {
        method: "get",
        path: "/api/v1/main/logs/{executionId}",
        summary: "An execution's log entries (the last attempt of each task run by default)",
        query: &[
            ("minLevel", "TRACE, DEBUG, INFO, WARN or ERROR"),
            ("taskId", "Only this task's entries"),
            ("attempt", "An attempt number, or all"),
        ],
        body: Body::None,
        ok: 200,
        access: Access::Namespace,
        handler: |m| on(m, logs::list),
    },
    Route {
        method: "get",
        path: "/api/v1/main/logs/{executionId}/follow",
        summary: "Follow an execution's log entries (Server-Sent Events)",
        query: &[],
        body: Body::None,
        ok: 200,
        access: Access::Namespace,
        handler: |m| on(m, logs::follow),
    },
    Route {
        method: "get",
        path: "/api/v1/main/namespaces/search",
        summary: "Namespaces named by flows and secrets",
        query: &[
            ("q", "Only namespaces containing this"),
            PAGING[0],
            PAGING[1],
        ],
        body: Body::None,
        ok: 200,
        access: Access::SignedIn,
        handler: |m| on(m, namespaces::search),
    },
    Route {
        method: "get",
        path: "/api/v1/main/namespaces/{namespace}",
        summary: "Get a namespace",
        query: &[],
        body: Body::None,
        ok: 200,
        access: Access::Namespace,
        handler: |m| on(m, namespaces::get),
    },
    Route {
        method: "put",
        path: "/api/v1/main/namespaces/{namespace}/secrets",
        summary: "Create or update a secret (the value is write-only)",
        query: &[],
        body: Body::Json,
        ok: 200,
        access: Access::SecretsWrite,
        handler: |m| on(m, secrets::put),
    },
    Route {
        method: "get",
        path: "/api/v1/main/namespaces/{namespace}/secrets",
        summary: "A namespace's secrets, metadata only",
        query: &PAGING,
        body: Body::None,
        ok: 200,
        access: Access::SecretsRead,
        handler: |m| on(m, secrets::list),
    },
    Route {
        method: "get",
        path: "/api/v1/main/namespaces/{namespace}/inherited-secrets",
        summary: "The keys a namespace inherits, by ancestor namespace",
        query: &[],
        body: Body::None,
        ok: 200,
        access: Access::SecretsRead,
        handler: |m| on(m, secrets::inherited),
    },
    Route {
        method: "patch",
        path: "/api/v1/main/namespaces/{namespace}/secrets/{key}",
        summary: "Change a secret's description and tags",
        query: &[],
        body: Body::Json,
        ok: 200,
        access: Access::SecretsWrite,
        handler: |m| on(m, secrets::patch),
    },
    Route {
        method: "delete",
        path: "/api/v1/main/namespaces/{namespace}/secrets/{key}",
        summary: "Delete a secret",
        query: &[],
        body: Body::None,
        ok: 204,
        access: Access::SecretsWrite,
        handler: |m| on(m, secrets::delete),
    },
    Route {
        method: "get",
        path: "/api/v1/main/secrets",
        summary: "Secrets across namespaces, metadata only",
        query: &[
            ("filters[namespace][EQUALS]", "Only this namespace"),
            PAGING[0],
            PAGING[1],
        ],
        body: Body::None,
        ok: 200,
        access: Access::SecretsRead,
        handler: |m| on(m, secrets::search),
    },
];

fn method_filter(method: &str) -> MethodFilter {
    match method {
        "post" => MethodFilter::POST,
        "put" => MethodFilter::PUT,
        "patch" => MethodFilter::PATCH,
        "delete" => MethodFilter::DELETE,
        _ => MethodFilter::GET,
    }
}

/// The server's router: every route of [`ROUTES`], the protected ones behind authentication.
/// Tests call it without a socket (`oneshot`).
pub fn app(state: AppState) -> Router {
    let mut public: BTreeMap<&str, MethodRouter<AppState>> = BTreeMap::new();
    let mut protected: BTreeMap<&str, MethodRouter<AppState>> = BTreeMap::new();
    for route in ROUTES {
        let side = if route.access.is_public() {
            &mut public
        } else {
            &mut protected
        };
        let handler = (route.handler)(method_filter(route.method));
        let merged = match side.remove(route.path) {
            Some(known) => known.merge(handler),
            None => handler,
        };
        side.insert(route.path, merged);
    }
    let into_router = |routes: BTreeMap<&str, MethodRouter<AppState>>| {
        routes
            .into_iter()
            .fold(Router::new(), |router, (path, handler)| {
                router.route(path, handler)
            })
    };
    let protected = into_router(protected).route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require,
    ));
    into_router(public)
        .merge(protected)
        .merge(crate::ui::routes(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found() -> AppError {
    AppError::NotFound("No such route".into())
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed("This route does not take this method".into())
}
