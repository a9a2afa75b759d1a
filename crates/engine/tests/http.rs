//! `io.kestra.plugin.core.http.Request` run by the engine against a local server: the
//! secret reaches the server exactly and no reader ever sees it, even echoed back.

mod common;

use base64::Engine as _;
use common::server::Server;
use common::{MASK, flow, messages, readable, run};
use kestrel_engine::State;
use kestrel_flow::Level;
use serde_json::json;

const TOKEN: &str = "tok-3f9a8b7c6d5e";

/// A Request task `req` with the YAML `properties` (indented by four).
fn request(properties: &str) -> String {
    format!("  - id: req\n    type: io.kestra.plugin.core.http.Request\n{properties}")
}

#[test]
fn a_bearer_token_reaches_the_server_and_no_reader_even_when_echoed_back() {
    let server = Server::start();
    let execution = run(
        &flow(&format!(
            "{}  - id: show\n    type: io.kestra.plugin.core.log.Log\n    message: \"got {{{{ outputs.req.body }}}}\"\n",
            request(&format!(
                "    uri: {}\n    headers:\n      Authorization: \"Bearer {{{{ secret('API_TOKEN') }}}}\"\n",
                server.url("/echo")
            ))
        )),
        &[("API_TOKEN", TOKEN)],
    );
    assert_eq!(execution.state, State::Success, "{execution:?}");
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {TOKEN}"))
    );
    let outputs = &execution.task_runs[0].outputs;
    assert_eq!(outputs["body"], format!("Bearer {MASK}"));
    assert_eq!(outputs["code"], 200);
    assert_eq!(messages(&execution, "show"), [format!("got Bearer {MASK}")]);
    assert!(!readable(&execution).contains(TOKEN), "{execution:?}");
}

