//! The first admin's setup page (see [`crate::setup`]): public while nobody can sign in, a
//! form of its own CSRF token (as the login form), the one-time code, a name and a password
//! typed twice. It creates the user with secret access write over every namespace and signs
//! them in.

use super::Ui;
use super::page::{self, UiError};
use super::session::{self, LOGIN_COOKIE, cookie, same_token, set_cookie};
use axum::extract::{Form, FromRequest as _, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Redirect, Response};
use chrono::Utc;
use kestrel_store::{Actor, SecretAccess, UserRecord};
use minijinja::context;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;
use zeroize::Zeroizing;

/// The shortest password the first admin may choose.
const MIN_PASSWORD: usize = 12;

/// How long the form may stay open.
const FORM_LIFETIME: Duration = Duration::from_secs(3600);

/// The setup form as posted. `Debug` leaves the code and passwords out.
#[derive(Deserialize)]
pub(super) struct Posted {
    #[serde(default, deserialize_with = "session::zeroizing")]
    code: Zeroizing<String>,
    #[serde(default)]
    username: String,
    #[serde(default, deserialize_with = "session::zeroizing")]
    password: Zeroizing<String>,
    #[serde(default, deserialize_with = "session::zeroizing")]
    again: Zeroizing<String>,
    #[serde(default)]
    csrf: String,
}

impl fmt::Debug for Posted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Posted")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The form, with a fresh token, and `message` when the last attempt failed.
fn setup_page(secure: bool, status: StatusCode, username: &str, message: Option<&str>) -> Response {
    let token = match session::random_token() {
        Ok(token) => token,
        Err(cause) => return page::fault("draw a setup form token", &cause),
    };
    let values = context! {
        title => "Set up kestrel",
        csrf => token,
        username,
        message,
        min_length => MIN_PASSWORD,
    };
    let mut response = page::respond(status, "setup.html", values);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(secure, LOGIN_COOKIE, &token, Some(FORM_LIFETIME)),
    );
    response
}

/// Whether the setup page is open: nobody can sign in yet.
pub(super) async fn open(ui: &Ui) -> bool {
    crate::setup::nobody_can_sign_in(&ui.app).await
}

pub(super) async fn form(State(ui): State<Ui>, headers: HeaderMap) -> Response {
    if !open(&ui).await {
        return Redirect::to("/ui/login").into_response();
    }
    setup_page(
        session::secure_cookies(&ui, &headers),
        StatusCode::OK,
        "",
        None,
    )
}

pub(super) async fn submit(State(ui): State<Ui>, request: Request) -> Response {
    let headers = request.headers().clone();
    let secure = session::secure_cookies(&ui, &headers);
    if !open(&ui).await {
        return Redirect::to("/ui/login").into_response();
    }
    let Ok(Form(posted)) = Form::<Posted>::from_request(request, &()).await else {
        return page::error_page(UiError::new(
            StatusCode::BAD_REQUEST,
            "The setup form cannot be read.",
        ));
    };
    let refuse =
        |status, message: &str| setup_page(secure, status, &posted.username, Some(message));
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_token(&posted.csrf, &expected) {
        return refuse(
            StatusCode::FORBIDDEN,
            "The form expired. Please fill it in again.",
        );
    }
    if let Err(message) = check(&posted) {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, &message);
    }
    if !ui.app.0.first_admin.redeem(&posted.code) {
        return refuse(
            StatusCode::FORBIDDEN,
            "That is not this server's one-time code (it is on the server's log, and works once).",
        );
    }
    match create_admin(&ui, &posted).await {
        Ok(response) => {
            let mut response = response;
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(secure, LOGIN_COOKIE, "", None),
            );
            response
        }
        Err(error) => page::error_page(error),
    }
}

/// Why the name or the passwords cannot be used, if they cannot.
fn check(posted: &Posted) -> Result<(), String> {
    let name = posted.username.trim();
    if name.is_empty() || name.contains(':') || name.chars().any(char::is_whitespace) {
        return Err("A user name is needed, without spaces or ':'.".into());
    }
    if posted.password.chars().count() < MIN_PASSWORD {
        return Err(format!(
            "The password needs at least {MIN_PASSWORD} characters."
        ));
    }
    if posted.password != posted.again {
        return Err("The two passwords differ.".into());
    }
    Ok(())
}

/// Stores the admin and signs them in: a redirect home with the session's cookie.
async fn create_admin(ui: &Ui, posted: &Posted) -> Result<Response, UiError> {
    let password_hash = crate::auth::hash_password(&posted.password)
        .map_err(|cause| UiError::new(StatusCode::INTERNAL_SERVER_ERROR, cause))?;
    let user = UserRecord {
        name: posted.username.trim().to_owned(),
        password_hash,
        namespaces: Vec::new(),
        secrets: SecretAccess::Write,
        created_at: Utc::now(),
    };
    ui.app.store().add_user(&user).await?;
    crate::log::info(&format!(
        "the first admin '{}' was created on /ui/setup",
        user.name
    ));
    let caller = crate::auth::Caller::new(Actor::User(user.name), Vec::new(), SecretAccess::Write);
    let id = ui
        .sessions
        .start(caller)
        .map_err(|cause| UiError::new(StatusCode::INTERNAL_SERVER_ERROR, cause))?;
    let mut response = Redirect::to(super::HOME).into_response();
    let secure = ui.app.options().public_https();
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::session_cookie(secure, &id));
    Ok(response)
}
