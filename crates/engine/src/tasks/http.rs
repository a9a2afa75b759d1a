//! `io.kestra.plugin.core.http.Request`: one HTTP request, with reqwest over rustls.
//!
//! The engine keeps one client per set of connection options ([`HttpClients`]), so requests
//! of every execution reuse connections. Outputs `code`, `headers`, `body` (text, a JSON body
//! included) and `uri` are masked for readers like every output, so a server that echoes a
//! token back shows `******`; the logged request line is masked too. A response code of 400
//! or more fails the task with Kestra's message unless `options.allowFailed`.
//!
//! What the task derives from a secret itself is made maskable before anything shows it: the
//! URI as the client encodes it (masked whole when the registry does not mask it the way it
//! masks the rendered text), the upper-cased method, and a Basic header's `user:password`.
//! Errors never quote an invalid URI or method, nor reqwest's copy of the URL.

use crate::{Task, TaskContext, TaskError};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kestrel_flow::{Download, HttpAuth, HttpOptions, HttpRequest, Level};
use kestrel_secrets::{MaskRegistry, SecretValue};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::multipart::Form;
use reqwest::{Client, Method, RequestBuilder, Response, Url, redirect};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::error::Error as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Most redirects followed, as browsers and Kestra's client do.
const MAX_REDIRECTS: usize = 10;

/// The connection options a client is built with (reqwest sets them per client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ClientKey {
    connect_timeout: Option<Duration>,
    read_timeout: Duration,
    follow_redirects: bool,
}

/// The engine's HTTP clients, one per set of connection options, built when first needed.
#[derive(Debug, Default)]
pub(crate) struct HttpClients {
    clients: Mutex<HashMap<ClientKey, Client>>,
}