#[test]
fn outputs_are_code_headers_body_and_uri_and_a_json_body_stays_text() {
    let server = Server::start();
    let uri = server.url("/json");
    let execution = run_ok(&format!("    uri: {uri}\n"));
    let outputs = &execution.task_runs[0].outputs;
    assert_eq!(outputs["code"], 200);
    assert_eq!(outputs["body"], r#"{"ok":true,"n":1}"#);
    assert_eq!(outputs["uri"], uri.as_str());
    assert_eq!(outputs["headers"]["x-test"], json!(["a", "b"]));
    assert_eq!(
        outputs["headers"]["content-type"],
        json!(["application/json"])
    );
    assert_eq!(server.received()[0].request_line(), "GET /json HTTP/1.1");
}

#[test]
fn a_secret_in_the_uri_is_masked_in_the_log_and_the_outputs() {
    let server = Server::start();
    let url = server.url("/json");
    let execution = run_ok_with(
        &format!("    uri: \"{url}?key={{{{ secret('API_TOKEN') }}}}\"\n"),
        &[("API_TOKEN", TOKEN)],
    );
    assert_eq!(
        server.received()[0].request_line(),
        format!("GET /json?key={TOKEN} HTTP/1.1")
    );
    let entry = &execution.logs[0];
    assert_eq!(entry.level, Level::Debug);
    assert_eq!(entry.message, format!("GET {url}?key={MASK}"));
    assert_eq!(
        execution.task_runs[0].outputs["uri"],
        format!("{url}?key={MASK}")
    );
    assert!(!readable(&execution).contains(TOKEN));
}

#[test]
fn basic_auth_credentials_echoed_back_are_masked() {
    let server = Server::start();
    let url = server.url("/echo");
    let execution = run_ok_with(
        &format!(
            "    uri: {url}\n    options:\n      auth:\n        type: BASIC\n        username: robot\n        password: \"{{{{ secret('PASSWORD') }}}}\"\n"
        ),
        &[("PASSWORD", TOKEN)],
    );
    let sent = base64::engine::general_purpose::STANDARD.encode(format!("robot:{TOKEN}"));
    assert_eq!(
        server.received()[0].header("authorization"),
        Some(format!("Basic {sent}"))
    );
    assert_eq!(
        execution.task_runs[0].outputs["body"],
        format!("Basic {MASK}")
    );
    assert!(!readable(&execution).contains(&sent));
}

#[test]
fn a_failed_response_fails_the_task_with_kestras_message_unless_allowed() {
    let server = Server::start();
    let uri = server.url("/status/404");
    let execution = run_flow(&format!("    uri: {uri}\n"));
    assert_eq!(execution.state, State::Failed);
    let run = &execution.task_runs[0];
    assert_eq!(
        run.error.as_deref(),
        Some("Failed http request with response code '404' and body:\nnope")
    );
    assert_eq!(run.outputs["code"], 404, "outputs are kept on failure");
    for allowed in [
        "    allowFailed: true\n",
        "    options:\n      allowFailed: true\n",
    ] {
        let execution = run_flow(&format!("    uri: {uri}\n{allowed}"));
        assert_eq!(execution.state, State::Success, "{allowed}");
        assert_eq!(execution.task_runs[0].outputs["code"], 404);
    }
}

/// Runs a flow of the one Request task `req` with the YAML `properties`.
fn run_flow(properties: &str) -> kestrel_engine::Execution {
    run(&flow(&request(properties)), &[])
}

/// Runs a flow of the one Request task `req` with the YAML `properties`; the run must succeed.
fn run_ok(properties: &str) -> kestrel_engine::Execution {
    run_ok_with(properties, &[])
}

/// [`run_ok`] with `secrets`.
fn run_ok_with(properties: &str, secrets: &[(&str, &str)]) -> kestrel_engine::Execution {
    let execution = run(&flow(&request(properties)), secrets);
    assert_eq!(execution.state, State::Success, "{execution:?}");
    execution
}

#[test]
fn a_body_is_sent_with_its_method_and_content_type_and_headers_win() {
    let server = Server::start();
    run_ok(&format!(
        "    uri: {}\n    method: post\n    body: \"{{{{ {{'a': 1}} | toJson }}}}\"\n    headers:\n      X-Id: \"7\"\n",
        server.url("/x")
    ));
    let received = &server.received()[0];
    assert_eq!(received.request_line(), "POST /x HTTP/1.1");
    assert_eq!(
        received.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(received.header("x-id").as_deref(), Some("7"));
    assert_eq!(String::from_utf8_lossy(&received.body), r#"{"a":1}"#);
    run_ok(&format!(
        "    uri: {}\n    method: PUT\n    body: plain\n    contentType: text/plain\n    headers:\n      Content-Type: text/csv\n",
        server.url("/y")
    ));
    assert_eq!(
        server.received()[1].header("content-type").as_deref(),
        Some("text/csv")
    );
}

#[test]
fn form_data_is_sent_url_encoded_or_as_multipart() {
    let server = Server::start();
    run_ok(&format!(
        "    uri: {}\n    method: POST\n    formData:\n      user: \"John {{{{ 'Doe' }}}}\"\n      n: 2\n",
        server.url("/form")
    ));
    let received = &server.received()[0];
    assert_eq!(
        received.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(String::from_utf8_lossy(&received.body), "user=John+Doe&n=2");
    run_ok(&format!(
        "    uri: {}\n    method: POST\n    contentType: multipart/form-data\n    formData:\n      user: me\n",
        server.url("/form")
    ));
    let received = &server.received()[1];
    let content_type = received.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/form-data; boundary="),
        "{content_type}"
    );
    let body = String::from_utf8_lossy(&received.body);
    assert!(body.contains("name=\"user\"\r\n\r\nme\r\n"), "{body}");
}

#[test]
fn redirects_are_followed_unless_told_otherwise() {
    let server = Server::start();
    let execution = run_flow(&format!("    uri: {}\n", server.url("/redirect")));
    assert_eq!(execution.task_runs[0].outputs["code"], 200);
    assert_eq!(
        execution.task_runs[0].outputs["body"],
        r#"{"ok":true,"n":1}"#
    );
    let execution = run_flow(&format!(
        "    uri: {}\n    options:\n      followRedirects: false\n",
        server.url("/redirect")
    ));
    assert_eq!(execution.state, State::Success, "a 302 is no failure");
    assert_eq!(execution.task_runs[0].outputs["code"], 302);
    assert_eq!(
        execution.task_runs[0].outputs["headers"]["location"],
        json!(["/json"])
    );
}

/// Whether the second request reuses the first one's connection depends on when the
/// connection goes back to the pool (a unit test checks the client is shared); both succeed.
#[test]
fn two_requests_of_one_execution_both_reach_the_server() {
    let server = Server::start();
    let url = server.url("/json");
    let execution = run(
        &flow(&format!(
            "{}  - id: again\n    type: io.kestra.plugin.core.http.Request\n    uri: {url}\n",
            request(&format!("    uri: {url}\n"))
        )),
        &[],
    );
    assert_eq!(execution.state, State::Success, "{execution:?}");
    assert_eq!(server.received().len(), 2);
}

#[test]
fn an_unreachable_server_fails_with_the_cause() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let execution = run_flow(&format!("    uri: http://{address}/\n"));
    assert_eq!(execution.state, State::Failed);
    let error = execution.task_runs[0].error.clone().unwrap();
    assert!(
        error.starts_with(&format!("Failed http request to http://{address}/: ")),
        "{error}"
    );
    assert!(error.to_lowercase().contains("connect"), "{error}");
}

#[test]
fn a_body_over_the_limit_fails_the_task() {
    let server = Server::start();
    let execution = run_flow(&format!(
        "    uri: {}\n    options:\n      maxContentLength: 4\n",
        server.url("/json")
    ));
    assert_eq!(execution.state, State::Failed);
    assert_eq!(
        execution.task_runs[0].error.as_deref(),
        Some("The response body is larger than 4 bytes (options.maxContentLength)")
    );
}

/// A secret the URL encodings disagree on: a space and a non-ASCII character next to `'`, `/`
/// and `!`, which percent-encoding, form encoding and the HTTP client's own encoding of each
/// part of a URI each write differently.
const AWKWARD: &str = "it's a/b!ü-key";

/// Every spelling of [`AWKWARD`] a URI may carry: as written, with spaces as `%20` (Kestra's
/// one fix-up), and as the HTTP client encodes it in a path, a query and a fragment.
fn awkward_spellings() -> Vec<String> {
    let url = reqwest::Url::parse(&format!("http://h/{AWKWARD}?{AWKWARD}#{AWKWARD}"))
        .expect("a valid URL");
    let mut spellings = vec![AWKWARD.to_owned(), AWKWARD.replace(' ', "%20")];
    spellings.extend(
        [
            url.path(),
            url.query().unwrap_or(""),
            url.fragment().unwrap_or(""),
        ]
        .iter()
        .map(|part| part.trim_start_matches('/').to_owned()),
    );
    spellings
}

/// Fails with the spelling of [`AWKWARD`] that `seen` shows, if any.
fn assert_no_awkward_spelling(seen: &str) {
    for spelling in awkward_spellings() {
        assert!(!seen.contains(&spelling), "{spelling} shows in {seen}");
    }
}

#[test]
fn leak_3_http_uri_encoding_of_a_secret_is_masked() {
    let server = Server::start();
    let url = server.url("/x");
    for (place, uri, shown) in [
        ("path", "{url}/{{ secret('K') }}", format!("{url}/{MASK}")),
        (
            "query",
            "{url}?key={{ secret('K') }}",
            format!("{url}?key={MASK}"),
        ),
        (
            "fragment",
            "{url}#{{ secret('K') }}",
            format!("{url}#{MASK}"),
        ),
    ] {
        let uri = uri.replace("{url}", &url);
        let execution = run_ok_with(&format!("    uri: \"{uri}\"\n"), &[("K", AWKWARD)]);
        assert_no_awkward_spelling(&readable(&execution));
        assert_eq!(execution.logs[0].message, format!("GET {shown}"), "{place}");
        assert_eq!(
            execution.task_runs[0].outputs["uri"],
            shown.as_str(),
            "{place}"
        );
    }
    let sent = server.received();
    assert!(
        sent[1].request_line().contains("it%27s%20a/b!%C3%BC-key"),
        "{sent:?}"
    );
}

#[test]
fn a_uri_the_client_rewrites_beyond_the_masker_is_masked_whole() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    // The client reads the host `0x7f000001` as 127.0.0.1: a form of the secret that no
    // encoding of it spells.
    let execution = run(
        &flow(&request(&format!(
            "    uri: \"http://{{{{ secret('HOST') }}}}:{port}/x\"\n"
        ))),
        &[("HOST", "0x7f000001")],
    );
    assert_eq!(execution.logs[0].message, format!("GET {MASK}"));
    let error = execution.task_runs[0].error.clone().unwrap();
    assert!(
        error.starts_with(&format!("Failed http request to {MASK}: ")),
        "{error}"
    );
    assert!(!readable(&execution).contains("127.0.0.1"));
}

#[test]
fn leak_3_http_connection_error_with_an_encoded_secret_is_masked() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let execution = run(
        &flow(&request(&format!(
            "    uri: \"http://{address}/x?key={{{{ secret('K') }}}}\"\n"
        ))),
        &[("K", AWKWARD)],
    );
    assert_eq!(execution.state, State::Failed);
    assert_no_awkward_spelling(&readable(&execution));
    let error = execution.task_runs[0].error.clone().unwrap();
    assert!(
        error.starts_with(&format!(
            "Failed http request to http://{address}/x?key={MASK}: "
        )),
        "{error}"
    );
    assert!(error.to_lowercase().contains("connect"), "{error}");
}

