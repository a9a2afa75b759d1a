//! Sign-in sessions of the UI: random ids in an HttpOnly, SameSite=Strict cookie, kept on the
//! server (signing out ends one at once), each with its CSRF token and a one-shot notice.
//!
//! [`require`] is the middleware in front of every page but the login page: without a live
//! session it redirects to the login page; for a request that changes something it checks the
//! CSRF token (form field `csrf` or header `X-CSRF-Token`) before the handler runs.

use super::Ui;
use super::page::{self, Notice, UiError};
use crate::auth::{Caller, client_of};
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Redirect, Response};
use base64::Engine as _;
use kestrel_store::Actor;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq as _;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "kestrel_session";

/// The cookie of the login form's CSRF token (double submit: no session exists yet).
pub(crate) const LOGIN_COOKIE: &str = "kestrel_login";

/// The form field and the header that carry the CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf";
const CSRF_HEADER: &str = "x-csrf-token";

/// A session unused this long ends.
const IDLE: Duration = Duration::from_secs(2 * 3600);
/// A session ends this long after sign-in, used or not.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Above this many sessions, ended ones are swept out; the oldest go if that is not enough.
const MAX_SESSIONS: usize = 10_000;
/// The largest form a page posts (a flow's YAML).
pub(crate) const FORM_LIMIT: usize = 4 * 1024 * 1024;

/// The live sessions, by id.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

struct Session {
    caller: Caller,
    csrf: String,
    created: Instant,
    seen: Instant,
    notice: Option<Notice>,
}

/// The session of a request, as handlers see it.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    pub(crate) id: String,
    pub(crate) caller: Caller,
    pub(crate) csrf: String,
    /// The notice left by the last change, shown once.
    pub(crate) notice: Option<Notice>,
}

impl<S: Send + Sync> FromRequestParts<S> for Current {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Current>()
            .cloned()
            .ok_or_else(|| UiError::new(StatusCode::UNAUTHORIZED, "Sign in first."))
    }
}

/// 32 random bytes, URL-safe base64.
pub(crate) fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot draw random bytes: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A form field that holds a secret (a password, a one-time code), wiped when dropped.
pub(super) fn zeroizing<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<zeroize::Zeroizing<String>, D::Error> {
    <String as serde::Deserialize>::deserialize(d).map(zeroize::Zeroizing::new)
}

/// Whether two tokens are equal, in time that does not depend on where they differ.
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // Each session is inserted or removed whole: a panic cannot leave one half-written.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a session for `caller`; its id.
    pub(crate) fn start(&self, caller: Caller) -> Result<String, String> {
        let id = random_token()?;
        let now = Instant::now();
        let session = Session {
            caller,
            csrf: random_token()?,
            created: now,
            seen: now,
            notice: None,
        };
        let mut map = self.map();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| alive(s, now));
        }
        while map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(oldest) => map.remove(&oldest),
                None => break,
            };
        }
        map.insert(id.clone(), session);
        Ok(id)
    }

    /// The live session `id`, marked as seen; its notice is handed over (and forgotten) when
    /// `take_notice`.
    fn touch(&self, id: &str, take_notice: bool) -> Option<Current> {
        let now = Instant::now();
        let mut map = self.map();
        let session = map.get_mut(id)?;
        if !alive(session, now) {
            map.remove(id);
            return None;
        }
        session.seen = now;
        let notice = if take_notice {
            session.notice.take()
        } else {
            None
        };
        Some(Current {
            id: id.to_owned(),
            caller: session.caller.clone(),
            csrf: session.csrf.clone(),
            notice,
        })
    }

    /// Whether session `id` is live.
    pub(crate) fn is_live(&self, id: &str) -> bool {
        self.touch(id, false).is_some()
    }

    /// Leaves a notice for the next page of session `id`.
    pub(crate) fn notify(&self, id: &str, notice: Notice) {
        if let Some(session) = self.map().get_mut(id) {
            session.notice = Some(notice);
        }
    }

    /// Ends session `id`.
    pub(crate) fn end(&self, id: &str) {
        self.map().remove(id);
    }

    /// Replaces the caller of session `id` (its rights changed since sign-in).
    fn update(&self, id: &str, caller: &Caller) {
        if let Some(session) = self.map().get_mut(id) {
            session.caller = caller.clone();
        }
    }
}

