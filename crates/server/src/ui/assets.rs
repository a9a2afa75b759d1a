//! The UI's stylesheet, scripts and icon, compiled into the binary and public (the login page
//! needs them). The flow editor's script is CodeMirror 6 with kestrel's glue, built from
//! `crates/server/editor` by `scripts/build-editor` and committed, so that no build of kestrel
//! needs Node.js.

use super::page::UiError;
use crate::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Every asset: name, content type, content.
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/app.js"),
    ),
    (
        "editor.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/editor.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../static/favicon.svg"),
    ),
];

pub(super) async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // Assets change with the binary only; a short cache keeps upgrades visible.
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            *body,
        )
            .into_response(),
        None => {
            UiError::new(StatusCode::NOT_FOUND, format!("No asset named '{file}'")).into_response()
        }
    }
}
