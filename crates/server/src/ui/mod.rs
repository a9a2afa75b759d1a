//! The web UI, served by the same router as the API: server-rendered pages (minijinja
//! templates compiled into the binary, every value HTML-escaped), a stylesheet and a small
//! script, no build step and no Node.js.
//!
//! Signing in makes a server-side session ([`session`]); every page but the login page needs
//! one, and every request that changes something carries the session's CSRF token. Rights are
//! the API's: a page of a namespace the caller does not reach answers 403, secrets need the
//! caller's secret access, and every change of a secret is audited with the signed-in user.
//! Secret values go one way only, from a password field into the store: no page ever holds
//! one.

mod assets;
mod audit;
mod editor;
mod executions;
mod flows;
mod login;
mod namespaces;
mod page;
mod revisions;
mod secrets;
mod session;
mod setup;

use crate::state::AppState;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use session::Sessions;
use std::sync::Arc;

/// Where a signed-in person lands.
pub(super) const HOME: &str = "/ui/namespaces";

/// What the UI's handlers share: the server's state and the sessions.
#[derive(Clone)]
pub(crate) struct Ui {
    app: AppState,
    sessions: Arc<Sessions>,
}

/// The UI's routes: the login page and the assets are public, every other page needs a
/// session. Merged into [`crate::app`].
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let ui = Ui {
        app: state.clone(),
        sessions: Arc::new(Sessions::default()),
    };
    let pages = Router::new()
        .route("/ui/logout", post(login::logout))
        .route("/ui/namespaces", get(namespaces::list))
        .route("/ui/namespace", get(namespaces::open))
        .route("/ui/namespaces/{namespace}", get(namespaces::home))
        .route("/ui/namespaces/{namespace}/flows", get(namespaces::flows))
        .route("/ui/namespaces/{namespace}/flows/new", get(flows::new))
        .route(
            "/ui/namespaces/{namespace}/executions",
            get(namespaces::executions),
        )
        .route(
            "/ui/namespaces/{namespace}/secrets",
            get(secrets::tab).post(secrets::add),
        )
        .route(
            "/ui/namespaces/{namespace}/secrets/{key}",
            get(secrets::edit),
        )
        .route(
            "/ui/namespaces/{namespace}/secrets/{key}/value",
            post(secrets::replace),
        )
        .route(
            "/ui/namespaces/{namespace}/secrets/{key}/meta",
            post(secrets::describe),
        )
        .route(
            "/ui/namespaces/{namespace}/secrets/{key}/delete",
            post(secrets::delete),
        )
        .route(
            "/ui/namespaces/{namespace}/secrets/{key}/versions/{version}/{action}",
            post(secrets::version_action),
        )
        .route("/ui/flows", post(flows::create))
        .route("/ui/flows/check", post(editor::check))
        .route(
            "/ui/namespaces/{namespace}/editor-hints",
            get(editor::hints),
        )
        .route(
            "/ui/flows/{namespace}/{id}",
            get(flows::edit).post(flows::save),
        )
        .route("/ui/flows/{namespace}/{id}/run", post(flows::run))
        .route("/ui/flows/{namespace}/{id}/revisions", get(revisions::page))
        .route("/ui/executions", get(namespaces::all_executions))
        .route("/ui/executions/{id}", get(executions::page))
        .route("/ui/executions/{id}/follow", get(executions::follow))
        .route("/ui/executions/{id}/kill", post(executions::kill))
        .route("/ui/executions/{id}/restart", post(executions::restart))
        .route("/ui/executions/{id}/replay", post(executions::replay))
        .route("/ui/executions/{id}/logs", get(executions::logs))
        .route("/ui/executions/{id}/resume", post(executions::resume))
        .route("/ui/executions/{id}/file", get(executions::file))
        .route(
            "/ui/executions/{id}/file/download",
            get(executions::download),
        )
        .route("/ui/audit", get(audit::page))
        .route_layer(axum::middleware::from_fn_with_state(
            ui.clone(),
            session::require,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to(HOME) }))
        .route("/ui", get(|| async { Redirect::to(HOME) }))
        .route("/ui/", get(|| async { Redirect::to(HOME) }))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/setup", get(setup::form).post(setup::submit))
        .route("/ui/static/{file}", get(assets::serve))
        .route("/api", get(api_explorer))
        // Known pages match first; any other /ui/ path is a 404 page, signed in or not.
        .route("/ui/{*unknown}", get(not_found))
        .merge(pages)
        .layer(axum::middleware::map_response(protect))
        .with_state(ui)
}

/// The inputs of a run or resume form: its `input.<id>` fields; an empty field is an input
/// not given (its default, or its absence, applies).
fn form_inputs(fields: Vec<(String, String)>) -> Vec<(String, kestrel_secrets::SecretValue)> {
    fields
        .into_iter()
        .filter_map(|(name, value)| {
            let input = name.strip_prefix("input.")?;
            (!value.is_empty())
                .then(|| (input.to_owned(), kestrel_secrets::SecretValue::new(value)))
        })
        .collect()
}

/// The API explorer: every route of the table, who may call it and what it takes (public,
/// as the OpenAPI document is).
async fn api_explorer() -> Response {
    let values = minijinja::context! {
        title => "REST API",
        routes => crate::openapi::explorer_rows(),
    };
    page::respond(axum::http::StatusCode::OK, "api.html", values)
}

/// The page of a `/ui/` path that is none.
async fn not_found() -> Response {
    page::error_page(page::UiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "There is no such page. The namespaces are a good place to start again.",
    ))
}

/// Headers of every UI answer: scripts and styles from this site only, no framing, no
/// caching of pages (they show what the caller may see).
async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::CACHE_CONTROL, "no-store");
    response
}