fn alive(session: &Session, now: Instant) -> bool {
    now.saturating_duration_since(session.seen) < IDLE
        && now.saturating_duration_since(session.created) < LIFETIME
}

/// The value of cookie `name` in the request's headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Whether cookies are `Secure`: the configured public URL is `https://`, or the client
/// reached us over HTTPS through a proxy.
pub(crate) fn secure_cookies(ui: &Ui, headers: &HeaderMap) -> bool {
    ui.app.options().public_https() || behind_https(headers)
}

/// Whether the client reached us over HTTPS through a proxy.
fn behind_https(headers: &HeaderMap) -> bool {
    let forwarded = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    forwarded("x-forwarded-proto").is_some_and(|p| p.trim() == "https")
        || forwarded("forwarded").is_some_and(|f| f.contains("proto=https"))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for the whole site, `Secure` when
/// `secure` (see [`secure_cookies`]); `None` for `max_age` clears the cookie.
pub(crate) fn set_cookie(
    secure: bool,
    name: &str,
    value: &str,
    max_age: Option<Duration>,
) -> HeaderValue {
    let age = max_age.map_or(0, |age| age.as_secs());
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{secure}");
    // Ids and tokens are URL-safe base64: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The cookie of a new session.
pub(crate) fn session_cookie(secure: bool, id: &str) -> HeaderValue {
    set_cookie(secure, COOKIE, id, Some(LIFETIME))
}

/// Where the login page sends the browser back to: a page of the UI only, never elsewhere.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    // Visible ASCII only: the target goes into a `Location` header as it is.
    let plain = |n: &str| n.chars().all(|c| c.is_ascii_graphic() && c != '\\');
    next.filter(|n| n.starts_with("/ui/") && !n.contains("//") && plain(n))
        .unwrap_or(super::HOME)
        .to_owned()
}

fn to_login(request: &Request) -> Response {
    let target = if request.method() == Method::GET {
        let path = request
            .uri()
            .path_and_query()
            .map_or("/ui/namespaces", |p| p.as_str());
        let mut url = String::from("/ui/login?next=");
        url.extend(percent(path));
        url
    } else {
        "/ui/login".to_owned()
    };
    Redirect::to(&target).into_response()
}

/// Percent-encodes what a query value may not hold as is.
fn percent(text: &str) -> impl Iterator<Item = String> + '_ {
    text.bytes().map(|b| match b {
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
            (b as char).to_string()
        }
        other => format!("%{other:02X}"),
    })
}

/// The caller with the rights it has now: a user removed since sign-in has none.
async fn refreshed(ui: &Ui, caller: &Caller) -> Option<Caller> {
    let options = &ui.app.options().auth;
    let Actor::User(name) = caller.actor() else {
        return Some(caller.clone());
    };
    if !options.enabled {
        return Some(caller.clone());
    }
    let user = match options.users.iter().find(|u| &u.name == name) {
        Some(user) => Some(user.clone()),
        None => ui.app.store().user(name).await.ok()?,
    }?;
    Some(Caller::new(
        Actor::User(user.name),
        user.namespaces,
        user.secrets,
    ))
}

/// The session of a request (with its cookies in `headers`), or, with authentication off, a
/// new one for the anonymous caller; whether it was started now.
async fn session_of(
    ui: &Ui,
    headers: &HeaderMap,
    client: &str,
    take_notice: bool,
) -> Result<Option<(Current, bool)>, String> {
    if let Some(current) =
        cookie(headers, COOKIE).and_then(|id| ui.sessions.touch(&id, take_notice))
    {
        return Ok(Some((current, false)));
    }
    if ui.app.options().auth.enabled {
        return Ok(None);
    }
    let Ok(caller) = ui.app.0.auth.authenticate(None, client).await else {
        return Ok(None);
    };
    let id = ui.sessions.start(caller)?;
    Ok(ui.sessions.touch(&id, false).map(|c| (c, true)))
}

