//! `audit.forward`: the server sends every audit row on as a JSON line, to a file it resumes
//! after a restart (no row twice, none skipped) or to syslog over UDP; never a value.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::{Harness, harness_with};
use kestrel_server::{AuditForward, Server};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Starts the server's background work (the forwarding among it) over `h`.
async fn started(h: &Harness) -> Server {
    Server::start(h.state.clone()).await.unwrap()
}

/// Stops `server`'s background work: served on a socket until an end that is already there.
async fn stopped(server: Server) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    server
        .serve(listener, std::future::ready(()), Duration::from_secs(1))
        .await
        .unwrap();
}

/// The file's lines once it holds `count` of them (polled, with a deadline).
async fn lines(path: &std::path::Path, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        if lines.len() >= count || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rows_are_appended_to_a_file_once_each_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let target = AuditForward::File(file.clone());
    let h = harness_with(|o| o.audit_forward = Some(target.clone())).await;
    let server = started(&h).await;
    h.secret("team", "FORWARDED", "forwarded-value-123").await;
    let first = lines(&file, 1).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["kind"], "kestrel.audit");
    assert_eq!(first[0]["action"], "set");
    assert_eq!(first[0]["namespace"], "team");
    assert_eq!(first[0]["key"], "FORWARDED");
    stopped(server).await;
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Rows written while no server forwards are sent by the next one, after the last sent.
    h.secret("team", "FORWARDED", "forwarded-value-456").await;
    let again = h.restart(|o| o.audit_forward = Some(target)).await;
    let server = started(&again).await;
    again.secret("team", "OTHER", "forwarded-value-789").await;
    let all = lines(&file, 3).await;
    let ids: Vec<i64> = all.iter().map(|row| row["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 3, "{all:?}");
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "in order, once: {ids:?}"
    );
    stopped(server).await;
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("forwarded-value"), "{text}");
}

#[tokio::test]
async fn rows_go_to_syslog_over_udp() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let address = socket.local_addr().unwrap().to_string();
    let h = harness_with(|o| o.audit_forward = Some(AuditForward::SyslogUdp(address))).await;
    let server = started(&h).await;
    h.secret("team", "SYSLOGGED", "syslogged-value-123").await;
    let received = tokio::task::spawn_blocking(move || {
        let mut buffer = [0u8; 4096];
        let (length, _) = socket.recv_from(&mut buffer).unwrap();
        String::from_utf8_lossy(&buffer[..length]).into_owned()
    })
    .await
    .unwrap();
    assert!(received.starts_with("<85>1 "), "{received}");
    let json = &received[received.find('{').unwrap()..];
    let row: Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        (row["action"].as_str(), row["key"].as_str()),
        (Some("set"), Some("SYSLOGGED"))
    );
    assert!(!received.contains("syslogged-value"));
    stopped(server).await;
}
