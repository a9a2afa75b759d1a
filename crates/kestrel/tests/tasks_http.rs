//! `kestrel run` of flows with `io.kestra.plugin.core.http.Request` against a server on
//! 127.0.0.1 that echoes the `Authorization` header it receives: the token arrives whole and
//! nothing kestrel prints shows it.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::thread;
use util::{MASK, Sandbox, base64};

const TOKEN: &str = "cli-t0ken-9d8e7f6a";

/// Serves one request: sends back its `Authorization` header as the body, and returns the
/// header as received.
fn echo_once() -> (String, thread::JoinHandle<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let url = format!("http://{}/me", listener.local_addr().expect("an address"));
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().ok()?;
        let mut reader = BufReader::new(stream.try_clone().ok()?);
        let mut authorization = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("authorization")
            {
                authorization = Some(value.trim().to_owned());
            }
        }
        let body = authorization.clone().unwrap_or_default();
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        (&stream).write_all(answer.as_bytes()).ok()?;
        authorization
    });
    (url, server)
}

#[test]
fn a_bearer_token_reaches_the_server_whole_and_kestrel_never_prints_it() {
    let (url, server) = echo_once();
    let flow = format!(
        concat!(
            "id: api\nnamespace: dev\ntasks:\n",
            "  - id: call\n    type: io.kestra.plugin.core.http.Request\n    uri: {url}\n",
            "    headers:\n      Authorization: \"Bearer {{{{ secret('API_TOKEN') }}}}\"\n",
            "  - id: show\n    type: io.kestra.plugin.core.log.Log\n",
            "    message: \"{{{{ outputs.call.code }}}} {{{{ outputs.call.body }}}}\"\n",
        ),
        url = url
    );
    let out = Sandbox::new().run_json(&flow, &[("SECRET_API_TOKEN", &base64(TOKEN))]);
    let received = server.join().expect("the server ends");
    assert_eq!(received, Some(format!("Bearer {TOKEN}")));
    out.assert_code(0)
        .assert_hides(TOKEN)
        .assert_hides(&base64(TOKEN));
    let json = out.json();
    assert_eq!(
        json["taskRuns"][0]["outputs"]["body"],
        format!("Bearer {MASK}")
    );
    assert_eq!(
        out.messages().last().map(String::as_str),
        Some(format!("200 Bearer {MASK}").as_str())
    );
}

/// Serves one request with `body` (and `disposition` as `Content-Disposition`, when given).
fn serve_once(body: &'static str, disposition: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let url = format!(
        "http://{}/data/report.csv",
        listener.local_addr().expect("an address")
    );
    thread::spawn(move || {
        let (stream, _) = listener.accept().ok()?;
        let mut reader = BufReader::new(stream.try_clone().ok()?);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
                break;
            }
        }
        let extra = disposition
            .map(|value| format!("Content-Disposition: {value}\r\n"))
            .unwrap_or_default();
        let answer = format!(
            "HTTP/1.1 200 OK\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        (&stream).write_all(answer.as_bytes()).ok()
    });
    url
}

/// `http.Download` (also under `io.kestra.plugin.fs.http.Download`) stores the body as a file
/// a later task reads; an empty body fails unless `failOnEmptyResponse: false`.
#[test]
fn a_download_is_stored_as_a_file_named_after_the_response() {
    for (class, disposition, name) in [
        ("io.kestra.plugin.core.http.Download", None, "report.csv"),
        (
            "io.kestra.plugin.fs.http.Download",
            Some("attachment; filename=\"../sales.csv\""),
            "sales.csv",
        ),
    ] {
        let url = serve_once("a,b\n1,2\n", disposition);
        let flow = format!(
            concat!(
                "id: dl\nnamespace: dev\ntasks:\n",
                "  - id: get\n    type: {class}\n    uri: {url}\n",
                "  - id: show\n    type: io.kestra.plugin.core.debug.Return\n",
                "    format: \"{{{{ read(outputs.get.uri) | trim }}}}\"\n",
            ),
            class = class,
            url = url
        );
        let document = Sandbox::new().run_json(&flow, &[]).json();
        assert_eq!(document["state"], "SUCCESS", "{document}");
        let get = &document["taskRuns"][0]["outputs"];
        assert_eq!(get["code"], 200);
        assert_eq!(get["length"], 8);
        assert!(
            get["uri"].as_str().unwrap().ends_with(&format!("/{name}")),
            "{get}"
        );
        assert_eq!(document["taskRuns"][1]["outputs"]["value"], "a,b\n1,2");
    }
    let empty = |extra: &str| {
        let url = serve_once("", None);
        let flow = format!(
            "id: dl\nnamespace: dev\ntasks:\n  - id: get\n    type: io.kestra.plugin.core.http.Download\n    uri: {url}\n{extra}"
        );
        Sandbox::new().run_json(&flow, &[]).json()
    };
    let failed = empty("");
    assert_eq!(failed["state"], "FAILED");
    assert_eq!(failed["taskRuns"][0]["error"], "No response from server");
    let warned = empty("    failOnEmptyResponse: false\n");
    assert_eq!(warned["state"], "SUCCESS", "{warned}");
    assert_eq!(warned["taskRuns"][0]["outputs"]["length"], 0);
}

/// A download whose URI's last segment is a secret is stored as `download`: a file's name in
/// the internal storage is never masked.
#[test]
fn a_download_named_by_a_secret_is_stored_as_download() {
    let url = serve_once("a,b\n", None).replace("/data/report.csv", "/files/");
    let flow = format!(
        "id: dl\nnamespace: dev\ntasks:\n  - id: get\n    type: io.kestra.plugin.core.http.Download\n    uri: \"{url}{{{{ secret('DL_TOKEN') }}}}\"\n"
    );
    let document = Sandbox::new()
        .run_json(&flow, &[("SECRET_DL_TOKEN", &base64("dl-t0ken-5566"))])
        .json();
    assert_eq!(document["state"], "SUCCESS", "{document}");
    let uri = document["taskRuns"][0]["outputs"]["uri"].as_str().unwrap();
    assert!(uri.ends_with("/download"), "{uri}");
}