impl HttpClients {
    /// The client for `options` (a cheap handle on a shared connection pool).
    fn client(&self, options: &HttpOptions) -> Result<Client, TaskError> {
        let key = ClientKey {
            connect_timeout: options.connect_timeout,
            read_timeout: options.read_timeout,
            follow_redirects: options.follow_redirects,
        };
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let redirects = if key.follow_redirects {
            redirect::Policy::limited(MAX_REDIRECTS)
        } else {
            redirect::Policy::none()
        };
        let mut builder = Client::builder()
            .user_agent(concat!("kestrel/", env!("CARGO_PKG_VERSION")))
            .read_timeout(key.read_timeout)
            .redirect(redirects);
        if let Some(timeout) = key.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        let client = builder.build().map_err(|error| {
            TaskError::new(format!("Cannot build the HTTP client: {}", chain(error)))
        })?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// Runs a `Request` task.
#[derive(Debug, Clone)]
pub(crate) struct HttpTask {
    spec: HttpRequest,
}

impl HttpTask {
    pub(crate) fn new(spec: HttpRequest) -> Self {
        Self { spec }
    }
}

#[async_trait]
impl Task for HttpTask {
    async fn run(&self, ctx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let spec = &self.spec;
        let rendered = ctx.render(&spec.uri).await?;
        let url = parse_uri(&rendered)?;
        mask_uri_like_its_text(ctx.registry(), &rendered, &url);
        let method = self.method(ctx).await?;
        let client = ctx.engine().http.client(&spec.options)?;
        let failed =
            |error| TaskError::new(format!("Failed http request to {url}: {}", chain(error)));
        let request = self
            .build(ctx, client.request(method.clone(), url.clone()))
            .await?
            .build()
            .map_err(failed)?;
        register_basic_credentials(ctx.registry(), request.headers());
        ctx.log(Level::Debug, &format!("{method} {url}"));
        let response = client.execute(request).await.map_err(failed)?;
        if let Some(download) = spec.download {
            return self.download(ctx, response, &url, download).await;
        }
        let code = response.status().as_u16();
        let headers = headers_output(response.headers());
        let body = read_body(response, spec.options.max_content_length).await?;
        ctx.output("code", Value::from(code));
        ctx.output("headers", Value::Object(headers));
        ctx.output("body", Value::String(body.clone()));
        ctx.output("uri", Value::String(url.into()));
        if code >= 400 && !spec.options.allow_failed {
            let mut message = format!("Failed http request with response code '{code}'");
            if !body.is_empty() {
                message.push_str(" and body:\n");
                message.push_str(&body);
            }
            return Err(TaskError::new(message));
        }
        Ok(())
    }
}

impl HttpTask {
    /// A Download's response: its body stored as a file (named after `Content-Disposition`,
    /// else the URI's last segment), outputs `uri`, `code`, `length` and `headers`.
    async fn download(
        &self,
        ctx: &mut TaskContext<'_>,
        mut response: Response,
        url: &Url,
        download: Download,
    ) -> Result<(), TaskError> {
        let code = response.status().as_u16();
        let allow_failed = self.spec.options.allow_failed;
        if code >= 400 && !allow_failed {
            return Err(TaskError::new(format!(
                "Failed http request with response code '{code}'"
            )));
        }
        let name = file_name(response.headers(), url);
        // The name is a folder's entry in the internal storage, never masked there.
        let name = if ctx.registry().contains_secret(&name) {
            "download".to_owned()
        } else {
            name
        };
        let headers = headers_output(response.headers());
        let mut file = crate::workdir::spool_file()?;
        let mut length: u64 = 0;
        while let Some(chunk) = response.chunk().await.map_err(|error| {
            TaskError::new(format!("Failed to read the response: {}", chain(error)))
        })? {
            length += chunk.len() as u64;
            std::io::Write::write_all(&mut file, &chunk)
                .map_err(|error| TaskError::new(format!("Cannot keep the download: {error}")))?;
        }
        if length == 0 {
            if download.fail_on_empty_response && !allow_failed {
                return Err(TaskError::new("No response from server"));
            }
            ctx.log(Level::Warn, &format!("File '{url}' is empty"));
        }
        std::io::Seek::rewind(&mut file)
            .map_err(|error| TaskError::new(format!("Cannot keep the download: {error}")))?;
        let uri = ctx.store_file(&name, Box::new(file)).await?;
        ctx.output("uri", Value::String(uri));
        ctx.output("code", Value::from(code));
        ctx.output("length", Value::from(length));
        ctx.output("headers", Value::Object(headers));
        Ok(())
    }
}

/// A downloaded file's name: `Content-Disposition`'s `filename`, else the URI's last path
/// segment, else `download`; only its last path component, as a file name.
fn file_name(headers: &HeaderMap, url: &Url) -> String {
    let from_header = headers
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .split(';')
                .filter_map(|part| part.trim().strip_prefix("filename="))
                .next()
                .map(|name| name.trim_matches('"').to_owned())
        });
    let from_path = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .map(str::to_owned);
    [from_header, from_path]
        .into_iter()
        .flatten()
        .map(|name| {
            name.rsplit(['/', '\\'])
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .find(|name| !name.is_empty() && name != "." && name != "..")
        .unwrap_or_else(|| "download".to_owned())
}

/// Parses the rendered `uri` the way the HTTP client reads it (WHATWG URL parsing: characters
/// a URI cannot hold as they are, a space or `é`, are percent-encoded). The error says what is
/// wrong, never the URI: it may hold a secret in a form the masker does not know.
fn parse_uri(rendered: &str) -> Result<Url, TaskError> {
    // The parser would silently drop tabs and line breaks, sending (and showing) a value
    // that is neither the one written nor one the masker knows.
    if rendered.chars().any(|c| c.is_control()) {
        return Err(TaskError::new(
            "uri: the rendered URI holds a control character (a tab or a line break, say), which a URI cannot hold; the URI is not shown, as it may hold a secret",
        ));
    }
    Url::parse(rendered).map_err(|error| {
        TaskError::new(format!(
            "uri: the rendered URI is not a valid URI ({error}); the URI is not shown, as it may hold a secret"
        ))
    })
}

/// Makes sure no reader sees a secret in `url`, the rendered URI as the HTTP client encodes
/// it (percent-encoded, its host lower-cased or punycode, its dot segments resolved). The log
/// line, errors and the `uri` output carry it; the masker knows secrets as they are and in
/// the encoded forms it registers. When it does not mask `url` exactly as it masks the
/// rendered text, the whole of `url` is registered as derived: readers then see the mask in
/// its place rather than an encoding the masker misses.
fn mask_uri_like_its_text(registry: &MaskRegistry, rendered: &str, url: &Url) {
    if !registry.contains_secret(rendered) {
        return;
    }
    let masked_text = registry.mask(rendered);
    let expected = Url::parse(&masked_text).ok();
    let masked_url = registry.mask(url.as_str());
    if expected.as_ref().map(Url::as_str) != Some(masked_url.as_ref()) {
        registry.register_derived(url.as_str());
    }
}

/// Registers `user:password` when the request carries it in a Basic `Authorization` header
/// (from `options.auth` or the URI's user and password) and either part holds a secret: its
/// base64 is a form of neither value alone, so a server echoing the header back would show it.
fn register_basic_credentials(registry: &MaskRegistry, headers: &HeaderMap) {
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "));
    let Some(Ok(decoded)) = basic.map(|encoded| STANDARD.decode(encoded)) else {
        return;
    };
    let credentials = SecretValue::new(String::from_utf8_lossy(&decoded).into_owned());
    if registry.contains_secret(credentials.expose_secret()) {
        registry.register_derived(credentials.expose_secret());
    }
}

impl HttpTask {
    /// The rendered `method`, upper-cased as Kestra does. An upper-cased secret is a form the
    /// masker does not know: it is registered as derived before the log line shows it. An
    /// invalid method is not quoted in the error, for the same reason.
    async fn method(&self, ctx: &TaskContext<'_>) -> Result<Method, TaskError> {
        let rendered = ctx.render(&self.spec.method).await?;
        let method = rendered.to_ascii_uppercase();
        if method != rendered && ctx.registry().contains_secret(&rendered) {
            ctx.registry().register_derived(&method);
        }
        Method::from_bytes(method.as_bytes()).map_err(|_| {
            TaskError::new(
                "method: the rendered method is not an HTTP method (one word such as GET or POST, without spaces or separators); it is not shown, as it may hold a secret",
            )
        })
    }

    /// The request's headers, body and credentials, rendered.
    async fn build(
        &self,
        ctx: &TaskContext<'_>,
        request: RequestBuilder,
    ) -> Result<RequestBuilder, TaskError> {
        let spec = &self.spec;
        let content_type = ctx.render(&spec.content_type).await?;
        let mut headers = HeaderMap::new();
        let mut request = if !spec.form_data.is_empty() {
            let mut fields = Vec::with_capacity(spec.form_data.len());
            for (name, value) in &spec.form_data {
                fields.push((name.clone(), form_value(ctx, value).await?));
            }
            if content_type.eq_ignore_ascii_case("multipart/form-data") {
                let form = fields
                    .into_iter()
                    .fold(Form::new(), |form, (name, value)| form.text(name, value));
                request.multipart(form)
            } else {
                request.form(&fields)
            }
        } else {
            insert_header(&mut headers, CONTENT_TYPE.as_str(), &content_type)?;
            match &spec.body {
                Some(body) => request.body(ctx.render(body).await?),
                None => request,
            }
        };
        for (name, value) in &spec.headers {
            insert_header(&mut headers, name, &ctx.render(value).await?)?;
        }
        request = request.headers(headers);
        Ok(match &spec.options.auth {
            None => request,
            Some(HttpAuth::Basic { username, password }) => {
                let username = ctx.render(username).await?;
                let password = match password {
                    Some(password) => Some(ctx.render(password).await?),
                    None => None,
                };
                request.basic_auth(username, password)
            }
            Some(HttpAuth::Bearer { token }) => request.bearer_auth(ctx.render(token).await?),
        })
    }
}

/// A form field's value: a text rendered, anything else as JSON.
async fn form_value(ctx: &TaskContext<'_>, value: &Value) -> Result<String, TaskError> {
    match value {
        Value::String(template) => ctx.render(template).await,
        other => Ok(other.to_string()),
    }
}

/// Sets header `name` to `value`, replacing what was there (a flow's header wins over the
/// content type). The value is never quoted in the error: it may hold a secret.
fn insert_header(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), TaskError> {
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| TaskError::new(format!("headers: '{name}' is not a valid header name")))?;
    let value = HeaderValue::from_str(value).map_err(|_| {
        TaskError::new(format!(
            "headers: the value of '{name}' is not a valid header value (line breaks and control characters are not allowed)"
        ))
    })?;
    headers.insert(header, value);
    Ok(())
}

/// Response headers as Kestra gives them: each name with the list of its values.
fn headers_output(headers: &HeaderMap) -> Map<String, Value> {
    let mut output = Map::new();
    for (name, value) in headers {
        let value = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
        match output.get_mut(name.as_str()) {
            Some(Value::Array(values)) => values.push(value),
            _ => {
                output.insert(name.as_str().to_owned(), Value::Array(vec![value]));
            }
        }
    }
    output
}

/// The response body as text, at most `limit` bytes.
async fn read_body(mut response: Response, limit: usize) -> Result<String, TaskError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| TaskError::new(format!("Failed to read the response: {}", chain(error))))?
    {
        if body.len() + chunk.len() > limit {
            return Err(TaskError::new(format!(
                "The response body is larger than {limit} bytes (options.maxContentLength)"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| {
        TaskError::new(
            "The response body is not valid UTF-8: the Request task only takes text bodies",
        )
    })
}

/// An error and its causes, `: `-separated (reqwest's own message names only the first),
/// without the URL reqwest puts in its message: that is the serialized URI, or a redirect's
/// target, which the task names itself where the masker is sure to know it.
fn chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{HttpClients, HttpOptions, mask_uri_like_its_text, parse_uri};
    use kestrel_secrets::MaskRegistry;

    /// What a reader sees of the URI `rendered` once the task has checked it.
    fn shown(secret: &str, rendered: &str) -> String {
        let registry = MaskRegistry::default();
        registry.register("K", secret);
        let url = parse_uri(rendered).unwrap();
        mask_uri_like_its_text(&registry, rendered, &url);
        registry.mask(url.as_str()).into_owned()
    }

    #[test]
    fn a_secret_the_client_only_encodes_is_masked_in_place() {
        assert_eq!(
            shown("it's a/b!ü", "http://h/p?key=it's a/b!ü"),
            "http://h/p?key=******"
        );
    }

    #[test]
    fn a_secret_the_client_rewrites_masks_the_whole_uri() {
        assert_eq!(shown("Build-Host", "http://Build-Host:8080/p"), "******");
        assert_eq!(shown("0x7f000001", "http://0x7f000001/p"), "******");
    }

    #[test]
    fn a_uri_without_a_secret_is_shown_as_sent() {
        assert_eq!(shown("unrelated", "http://h/a b"), "http://h/a%20b");
    }

    #[test]
    fn errors_never_quote_the_uri() {
        for bad in ["http://h:port/tok3n", "http://h/\ttok3n", "tok3n"] {
            let error = parse_uri(bad).unwrap_err().to_string();
            assert!(!error.contains("tok3n"), "{error}");
            assert!(error.starts_with("uri: the rendered URI "), "{error}");
        }
    }

    #[test]
    fn requests_with_the_same_options_share_one_client_and_its_connection_pool() {
        let clients = HttpClients::default();
        let options = HttpOptions {
            connect_timeout: None,
            read_timeout: std::time::Duration::from_secs(300),
            follow_redirects: true,
            allow_failed: false,
            auth: None,
            max_content_length: 1024,
        };
        clients.client(&options).unwrap();
        clients.client(&options).unwrap();
        assert_eq!(clients.clients.lock().unwrap().len(), 1);
        let other = HttpOptions {
            follow_redirects: false,
            ..options.clone()
        };
        clients.client(&other).unwrap();
        assert_eq!(clients.clients.lock().unwrap().len(), 2);
    }
}
