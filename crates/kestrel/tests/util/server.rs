//! A real `kestrel server` on a free port of 127.0.0.1, spoken to over plain HTTP; or a
//! `kestrel worker`, which has no port.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use super::{Invocation, Sandbox, base64};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `kestrel server` (or `kestrel worker`), its stderr read line by line.
pub struct Running {
    pub child: Child,
    pub address: String,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    pub fn start(sandbox: &Sandbox, extra: &[&str]) -> Self {
        let mut args = vec!["server", "--bind", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Self::spawn(sandbox.kestrel(args))
    }

    /// Starts `kestrel worker ...`, ready once it says it runs executions.
    pub fn worker(sandbox: &Sandbox, extra: &[&str]) -> Self {
        let mut args = vec!["worker"];
        args.extend_from_slice(extra);
        Self::spawn_until(sandbox.kestrel(args), "running executions")
    }

    /// Starts `invocation`, a `kestrel server --bind 127.0.0.1:0 ...` with its environment.
    pub fn spawn(invocation: Invocation) -> Self {
        Self::spawn_at(invocation, "http://")
    }

    /// Starts `invocation`, ready once it listens on a `scheme` (`http://`, `https://`) URL,
    /// whose address it keeps.
    pub fn spawn_at(invocation: Invocation, scheme: &str) -> Self {
        let mut running = Self::spawn_until(invocation, &format!("listening on {scheme}"));
        let line = running.seen.last().unwrap().clone();
        running.address = line.rsplit(scheme).next().unwrap().trim().to_owned();
        running
    }

    /// Starts `invocation`, ready once a line of its stderr holds `ready`.
    pub fn spawn_until(mut invocation: Invocation, ready: &str) -> Self {
        let mut child = invocation
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, stderr) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running = Self {
            child,
            address: String::new(),
            stderr,
            seen: Vec::new(),
        };
        running.line_with(ready);
        running
    }

    /// The next stderr line holding `needle` (every line is kept in `seen`).
    pub fn line_with(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .stderr
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no line with {needle:?} in {:?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Sends `method path` with an `Authorization` header and a body; (status, body).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<(&str, &str)>,
    ) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.address
        );
        if let Some(auth) = auth {
            request.push_str(&format!("Authorization: {auth}\r\n"));
        }
        let (content_type, body) = body.unwrap_or(("text/plain", ""));
        if !body.is_empty() {
            request.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
        let (head, rest) = answer.split_once("\r\n\r\n").unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            unchunk(rest)
        } else {
            rest.to_owned()
        };
        (status, body)
    }

    pub fn json(&self, method: &str, path: &str, auth: &str, body: Option<(&str, &str)>) -> Value {
        let (status, text) = self.http(method, path, Some(auth), body);
        assert!(status < 300, "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        self.seen.extend(self.stderr.try_iter());
        // Lines written just before the exit.
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (status.code(), std::mem::take(&mut self.seen))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn unchunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(&format!("{user}:{password}")))
}
