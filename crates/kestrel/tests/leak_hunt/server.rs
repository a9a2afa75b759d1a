//! `kestrel server` as the real binary on a free port of 127.0.0.1, its stderr kept line by
//! line, stopped with SIGTERM (and killed, if it must be) when dropped.

use super::http::{Answer, Request};
use super::procs::{self, Guard};
use crate::util::Sandbox;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// How long the server may take to say it listens.
const START_LIMIT: Duration = Duration::from_secs(60);

pub(crate) struct Server {
    process: Guard,
    pub(crate) address: String,
    log: Arc<Mutex<Vec<String>>>,
    log_closed: mpsc::Receiver<()>,
}

impl Server {
    /// Starts `kestrel server` in `sandbox` with `TMPDIR` set to `tmp` and `extra` arguments;
    /// returns once it listens.
    pub(crate) fn start(sandbox: &Sandbox, tmp: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["server", "--bind", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut invocation = sandbox.kestrel(args).env("TMPDIR", tmp);
        let mut child = invocation
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kestrel server starts");
        let pipe = child.stderr.take().expect("a stderr pipe");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready, listening) = mpsc::channel();
        let (closed, log_closed) = mpsc::channel();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some((_, address)) = line.split_once("listening on http://") {
                    let _ = ready.send(address.trim().to_owned());
                }
                lines.lock().expect("the log").push(line);
            }
            let _ = closed.send(());
        });
        let process = Guard(Some(child));
        let address = listening.recv_timeout(START_LIMIT).unwrap_or_else(|_| {
            panic!(
                "the server did not listen: {:?}",
                log.lock().expect("the log")
            )
        });
        Self {
            process,
            address,
            log,
            log_closed,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub(crate) fn send(&self, request: &Request<'_>) -> Answer {
        request.send(&self.address, None)
    }

    /// A stream (Server-Sent Events) read until it ends or for at most `limit`.
    pub(crate) fn stream(&self, request: &Request<'_>, limit: Duration) -> Answer {
        request.send(&self.address, Some(limit))
    }

    /// Stops the server with SIGTERM, as a service manager does; every line it wrote.
    pub(crate) fn stop(mut self) -> Vec<String> {
        procs::signal(self.process.pid(), "TERM");
        let ended = self.process.wait(Duration::from_secs(30));
        assert!(ended.is_some(), "the server did not stop on SIGTERM");
        // The last lines are read once the pipe closes.
        let _ = self.log_closed.recv_timeout(Duration::from_secs(10));
        self.log.lock().expect("the log").clone()
    }
}