/// The middleware of every page but the login page: a live session, and the CSRF token of
/// any request that changes something.
pub(crate) async fn require(State(ui): State<Ui>, request: Request, next: Next) -> Response {
    let headers = request.headers().clone();
    let take_notice = request.method() == Method::GET;
    let client = client_of(&request);
    let (current, started) = match session_of(&ui, &headers, &client, take_notice).await {
        Ok(Some(found)) => found,
        Ok(None) => return to_login(&request),
        Err(error) => return page::fault("start a session", &error),
    };
    let Some(caller) = refreshed(&ui, &current.caller).await else {
        ui.sessions.end(&current.id);
        return to_login(&request);
    };
    if caller != current.caller {
        ui.sessions.update(&current.id, &caller);
    }
    let request = match checked(request, &current.csrf).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let mut request = request;
    let current = Current { caller, ..current };
    request.extensions_mut().insert(current.caller.clone());
    request.extensions_mut().insert(current.clone());
    let mut response = next.run(request).await;
    if started {
        response.headers_mut().append(
            header::SET_COOKIE,
            session_cookie(secure_cookies(&ui, &headers), &current.id),
        );
    }
    response
}

/// The request, once its CSRF token matched (a read passes as it is); else the answer.
async fn checked(request: Request, expected: &str) -> Result<Request, Response> {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| page::error_page(page::UiError::too_large()))?;
    let from_header = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let given = from_header.or_else(|| form_field(&bytes, CSRF_FIELD));
    if !given.is_some_and(|token| same_token(&token, expected)) {
        return Err(page::error_page(page::UiError::csrf()));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// One field of a URL-encoded form.
pub(crate) fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_store::SecretAccess;

    fn caller(name: &str) -> Caller {
        Caller::new(Actor::User(name.into()), Vec::new(), SecretAccess::Write)
    }

    #[test]
    fn a_session_is_found_by_its_id_until_it_ends() {
        let sessions = Sessions::default();
        let id = sessions.start(caller("ada")).unwrap();
        let other = sessions.start(caller("bob")).unwrap();
        assert_ne!(id, other);
        let current = sessions.touch(&id, true).unwrap();
        assert_eq!(current.caller, caller("ada"));
        assert_eq!(current.csrf.len(), 43);
        assert!(sessions.touch("forged", true).is_none());
        sessions.end(&id);
        assert!(sessions.touch(&id, true).is_none());
        assert!(sessions.touch(&other, true).is_some());
    }

    #[test]
    fn a_notice_is_shown_once_on_the_next_page() {
        let sessions = Sessions::default();
        let id = sessions.start(caller("ada")).unwrap();
        sessions.notify(&id, Notice::done("Saved"));
        assert!(sessions.touch(&id, false).unwrap().notice.is_none());
        assert_eq!(
            sessions.touch(&id, true).unwrap().notice,
            Some(Notice::done("Saved"))
        );
        assert!(sessions.touch(&id, true).unwrap().notice.is_none());
    }

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; kestrel_x=2"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("kestrel_session=abc"),
        );
        assert_eq!(cookie(&headers, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "a").as_deref(), Some("1"));
        assert_eq!(cookie(&headers, "kestrel"), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_behind_https() {
        let plain = session_cookie(false, "id1");
        assert_eq!(
            plain.to_str().unwrap(),
            "kestrel_session=id1; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200"
        );
        let secure = session_cookie(true, "id1");
        assert!(secure.to_str().unwrap().ends_with("; Secure"));
        let mut proxied = HeaderMap::new();
        assert!(!behind_https(&proxied));
        proxied.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(behind_https(&proxied));
    }

    #[test]
    fn the_login_page_only_sends_back_to_ui_pages() {
        assert_eq!(safe_next(Some("/ui/audit?x=1")), "/ui/audit?x=1");
        for bad in [
            "https://evil.example/",
            "//evil.example/ui/",
            "/ui//evil",
            "/api/v1",
            "/ui/\nSet-Cookie: x",
            "/ui/\\evil",
            "/ui/é",
        ] {
            assert_eq!(safe_next(Some(bad)), super::super::HOME, "{bad}");
        }
        assert_eq!(safe_next(None), super::super::HOME);
    }

    #[test]
    fn form_fields_are_decoded() {
        let body = b"key=A&csrf=t%2Bk+n&value=x";
        assert_eq!(form_field(body, "csrf").as_deref(), Some("t+k n"));
        assert_eq!(form_field(body, "none"), None);
    }

    #[test]
    fn tokens_compare_whole_and_never_empty() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("", ""));
    }
}