#[test]
fn leak_3_http_invalid_uri_error_does_not_echo_a_secret_in_its_userinfo() {
    let execution = run(
        &flow(&request(
            "    uri: \"http://robot:{{ secret('K') }}@127.0.0.1:port/\"\n",
        )),
        &[("K", AWKWARD)],
    );
    assert_eq!(execution.state, State::Failed);
    assert_eq!(
        execution.task_runs[0].error.as_deref(),
        Some(
            "uri: the rendered URI is not a valid URI (invalid port number); the URI is not shown, as it may hold a secret"
        )
    );
    assert_no_awkward_spelling(&readable(&execution));
}

#[test]
fn a_secret_in_the_uris_userinfo_is_masked_and_so_is_the_basic_header_it_becomes() {
    let server = Server::start();
    let secret = "pa ss!wörd'";
    let url = server
        .url("/echo")
        .replace("http://", "http://robot:{{ secret('K') }}@");
    let execution = run_ok_with(&format!("    uri: \"{url}\"\n"), &[("K", secret)]);
    let sent = server.received()[0].header("authorization").unwrap();
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("robot:{secret}"));
    assert_eq!(sent, format!("Basic {credentials}"));
    assert_eq!(
        execution.task_runs[0].outputs["body"],
        format!("Basic {MASK}")
    );
    let seen = readable(&execution);
    assert!(
        !seen.contains(&credentials) && !seen.contains("ss!w"),
        "{seen}"
    );
}

