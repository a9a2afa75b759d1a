//! Rendering: the templates (compiled into the binary, HTML-escaped by their `.html` names),
//! the context every page shares (who is signed in, the CSRF token, the notice of the last
//! change), and errors shown as pages.

use super::session::Current;
use crate::error::AppError;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, UndefinedBehavior, Value, context};
use serde::Serialize;
use std::sync::OnceLock;

/// Every template, by name.
const TEMPLATES: [(&str, &str); 18] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("api.html", include_str!("../../templates/api.html")),
    ("tabs.html", include_str!("../../templates/tabs.html")),
    ("pages.html", include_str!("../../templates/pages.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("setup.html", include_str!("../../templates/setup.html")),
    (
        "revisions.html",
        include_str!("../../templates/revisions.html"),
    ),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "namespaces.html",
        include_str!("../../templates/namespaces.html"),
    ),
    ("flows.html", include_str!("../../templates/flows.html")),
    (
        "executions.html",
        include_str!("../../templates/executions.html"),
    ),
    ("secrets.html", include_str!("../../templates/secrets.html")),
    ("secret.html", include_str!("../../templates/secret.html")),
    ("confirm.html", include_str!("../../templates/confirm.html")),
    ("flow.html", include_str!("../../templates/flow.html")),
    (
        "execution.html",
        include_str!("../../templates/execution.html"),
    ),
    ("audit.html", include_str!("../../templates/audit.html")),
    ("file.html", include_str!("../../templates/file.html")),
];

/// The templates, loaded once; an error names the template that does not compile.
fn environment() -> Result<&'static Environment<'static>, &'static str> {
    static ENVIRONMENT: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let mut env = Environment::new();
            // A misspelt variable fails the render (and the tests) instead of showing nothing.
            env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
            for (name, source) in TEMPLATES {
                env.add_template(name, source)
                    .map_err(|e| format!("template {name}: {e}"))?;
            }
            Ok(env)
        })
        .as_ref()
        .map_err(String::as_str)
}

/// A message shown once at the top of the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Notice {
    /// `done` or `error`.
    kind: &'static str,
    text: String,
}

impl Notice {
    /// Something that worked.
    pub(crate) fn done(text: impl Into<String>) -> Self {
        Self {
            kind: "done",
            text: text.into(),
        }
    }

    /// Something that did not.
    pub(crate) fn error(text: impl Into<String>) -> Self {
        Self {
            kind: "error",
            text: text.into(),
        }
    }
}

/// Why a page cannot be shown: a status and a message a person can act on.
#[derive(Debug)]
pub(crate) struct UiError {
    status: StatusCode,
    message: String,
}

impl UiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The status it answers.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// What the person is told.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// 403 for a form without the session's token.
    pub(crate) fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Reload the page and try again.",
        )
    }

    /// 413 for a form too large to read.
    pub(crate) fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is too large to be read.",
        )
    }
}

impl From<AppError> for UiError {
    fn from(error: AppError) -> Self {
        if let AppError::Internal(cause) = &error {
            crate::log::error(cause);
        }
        Self::new(error.status(), error.to_string())
    }
}

impl From<kestrel_store::StoreError> for UiError {
    fn from(error: kestrel_store::StoreError) -> Self {
        AppError::from(error).into()
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        error_page(self)
    }
}

/// A page of `template` for the signed-in caller, with `values` besides the shared ones.
pub(crate) fn render(current: &Current, template: &str, values: Value) -> Response {
    render_status(current, StatusCode::OK, template, values)
}

/// [`render`] with another status (a form shown again with its errors).
pub(crate) fn render_status(
    current: &Current,
    status: StatusCode,
    template: &str,
    values: Value,
) -> Response {
    let actor = current.caller.actor();
    let shared = context! {
        user => actor.id(),
        actor => actor.to_string(),
        // The Secrets tab is shown only to those who may read secrets.
        secrets_visible => current.caller.require_secret_access(kestrel_store::SecretAccess::Read).is_ok(),
        csrf => current.csrf,
        notice => current.notice,
        ..values
    };
    respond(status, template, shared)
}

/// The page of an error, for anyone (signed in or not).
pub(crate) fn error_page(error: UiError) -> Response {
    let title = error.status.canonical_reason().unwrap_or("Error");
    let values =
        context! { title, status => error.status.as_u16(), message => error.message, nav => "" };
    respond(error.status, "error.html", values)
}

/// A generic 500 whose cause goes to the log.
pub(crate) fn fault(doing: &str, cause: &str) -> Response {
    error_page(AppError::internal(doing, cause).into())
}

/// A page that is not about a signed-in caller (the login page, errors).
pub(crate) fn respond(status: StatusCode, template: &str, values: Value) -> Response {
    let rendered = environment().map_err(str::to_owned).and_then(|env| {
        env.get_template(template)
            .and_then(|t| t.render(values))
            .map_err(|e| format!("{template}: {e:#}"))
    });
    match rendered {
        Ok(html) => (status, Html(html)).into_response(),
        Err(cause) => {
            crate::log::error(&format!("render {cause}"));
            let text = "Internal server error: this page cannot be shown.";
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                text,
            )
                .into_response()
        }
    }
}

/// A duration as the pages show it, for people: `17 ms`, `5.0 s`, `2 min 05 s`, `1 h 02 min`
/// (the API keeps Java's `PT5.017S`).
pub(crate) fn human_duration(millis: i64) -> String {
    let millis = millis.max(0);
    let seconds = millis / 1000;
    match millis {
        0..1_000 => format!("{millis} ms"),
        1_000..60_000 => format!("{}.{} s", seconds, (millis % 1000) / 100),
        60_000..3_600_000 => format!("{} min {:02} s", seconds / 60, seconds % 60),
        _ => format!("{} h {:02} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

/// A date as the pages show it: UTC, to the second.
pub(crate) fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Caller;
    use kestrel_store::{Actor, SecretAccess};

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(17), "17 ms");
        assert_eq!(human_duration(5_017), "5.0 s");
        assert_eq!(human_duration(59_999), "59.9 s");
        assert_eq!(human_duration(125_000), "2 min 05 s");
        assert_eq!(human_duration(3_725_000), "1 h 02 min");
        assert_eq!(human_duration(-3), "0 ms");
    }

    #[test]
    fn every_template_compiles() {
        let env = environment().unwrap();
        for (name, _) in TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn values_are_escaped() {
        let response = error_page(UiError::new(
            StatusCode::BAD_REQUEST,
            "<script>alert(1)</script>",
        ));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let current = Current {
            id: "s".into(),
            caller: Caller::new(Actor::User("<b>".into()), Vec::new(), SecretAccess::Read),
            csrf: "t".into(),
            notice: Some(Notice::error("\"quoted\" & <tagged>")),
        };
        let env = environment().unwrap();
        let html = env
            .get_template("error.html")
            .unwrap()
            .render(context! {
                title => "x", status => 400, message => "<i>m</i>",
                user => current.caller.actor().id(), actor => "user:<b>", nav => "",
                csrf => "t", notice => current.notice,
            })
            .unwrap();
        assert!(html.contains("&lt;i&gt;m&lt;&#x2f;i&gt;"), "{html}");
        assert!(
            html.contains("&quot;quoted&quot; &amp; &lt;tagged&gt;"),
            "{html}"
        );
        assert!(!html.contains("<b>") && !html.contains("<i>"));
    }
}
