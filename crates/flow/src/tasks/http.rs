//! `io.kestra.plugin.core.http.Request`: its properties, read into [`HttpRequest`], with
//! `options` as Kestra's `HttpConfiguration` (current and deprecated names alike).

use super::read::{duration, nested, text_map, texts};
use crate::TaskKind;
use crate::context::{Ctx, Props};
use crate::yaml::object;
use serde_json::Value;
use std::time::Duration;

/// Kestra's class name of the task.
pub(crate) const CLASS: &str = "io.kestra.plugin.core.http.Request";

/// The properties of the task (`allowFailed` here is Kestra's deprecated spelling of
/// `options.allowFailed`; `encryptBody` is accepted: outputs are stored encrypted anyway).
pub(crate) const PROPERTIES: &[&str] = &[
    "uri",
    "method",
    "headers",
    "body",
    "formData",
    "contentType",
    "options",
    "allowFailed",
    "encryptBody",
];

const OPTIONS_CLASS: &str = "io.kestra.core.http.client.configurations.HttpConfiguration";

/// `options`: Kestra's names, current then deprecated. Those kestrel has no use for are
/// accepted and ignored: `defaultCharset` (bodies are UTF-8), `logs` and `logLevel`,
/// `connectionPoolIdleTimeout`.
const OPTIONS: &[&str] = &[
    "timeout",
    "auth",
    "followRedirects",
    "allowFailed",
    "defaultCharset",
    "logs",
    "connectTimeout",
    "readTimeout",
    "readIdleTimeout",
    "connectionPoolIdleTimeout",
    "maxContentLength",
    "basicAuthUser",
    "basicAuthPassword",
    "logLevel",
];

const TIMEOUT_CLASS: &str = "io.kestra.core.http.client.configurations.TimeoutConfiguration";
const TIMEOUT: &[&str] = &["connectTimeout", "readIdleTimeout"];

/// Kestra's default `readIdleTimeout`.
const READ_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Kestra's default `maxContentLength`: 10 MiB.
const MAX_CONTENT_LENGTH: usize = 10 * 1024 * 1024;

/// An HTTP request, templates unrendered.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// `uri`, a template.
    pub uri: String,
    /// `method`, a template, default `GET`.
    pub method: String,
    /// `headers`, values templates, in source order.
    pub headers: Vec<(String, String)>,
    /// `body`, a template.
    pub body: Option<String>,
    /// `formData`: sent URL-encoded, or as multipart with `contentType: multipart/form-data`;
    /// text values are templates, others are sent as JSON.
    pub form_data: Vec<(String, Value)>,
    /// `contentType`, a template, default `application/json` as in Kestra.
    pub content_type: String,
    /// `options`.
    pub options: HttpOptions,
    /// For `io.kestra.plugin.core.http.Download`: the body goes to the internal storage, not
    /// to the outputs.
    pub download: Option<Download>,
}

/// What a Download adds to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Download {
    /// `failOnEmptyResponse` (default true): an empty body fails the task (but under
    /// `allowFailed`), else it is a WARN entry.
    pub fail_on_empty_response: bool,
}

/// `io.kestra.plugin.core.http.Download`: a request whose body is stored as a file.
pub(crate) const DOWNLOAD: super::TaskType = super::TaskType {
    class: "io.kestra.plugin.core.http.Download",
    aliases: &["io.kestra.plugin.fs.http.Download"],
    properties: &[
        "uri",
        "method",
        "headers",
        "body",
        "formData",
        "contentType",
        "options",
        "allowFailed",
        "encryptBody",
        "failOnEmptyResponse",
    ],
    build: build_download,
};

fn build_download(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let fail_on_empty_response = props.flag(ctx, "failOnEmptyResponse").unwrap_or(true);
    let TaskKind::Request(mut request) = build(ctx, props)? else {
        return None;
    };
    request.download = Some(Download {
        fail_on_empty_response,
    });
    Some(TaskKind::Request(request))
}

/// `options` of a request: Kestra's `HttpConfiguration`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// `timeout.connectTimeout` (deprecated: `connectTimeout`); none by default.
    pub connect_timeout: Option<Duration>,
    /// `timeout.readIdleTimeout` (deprecated: `readTimeout`, `readIdleTimeout`): how long a
    /// read may wait; 5 minutes by default.
    pub read_timeout: Duration,
    /// `followRedirects`, default true.
    pub follow_redirects: bool,
    /// `allowFailed` (or the task's deprecated `allowFailed`): a response code of 400 or more
    /// does not fail the task.
    pub allow_failed: bool,
    /// `auth` (deprecated: `basicAuthUser`, `basicAuthPassword`).
    pub auth: Option<HttpAuth>,
    /// `maxContentLength`: the longest response body read, in bytes; 10 MiB by default.
    pub max_content_length: usize,
}