#[test]
fn a_uri_with_a_line_break_is_refused_without_being_echoed() {
    let execution = run_flow("    uri: \"http://127.0.0.1/{{ 'a\\nb' }}\"\n");
    assert_eq!(execution.state, State::Failed);
    let error = execution.task_runs[0].error.clone().unwrap();
    assert!(
        error.starts_with("uri: the rendered URI holds a control character"),
        "{error}"
    );
    assert!(!error.contains("127.0.0.1"), "{error}");
}

#[test]
fn leak_4_http_method_holding_a_secret_is_masked_in_the_log() {
    let server = Server::start();
    let verb = "purge-cache-x7";
    let execution = run_ok_with(
        &format!(
            "    uri: {}\n    method: \"{{{{ secret('VERB') }}}}\"\n",
            server.url("/x")
        ),
        &[("VERB", verb)],
    );
    assert!(
        server.received()[0]
            .request_line()
            .starts_with("PURGE-CACHE-X7 /x "),
        "the server gets the method upper-cased"
    );
    assert_eq!(
        execution.logs[0].message,
        format!("{MASK} {}", server.url("/x"))
    );
    let seen = readable(&execution);
    assert!(!seen.to_uppercase().contains("PURGE-CACHE-X7"), "{seen}");
}

#[test]
fn leak_4_http_invalid_method_holding_a_secret_is_not_echoed() {
    let execution = run(
        &flow(&request(
            "    uri: http://127.0.0.1/\n    method: \"{{ secret('VERB') }} now\"\n",
        )),
        &[("VERB", "purge-cache-x7")],
    );
    assert_eq!(execution.state, State::Failed);
    let error = execution.task_runs[0].error.clone().unwrap();
    assert!(
        error.starts_with("method: the rendered method is not an HTTP method"),
        "{error}"
    );
    assert!(
        !readable(&execution)
            .to_uppercase()
            .contains("PURGE-CACHE-X7")
    );
}
