//! Signing in and out. The login form carries a CSRF token of its own (in a cookie and in the
//! form: no session exists yet); the password is checked as the API checks `Basic`
//! credentials, with the same rate limit on failures.

use super::Ui;
use super::page::{self, UiError};
use super::session::{
    self, COOKIE, Current, LOGIN_COOKIE, cookie, safe_next, same_token, set_cookie,
};
use crate::auth::client_of;
use crate::error::AppError;
use axum::extract::{Form, FromRequest as _, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Redirect, Response};
use base64::Engine as _;
use kestrel_store::Actor;
use minijinja::context;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;
use zeroize::Zeroizing;

/// How long a login form may stay open.
const FORM_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Debug, Deserialize)]
pub(super) struct Shown {
    next: Option<String>,
    out: Option<String>,
}

/// The login form as posted. `Debug` leaves the password out.
#[derive(Deserialize)]
pub(super) struct Posted {
    #[serde(default)]
    username: String,
    #[serde(default, deserialize_with = "session::zeroizing")]
    password: Zeroizing<String>,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

impl fmt::Debug for Posted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Posted")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The login page with a fresh form token, and `message` (an error) when there is one.
fn login_page(
    secure: bool,
    status: StatusCode,
    next: &str,
    username: &str,
    message: Option<&str>,
    signed_out: bool,
) -> Response {
    let token = match session::random_token() {
        Ok(token) => token,
        Err(cause) => return page::fault("draw a login form token", &cause),
    };
    let values = context! {
        title => "Sign in",
        csrf => token,
        next,
        username,
        message,
        signed_out,
    };
    let mut response = page::respond(status, "login.html", values);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(secure, LOGIN_COOKIE, &token, Some(FORM_LIFETIME)),
    );
    response
}

pub(super) async fn form(
    State(ui): State<Ui>,
    Query(shown): Query<Shown>,
    headers: HeaderMap,
) -> Response {
    // Nobody to sign in as yet: the first admin is created first.
    if super::setup::open(&ui).await {
        return Redirect::to("/ui/setup").into_response();
    }
    let next = safe_next(shown.next.as_deref());
    // Without authentication every page opens as it is.
    let signed_in = !ui.app.options().auth.enabled
        || cookie(&headers, COOKIE).is_some_and(|id| ui.sessions.is_live(&id));
    if signed_in {
        return Redirect::to(&next).into_response();
    }
    login_page(
        session::secure_cookies(&ui, &headers),
        StatusCode::OK,
        &next,
        "",
        None,
        shown.out.is_some(),
    )
}

pub(super) async fn submit(State(ui): State<Ui>, request: Request) -> Response {
    let headers = request.headers().clone();
    let secure = session::secure_cookies(&ui, &headers);
    let client = client_of(&request);
    let Ok(Form(posted)) = Form::<Posted>::from_request(request, &()).await else {
        return page::error_page(UiError::new(
            StatusCode::BAD_REQUEST,
            "The sign-in form cannot be read.",
        ));
    };
    let next = safe_next(posted.next.as_deref());
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_token(&posted.csrf, &expected) {
        let message = "The sign-in form expired. Please sign in again.";
        return login_page(
            secure,
            StatusCode::FORBIDDEN,
            &next,
            &posted.username,
            Some(message),
            false,
        );
    }
    let credentials = Zeroizing::new(format!("{}:{}", posted.username, posted.password.as_str()));
    let basic = Zeroizing::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials.as_bytes())
    ));
    let caller = match ui.app.0.auth.authenticate(Some(&basic), &client).await {
        Ok(caller) if !posted.username.contains(':') => caller,
        Ok(_) | Err(AppError::Unauthorized(_)) => {
            let message = "Wrong user name or password.";
            return login_page(
                secure,
                StatusCode::UNAUTHORIZED,
                &next,
                &posted.username,
                Some(message),
                false,
            );
        }
        Err(error) => {
            let message = error.to_string();
            return login_page(
                secure,
                error.status(),
                &next,
                &posted.username,
                Some(&message),
                false,
            );
        }
    };
    if let Some(old) = cookie(&headers, COOKIE) {
        ui.sessions.end(&old);
    }
    let id = match ui.sessions.start(caller) {
        Ok(id) => id,
        Err(cause) => return page::fault("start a session", &cause),
    };
    let mut response = Redirect::to(&next).into_response();
    let set = response.headers_mut();
    set.append(header::SET_COOKIE, session::session_cookie(secure, &id));
    set.append(
        header::SET_COOKIE,
        set_cookie(secure, LOGIN_COOKIE, "", None),
    );
    response
}

pub(super) async fn logout(State(ui): State<Ui>, current: Current, headers: HeaderMap) -> Response {
    ui.sessions.end(&current.id);
    let signed_out = matches!(current.caller.actor(), Actor::User(_));
    let target = if signed_out {
        "/ui/login?out=1"
    } else {
        "/ui/login"
    };
    let mut response = Redirect::to(target).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(session::secure_cookies(&ui, &headers), COOKIE, "", None),
    );
    response
}
