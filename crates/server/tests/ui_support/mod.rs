//! A browser without a browser: requests to the UI through the router (`oneshot`), with a
//! cookie jar and the CSRF token of the last page, and every answer kept so that a test can
//! check that none held a secret value.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // Test helpers: a failure is a failed test.

use crate::common::{ADA_PASSWORD, Answer, Harness};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use std::collections::HashMap;
use std::sync::Mutex;

/// A page as the client saw it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub html: String,
}

impl Page {
    /// Where a redirect goes.
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Set-Cookie` headers.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> Option<String> {
        let marker = "name=\"csrf\" value=\"";
        let start = self.html.find(marker)? + marker.len();
        let end = self.html[start..].find('"')?;
        Some(self.html[start..start + end].to_owned())
    }

    /// Panics unless this is a redirect to `target`.
    pub fn assert_redirect(&self, target: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.html);
        assert_eq!(self.location(), target);
    }
}

/// One person at a browser.
pub struct Client<'h> {
    harness: &'h Harness,
    cookies: Mutex<HashMap<String, String>>,
    csrf: Mutex<Option<String>>,
    seen: Mutex<Vec<String>>,
}

impl<'h> Client<'h> {
    pub fn new(harness: &'h Harness) -> Self {
        Self {
            harness,
            cookies: Mutex::new(HashMap::new()),
            csrf: Mutex::new(None),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// The cookie `name`, if the server set one.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    /// Sets a cookie as a browser would send it (e.g. an old session id).
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }

    /// The CSRF token of the last page that had one.
    pub fn csrf(&self) -> String {
        self.csrf
            .lock()
            .unwrap()
            .clone()
            .expect("no page with a form was seen")
    }

    async fn send(&self, method: Method, path: &str, form: Option<String>) -> Page {
        let body = form.map(|body| ("application/x-www-form-urlencoded", body));
        self.send_body(method, path, body, None).await
    }

    /// Sends `body` (its content type and text) with the session's cookies, and `csrf` in the
    /// token's header when given.
    async fn send_body(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, String)>,
        csrf: Option<&str>,
    ) -> Page {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = csrf {
            request = request.header("x-csrf-token", token);
        }
        let jar: Vec<String> = self
            .cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !jar.is_empty() {
            request = request.header(header::COOKIE, jar.join("; "));
        }
        let request = match body {
            Some((content_type, body)) => request
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body)),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let Answer {
            status,
            headers,
            text,
        } = self.harness.call(request).await;
        let page = Page {
            status,
            headers,
            html: text,
        };
        self.remember(&page);
        page
    }

    fn remember(&self, page: &Page) {
        for set in page.set_cookies() {
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let mut cookies = self.cookies.lock().unwrap();
            if set.contains("Max-Age=0") {
                cookies.remove(name);
            } else {
                cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        if let Some(token) = page.csrf() {
            *self.csrf.lock().unwrap() = Some(token);
        }
        self.seen.lock().unwrap().push(page.html.clone());
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    /// Posts `fields` as they are (no token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send(Method::POST, path, Some(body)).await
    }

    /// Posts `fields` with the CSRF token of the last page, as its form would.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf();
        let mut with_token = vec![("csrf", token.as_str())];
        with_token.extend_from_slice(fields);
        self.post_raw(path, &with_token).await
    }

    /// Posts `json` as the flow editor's script does: the session's token in its header.
    pub async fn post_json(&self, path: &str, json: &serde_json::Value) -> Page {
        let token = self.csrf();
        let body = Some(("application/json", json.to_string()));
        self.send_body(Method::POST, path, body, Some(&token)).await
    }

    /// Signs in as `user` through the login form; the answer to the form.
    pub async fn sign_in(&self, user: &str, password: &str) -> Page {
        self.get("/ui/login").await;
        self.post("/ui/login", &[("username", user), ("password", password)])
            .await
    }

    /// Signs in as `ada` (every namespace, secrets write) and lands on the home page.
    pub async fn ada(harness: &'h Harness) -> Self {
        let client = Self::new(harness);
        let answer = client.sign_in("ada", ADA_PASSWORD).await;
        answer.assert_redirect("/ui/namespaces");
        client.get("/ui/namespaces").await;
        client
    }

    /// Panics if any page so far holds one of `values`.
    pub fn assert_never_shown(&self, values: &[&str]) {
        for html in self.seen.lock().unwrap().iter() {
            for value in values {
                assert!(!html.contains(value), "a page holds a secret value: {html}");
            }
        }
    }
}
