//! A small HTTP/1.1 server on 127.0.0.1 for the Request tests: it records every request it
//! receives, raw, and answers by path.
//!
//! - `/echo`: 200, the request's `Authorization` header as the body (text/plain);
//! - `/json`: 200, `{"ok":true,"n":1}` (application/json);
//! - `/status/<code>`: that code, body `nope`;
//! - `/redirect`: 302 to `/json`;
//! - anything else: 200, body `ok`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// One request as received: its head (request line and headers) and body.
#[derive(Debug, Clone)]
pub struct Received {
    pub head: String,
    pub body: Vec<u8>,
}

impl Received {
    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    /// The request line (`GET /echo HTTP/1.1`).
    pub fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }
}

/// The server; it stops with the test process.
pub struct Server {
    address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let address = listener.local_addr().expect("an address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                thread::spawn(move || serve(stream, &log));
            }
        });
        Self { address, received }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("the log").clone()
    }
}

/// Answers the requests of one connection until the client closes it.
fn serve(stream: TcpStream, log: &Mutex<Vec<Received>>) {
    let mut writer = stream.try_clone().expect("a second handle");
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        log.lock().expect("the log").push(request.clone());
        if writer.write_all(&answer(&request)).is_err() {
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Received> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut request = Received {
        head,
        body: Vec::new(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    request.body = vec![0; length];
    reader.read_exact(&mut request.body).ok()?;
    Some(request)
}

fn answer(request: &Received) -> Vec<u8> {
    let path = request
        .request_line()
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let (status, content_type, body, extra) = match path.split('?').next().unwrap_or("") {
        "/echo" => (
            "200 OK".to_owned(),
            "text/plain",
            request.header("authorization").unwrap_or_default(),
            String::new(),
        ),
        "/json" => (
            "200 OK".to_owned(),
            "application/json",
            r#"{"ok":true,"n":1}"#.to_owned(),
            String::new(),
        ),
        "/redirect" => (
            "302 Found".to_owned(),
            "text/plain",
            String::new(),
            "Location: /json\r\n".to_owned(),
        ),
        other => match other.strip_prefix("/status/") {
            Some(code) => (
                format!("{code} Status"),
                "text/plain",
                "nope".to_owned(),
                String::new(),
            ),
            None => (
                "200 OK".to_owned(),
                "text/plain",
                "ok".to_owned(),
                String::new(),
            ),
        },
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nX-Test: a\r\nX-Test: b\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}