/// `options.auth`, values templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpAuth {
    /// `type: BASIC`, `username`, `password`.
    Basic {
        /// `username`.
        username: String,
        /// `password`.
        password: Option<String>,
    },
    /// `type: BEARER`, `token`.
    Bearer {
        /// `token`.
        token: String,
    },
}

/// Builds a `Request` task.
pub(crate) fn build(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let uri = props.required_text(ctx, "uri");
    let method = props.text(ctx, "method");
    let headers = text_map(ctx, props, "headers");
    let body = props.text(ctx, "body");
    let form_data = props.map(ctx, "formData").map(object);
    let content_type = props.text(ctx, "contentType");
    let allow_failed = props.flag(ctx, "allowFailed");
    props.flag(ctx, "encryptBody");
    let mut options = read_options(ctx, props);
    options.allow_failed |= allow_failed.unwrap_or(false);
    Some(TaskKind::Request(Box::new(HttpRequest {
        uri: uri?,
        method: method.unwrap_or_else(|| "GET".into()),
        headers: headers.unwrap_or_default(),
        body,
        form_data: form_data
            .map(|map| map.into_iter().collect())
            .unwrap_or_default(),
        content_type: content_type.unwrap_or_else(|| "application/json".into()),
        options,
        download: None,
    })))
}

fn read_options(ctx: &mut Ctx<'_>, task: &Props<'_>) -> HttpOptions {
    let mut options = HttpOptions {
        connect_timeout: None,
        read_timeout: READ_IDLE_TIMEOUT,
        follow_redirects: true,
        allow_failed: false,
        auth: None,
        max_content_length: MAX_CONTENT_LENGTH,
    };
    let Some(props) = nested(ctx, task, "options") else {
        return options;
    };
    props.reject_unknown(ctx, OPTIONS_CLASS, &[OPTIONS]);
    let timeout = nested(ctx, &props, "timeout");
    if let Some(timeout) = &timeout {
        timeout.reject_unknown(ctx, TIMEOUT_CLASS, &[TIMEOUT]);
    }
    let read_timeout = [
        timeout
            .as_ref()
            .and_then(|t| duration(ctx, t, "readIdleTimeout")),
        duration(ctx, &props, "readIdleTimeout"),
        duration(ctx, &props, "readTimeout"),
    ];
    options.read_timeout = read_timeout
        .into_iter()
        .flatten()
        .next()
        .unwrap_or(READ_IDLE_TIMEOUT);
    let connect_timeout = [
        timeout
            .as_ref()
            .and_then(|t| duration(ctx, t, "connectTimeout")),
        duration(ctx, &props, "connectTimeout"),
    ];
    options.connect_timeout = connect_timeout.into_iter().flatten().next();
    duration(ctx, &props, "connectionPoolIdleTimeout");
    options.follow_redirects = props.flag(ctx, "followRedirects").unwrap_or(true);
    options.allow_failed = props.flag(ctx, "allowFailed").unwrap_or(false);
    options.auth = read_auth(ctx, &props);
    options.max_content_length = max_content_length(ctx, &props);
    for ignored in ["defaultCharset", "logLevel"] {
        props.text(ctx, ignored);
    }
    texts(ctx, &props, "logs");
    options
}

/// `auth`, or the deprecated `basicAuthUser` and `basicAuthPassword`.
fn read_auth(ctx: &mut Ctx<'_>, options: &Props<'_>) -> Option<HttpAuth> {
    let user = options.text(ctx, "basicAuthUser");
    let password = options.text(ctx, "basicAuthPassword");
    let props = nested(ctx, options, "auth");
    let Some(props) = props else {
        return user.map(|username| HttpAuth::Basic { username, password });
    };
    let kind = props.required_text(ctx, "type")?;
    let (class, known): (&str, &[&str]) = match kind.as_str() {
        "BASIC" => (
            "io.kestra.core.http.client.configurations.BasicAuthConfiguration",
            &["type", "username", "password"],
        ),
        "BEARER" => (
            "io.kestra.core.http.client.configurations.BearerAuthConfiguration",
            &["type", "token"],
        ),
        _ => {
            if let Some(at) = props.get("type") {
                let field = props.field("type");
                ctx.report(at, format!("{field}: must be one of [BASIC, BEARER]"));
            }
            return None;
        }
    };
    props.reject_unknown(ctx, class, &[known]);
    if kind == "BEARER" {
        let token = props.required_text(ctx, "token")?;
        return Some(HttpAuth::Bearer { token });
    }
    let username = props.required_text(ctx, "username");
    let password = props.text(ctx, "password");
    Some(HttpAuth::Basic {
        username: username?,
        password,
    })
}

