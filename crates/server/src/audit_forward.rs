//! Forwarding the audit trail to a SIEM (`audit.forward`): every row the store gets, from this
//! node or any other, sent on as one JSON line, in the order of the trail, to a file (appended,
//! mode 0600) or to syslog (RFC 5424 over a Unix datagram socket such as `/dev/log`, or UDP).
//! A file resumes after the last row it holds, so a restart neither repeats nor skips one;
//! syslog starts from the newest row at start. A copy kept outside the database is what shows
//! rows removed from the end of the trail, which its chain alone cannot.

use crate::state::AppState;
use kestrel_store::AuditEntry;
use serde_json::json;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::UdpSocket;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the audit trail is forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditForward {
    /// JSON lines appended to this file.
    File(PathBuf),
    /// Syslog datagrams to this Unix socket (`/dev/log`).
    SyslogUnix(PathBuf),
    /// Syslog datagrams to this UDP address (`host:port`).
    SyslogUdp(String),
}

impl AuditForward {
    /// `file:PATH`, `syslog` (`/dev/log`), `syslog:unix:PATH` or `syslog:udp:HOST:PORT`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let target = match text.split_once(':') {
            Some(("file", path)) if !path.is_empty() => Self::File(path.into()),
            None if text == "syslog" => Self::SyslogUnix("/dev/log".into()),
            Some(("syslog", rest)) => match rest.split_once(':') {
                Some(("unix", path)) if !path.is_empty() => Self::SyslogUnix(path.into()),
                Some(("udp", address)) if address.contains(':') => Self::SyslogUdp(address.into()),
                _ => return Err(invalid(text)),
            },
            _ => return Err(invalid(text)),
        };
        Ok(target)
    }
}

fn invalid(text: &str) -> String {
    format!(
        "audit.forward must be file:PATH, syslog, syslog:unix:PATH or syslog:udp:HOST:PORT, \
         not '{text}'"
    )
}

/// Rows read from the store at a time.
const BATCH: usize = 500;

/// How often the store is asked for new rows.
const POLL: Duration = Duration::from_millis(500);

/// Sends every row of the trail after row `last` to `target`, for as long as the server runs.
pub(crate) async fn forward_forever(state: AppState, target: AuditForward, last: i64) {
    let mut last = last;
    let mut every = tokio::time::interval(POLL);
    loop {
        every.tick().await;
        match forward_new(&state, &target, last).await {
            Ok(sent) => last = sent,
            Err(error) => crate::log::error(&format!("audit.forward: {error}")),
        }
    }
}

/// The row to forward after: the last one the file holds, or, for syslog, the newest now.
pub(crate) async fn start_after(state: &AppState, target: &AuditForward) -> Result<i64, String> {
    if let AuditForward::File(path) = target {
        let path = path.clone();
        return tokio::task::spawn_blocking(move || last_in_file(&path))
            .await
            .map_err(|error| error.to_string())?;
    }
    let mut last = 0;
    loop {
        let rows = state
            .secrets()
            .audit_after(last, BATCH)
            .await
            .map_err(|error| error.to_string())?;
        match rows.last() {
            Some(newest) => last = newest.id,
            None => return Ok(last),
        }
    }
}

/// The `id` of the last line of the file; 0 when it is absent or empty.
fn last_in_file(path: &Path) -> Result<i64, String> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    let mut last = 0;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        if let Some(id) = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|row| row["id"].as_i64())
        {
            last = id;
        }
    }
    Ok(last)
}

/// Sends the rows after `last`, in order; the last one sent.
async fn forward_new(state: &AppState, target: &AuditForward, last: i64) -> Result<i64, String> {
    let mut last = last;
    loop {
        let rows = state
            .secrets()
            .audit_after(last, BATCH)
            .await
            .map_err(|error| error.to_string())?;
        let Some(newest) = rows.last().map(|row| row.id) else {
            return Ok(last);
        };
        let target = target.clone();
        tokio::task::spawn_blocking(move || send(&target, &rows))
            .await
            .map_err(|error| error.to_string())??;
        last = newest;
    }
}

/// One row as its JSON line: the entry as the API shows it, with `kind: kestrel.audit`.
fn line(entry: &AuditEntry) -> String {
    let mut value = serde_json::to_value(entry).unwrap_or_else(|_| json!({}));
    value["kind"] = json!("kestrel.audit");
    value.to_string()
}

fn send(target: &AuditForward, rows: &[AuditEntry]) -> Result<(), String> {
    match target {
        AuditForward::File(path) => append(path, rows),
        AuditForward::SyslogUnix(path) => {
            let socket = UnixDatagram::unbound().map_err(|e| e.to_string())?;
            for row in rows {
                socket
                    .send_to(syslog(row).as_bytes(), path)
                    .map_err(|error| format!("syslog at {}: {error}", path.display()))?;
            }
            Ok(())
        }
        AuditForward::SyslogUdp(address) => {
            let socket = UdpSocket::bind(if address.starts_with('[') {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            })
            .map_err(|e| e.to_string())?;
            for row in rows {
                socket
                    .send_to(syslog(row).as_bytes(), address.as_str())
                    .map_err(|error| format!("syslog at {address}: {error}"))?;
            }
            Ok(())
        }
    }
}

fn append(path: &Path, rows: &[AuditEntry]) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    let text: String = rows.iter().map(|row| line(row) + "\n").collect();
    file.write_all(text.as_bytes())
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// An RFC 5424 message: facility auth (10), severity notice (5), the JSON line as its text.
fn syslog(entry: &AuditEntry) -> String {
    let at = entry
        .at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "-".into());
    format!(
        "<85>1 {at} {host} kestrel {} audit - {}",
        std::process::id(),
        line(entry)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_parsed_or_refused_by_name() {
        assert_eq!(
            AuditForward::parse("file:/var/log/kestrel-audit.jsonl"),
            Ok(AuditForward::File("/var/log/kestrel-audit.jsonl".into()))
        );
        assert_eq!(
            AuditForward::parse("syslog"),
            Ok(AuditForward::SyslogUnix("/dev/log".into()))
        );
        assert_eq!(
            AuditForward::parse("syslog:udp:127.0.0.1:514"),
            Ok(AuditForward::SyslogUdp("127.0.0.1:514".into()))
        );
        assert!(
            AuditForward::parse("splunk")
                .unwrap_err()
                .contains("'splunk'")
        );
        assert!(AuditForward::parse("syslog:udp:nowhere").is_err());
        assert!(AuditForward::parse("file:").is_err());
    }
}
