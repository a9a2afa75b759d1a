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