/// `maxContentLength`: a positive whole number of bytes.
fn max_content_length(ctx: &mut Ctx<'_>, options: &Props<'_>) -> usize {
    let Some(text) = options.text(ctx, "maxContentLength") else {
        return MAX_CONTENT_LENGTH;
    };
    match text.parse::<usize>() {
        Ok(length) if length > 0 => length,
        _ => {
            if let Some(at) = options.get("maxContentLength") {
                let field = options.field("maxContentLength");
                ctx.report(at, format!("{field}: must be a positive whole number"));
            }
            MAX_CONTENT_LENGTH
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{HttpAuth, HttpRequest};
    use crate::{TaskKind, parse_flow};
    use serde_json::json;
    use std::time::Duration;

    fn source(properties: &str) -> String {
        format!(
            "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.http.Request\n{properties}"
        )
    }

    fn request(properties: &str) -> HttpRequest {
        match parse_flow(&source(properties))
            .unwrap()
            .tasks
            .remove(0)
            .kind
        {
            TaskKind::Request(request) => *request,
            _ => panic!("not a Request task"),
        }
    }

    fn violations(properties: &str) -> Vec<String> {
        let found = parse_flow(&source(properties)).unwrap_err();
        found.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_are_kestras() {
        let request = request("    uri: http://127.0.0.1/x\n");
        assert_eq!(request.uri, "http://127.0.0.1/x");
        assert_eq!(request.method, "GET");
        assert_eq!(request.content_type, "application/json");
        assert!(request.headers.is_empty() && request.body.is_none());
        let options = request.options;
        assert_eq!(options.connect_timeout, None);
        assert_eq!(options.read_timeout, Duration::from_secs(300));
        assert!(options.follow_redirects && !options.allow_failed);
        assert_eq!(options.auth, None);
        assert_eq!(options.max_content_length, 10 * 1024 * 1024);
    }

    #[test]
    fn every_property_is_read() {
        let request = request(concat!(
            "    uri: \"http://h/{{ 1 }}\"\n    method: POST\n",
            "    headers:\n      Authorization: \"Bearer {{ secret('T') }}\"\n      X-Count: 2\n",
            "    body: \"{}\"\n    contentType: text/plain\n",
            "    formData:\n      user: me\n      n: 1\n",
            "    options:\n      timeout:\n        connectTimeout: PT2S\n        readIdleTimeout: PT3S\n",
            "      followRedirects: false\n      allowFailed: true\n",
            "      auth:\n        type: BEARER\n        token: t0k3n\n      maxContentLength: 100\n",
        ));
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.headers,
            [
                ("Authorization".into(), "Bearer {{ secret('T') }}".into()),
                ("X-Count".into(), "2".into())
            ]
        );
        assert_eq!(request.body.as_deref(), Some("{}"));
        assert_eq!(request.content_type, "text/plain");
        assert_eq!(
            request.form_data,
            [("user".into(), json!("me")), ("n".into(), json!(1))]
        );
        let options = request.options;
        assert_eq!(options.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(options.read_timeout, Duration::from_secs(3));
        assert!(!options.follow_redirects && options.allow_failed);
        assert_eq!(
            options.auth,
            Some(HttpAuth::Bearer {
                token: "t0k3n".into()
            })
        );
        assert_eq!(options.max_content_length, 100);
    }

    #[test]
    fn deprecated_option_names_still_work() {
        let request = request(concat!(
            "    uri: http://h\n    allowFailed: true\n",
            "    options:\n      connectTimeout: PT1S\n      readTimeout: PT4S\n",
            "      basicAuthUser: me\n      basicAuthPassword: pw\n",
        ));
        let options = request.options;
        assert!(options.allow_failed);
        assert_eq!(options.connect_timeout, Some(Duration::from_secs(1)));
        assert_eq!(options.read_timeout, Duration::from_secs(4));
        assert_eq!(
            options.auth,
            Some(HttpAuth::Basic {
                username: "me".into(),
                password: Some("pw".into())
            })
        );
    }

    #[test]
    fn mistakes_are_reported_with_kestras_words() {
        assert_eq!(
            violations("    method: GET\n"),
            ["4:5: tasks[0].uri: must not be null"]
        );
        assert_eq!(
            violations(concat!(
                "    uri: http://h\n    options:\n      proxyHost: p\n",
                "      timeout:\n        connectTimeout: 5s\n",
                "      auth:\n        type: DIGEST\n",
            )),
            [
                "8:7: Unrecognized field \"proxyHost\" (class io.kestra.core.http.client.configurations.HttpConfiguration), not marked as ignorable",
                "10:25: tasks[0].options.timeout.connectTimeout: must be an ISO-8601 duration such as PT30S",
                "12:15: tasks[0].options.auth.type: must be one of [BASIC, BEARER]",
            ]
        );
        assert_eq!(
            violations(
                "    uri: http://h\n    options:\n      auth:\n        type: BEARER\n        username: u\n"
            ),
            [
                "9:9: tasks[0].options.auth.token: must not be null",
                "10:9: Unrecognized field \"username\" (class io.kestra.core.http.client.configurations.BearerAuthConfiguration), not marked as ignorable",
            ]
        );
    }
}
