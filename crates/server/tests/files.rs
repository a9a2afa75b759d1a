//! The internal storage through the API: a FILE input uploaded as a multipart file part, a
//! task's output files as `kestra://` URIs, the file route serving an ended execution's file
//! masked, its bounds, and retention removing the files with their execution.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;
mod ui_support;

use axum::http::{Method, StatusCode};
use common::{Answer, Harness, Who, harness_with};
use kestrel_storage::{LocalStorage, Storage};
use std::sync::Arc;
use std::time::Duration;
use ui_support::Client;

/// Reads an uploaded file, writes an output file holding its line count and a secret.
const FILES_FLOW: &str = r#"id: files
namespace: team
inputs:
  - id: data
    type: FILE
tasks:
  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      in.csv: "{{ inputs.data }}"
    env:
      TOKEN: "{{ secret('API_TOKEN') }}"
    outputFiles: ["out/*.txt"]
    commands:
      - mkdir out
      - echo "lines=$(wc -l < in.csv) token=$TOKEN" > out/report.txt
"#;

const SECRET: &str = "file-secret-9876";

/// Triggers `path` (`/api/v1/main/executions/...`) as the admin with the FILE input `data`
/// sent as a multipart file part named `file_name`.
async fn upload(h: &Harness, path: &str, file_name: &str, content: &[u8]) -> Answer {
    let boundary = "XkestrelX";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    h.send(Method::POST, path, Who::Admin, Some((&content_type, body)))
        .await
}

fn storage(root: &std::path::Path, max_file_size: u64) -> Arc<dyn Storage> {
    Arc::new(LocalStorage::new(root, max_file_size))
}

/// Every regular file under `root`.
fn files_under(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test]
async fn an_uploaded_file_flows_through_tasks_and_the_file_route_serves_it_masked() {
    let root = tempfile::tempdir().unwrap();
    let store = storage(root.path(), 1 << 20);
    let h = harness_with(|o| o.storage = Some(store)).await;
    h.secret("team", "API_TOKEN", SECRET).await;
    h.flow(FILES_FLOW).await;
    let answer = upload(
        &h,
        "/api/v1/main/executions/team/files?wait=true",
        "../../data.csv",
        b"a\nb\nc\n",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let execution = answer.json();
    assert_eq!(execution["state"]["current"], "SUCCESS", "{execution}");
    let id = execution["id"].as_str().unwrap();
    let prefix = format!("kestra:///team/files/executions/{id}/");
    assert_eq!(
        execution["inputs"]["data"],
        format!("{prefix}inputs/data/data.csv"),
        "the upload keeps its name, never its folders"
    );
    let report = execution["taskRunList"][0]["outputs"]["outputFiles"]["out/report.txt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        report.starts_with(&format!("{prefix}tasks/make/")),
        "{report}"
    );

    let file = |path: &str| format!("/api/v1/main/executions/{id}/file?path={path}");
    let served = h.get(&file(&report), Who::Admin).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text);
    assert_eq!(served.text, "lines=3 token=******\n");
    let disposition = served.headers["content-disposition"].to_str().unwrap();
    assert_eq!(disposition, "attachment; filename=\"report.txt\"");
    let metas = h
        .get(
            &format!("/api/v1/main/executions/{id}/file/metas?path={report}"),
            Who::Admin,
        )
        .await;
    assert_eq!(metas.json()["size"], "lines=3 token=******\n".len());
    let on_disk: Vec<String> = files_under(root.path())
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    assert!(
        on_disk.iter().all(|text| !text.contains(SECRET)),
        "{on_disk:?}"
    );

    let outside = h
        .get(
            &file("kestra:///team/files/executions/other/x.txt"),
            Who::Admin,
        )
        .await;
    assert_eq!(
        outside.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        outside.text
    );
    let traversal = h
        .get(&file(&format!("{prefix}../other/x.txt")), Who::Admin)
        .await;
    assert_eq!(traversal.status, StatusCode::UNPROCESSABLE_ENTITY);
    let absent = h.get(&file(&format!("{prefix}none.txt")), Who::Admin).await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    h.assert_never_answered(&[SECRET]);
}

#[tokio::test]
async fn a_file_is_served_only_to_who_may_see_its_execution() {
    let root = tempfile::tempdir().unwrap();
    let store = storage(root.path(), 1 << 20);
    let h = harness_with(|o| o.storage = Some(store)).await;
    h.secret("ops", "API_TOKEN", SECRET).await;
    h.flow(&FILES_FLOW.replace("namespace: team", "namespace: ops"))
        .await;
    let answer = upload(
        &h,
        "/api/v1/main/executions/ops/files?wait=true",
        "d.csv",
        b"x\n",
    )
    .await;
    let execution = answer.json();
    let id = execution["id"].as_str().unwrap();
    let input = execution["inputs"]["data"].as_str().unwrap();
    let path = format!("/api/v1/main/executions/{id}/file?path={input}");
    assert_eq!(h.get(&path, Who::Team).await.status, StatusCode::FORBIDDEN);
    assert_eq!(h.get(&path, Who::Admin).await.text, "x\n");
}

#[tokio::test]
async fn an_upload_over_the_size_limit_is_refused_and_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let store = storage(root.path(), 4);
    let h = harness_with(|o| o.storage = Some(store)).await;
    h.flow(FILES_FLOW).await;
    let answer = upload(
        &h,
        "/api/v1/main/executions/team/files",
        "d.csv",
        b"0123456789",
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.text
    );
    assert!(
        answer
            .text
            .contains("larger than 4 bytes (storage.max-file-size)"),
        "{}",
        answer.text
    );
    assert_eq!(files_under(root.path()), Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn retention_removes_an_executions_files_with_it() {
    let root = tempfile::tempdir().unwrap();
    let store = storage(root.path(), 1 << 20);
    let h = harness_with(|o| {
        o.storage = Some(store);
        o.retention.executions = Duration::ZERO;
    })
    .await;
    h.secret("team", "API_TOKEN", SECRET).await;
    h.flow(FILES_FLOW).await;
    let answer = upload(
        &h,
        "/api/v1/main/executions/team/files?wait=true",
        "d.csv",
        b"x\n",
    )
    .await;
    assert_eq!(answer.json()["state"]["current"], "SUCCESS");
    assert_eq!(
        files_under(root.path()).len(),
        2,
        "the input and the report"
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (executions, _) = h.state.purge_expired().await.unwrap();
    assert_eq!(executions, 1);
    assert_eq!(files_under(root.path()), Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn the_execution_page_lists_its_files_and_previews_them_masked() {
    let root = tempfile::tempdir().unwrap();
    let store = storage(root.path(), 1 << 20);
    let h = harness_with(|o| o.storage = Some(store)).await;
    h.secret("team", "API_TOKEN", SECRET).await;
    h.flow(FILES_FLOW).await;
    let answer = upload(
        &h,
        "/api/v1/main/executions/team/files?wait=true",
        "d.csv",
        b"x\n",
    )
    .await;
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let client = Client::ada(&h).await;
    let page = client
        .get(&format!("/ui/executions/{id}?tab=outputs"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    // The templates escape `/` in what they insert.
    let html = page.html.replace("&#x2f;", "/");
    assert!(html.contains("<code>inputs/data/d.csv</code>"), "{html}");
    let preview_link = html
        .split("href=\"")
        .find(|part| {
            part.starts_with(&format!("/ui/executions/{id}/file?path="))
                && part.contains("report.txt")
        })
        .and_then(|part| part.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let preview = client.get(&preview_link).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.html);
    assert!(
        preview.html.contains("lines=1 token=******"),
        "{}",
        preview.html
    );
    let download = client
        .get(&preview_link.replace("/file?", "/file/download?"))
        .await;
    assert_eq!(download.html, "lines=1 token=******\n");
    client.assert_never_shown(&[SECRET]);
}

/// LogToFileTest: task. A `logToFile` task's attempt names a file of its log entries, one
/// line each, masked like the execution's other files.
#[tokio::test]
async fn a_log_to_file_attempt_names_the_file_of_its_entries() {
    let root = tempfile::tempdir().unwrap();
    let store = storage(root.path(), 1 << 20);
    let h = harness_with(|o| o.storage = Some(store)).await;
    h.secret("team", "API_TOKEN", SECRET).await;
    h.flow(concat!(
        "id: logged\nnamespace: team\ntasks:\n",
        "  - id: hello\n    type: io.kestra.plugin.core.log.Log\n",
        "    message: \"Hello World! {{ secret('API_TOKEN') }}\"\n    logToFile: true\n",
    ))
    .await;
    let execution = h.run("team", "logged").await;
    assert_eq!(execution["state"]["current"], "SUCCESS", "{execution}");
    let attempts = execution["taskRunList"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    let log_file = attempts[0]["logFile"].as_str().unwrap();
    let id = execution["id"].as_str().unwrap();
    let served = h
        .get(
            &format!("/api/v1/main/executions/{id}/file?path={log_file}"),
            Who::Admin,
        )
        .await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text);
    let lines: Vec<&str> = served.text.lines().collect();
    assert_eq!(lines.len(), 1, "{}", served.text);
    assert!(
        lines[0].ends_with(" INFO Hello World! ******"),
        "{}",
        lines[0]
    );
    h.assert_never_answered(&[SECRET]);
}

/// PauseTest.runOnResume with Kestra's `pause_on_resume` flow: a resume's FILE input is
/// uploaded as a multipart file part into the execution's storage, and the Pause's
/// `onResume` output gives its `kestra://` URI, whose content the file route serves.
#[tokio::test]
async fn a_resumes_file_input_is_stored_as_a_triggers() {
    let root = tempfile::tempdir().unwrap();
    let store = storage(root.path(), 1 << 20);
    let h = harness_with(|o| o.storage = Some(store)).await;
    h.flow(include_str!(
        "../../kestrel/tests/kestra/flows/pause_on_resume.yaml"
    ))
    .await;
    let created = h
        .send(
            Method::POST,
            "/api/v1/main/executions/io.kestra.tests/pause_on_resume",
            Who::Admin,
            None,
        )
        .await
        .json();
    let id = created["id"].as_str().unwrap().to_owned();
    let mut paused = h.execution(&id).await;
    for _ in 0..400 {
        if paused["state"]["current"] == "PAUSED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        paused = h.execution(&id).await;
    }
    assert_eq!(paused["state"]["current"], "PAUSED", "{paused}");
    assert_eq!(paused["taskRunList"].as_array().unwrap().len(), 1);

    let boundary = "XkestrelX";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"asked\"\r\n\r\nrestarted\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"data\"\r\n\
         Content-Type: text/plain\r\n\r\n{id}\r\n--{boundary}--\r\n"
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let resume = format!("/api/v1/main/executions/{id}/resume");
    let resumed = h
        .send(
            Method::POST,
            &resume,
            Who::Admin,
            Some((&content_type, body.into_bytes())),
        )
        .await;
    assert_eq!(resumed.status, StatusCode::NO_CONTENT, "{}", resumed.text);
    let done = h.ended(&id).await;
    assert_eq!(done["state"]["current"], "SUCCESS", "{done}");
    let values = &done["taskRunList"][1]["outputs"]["values"];
    assert_eq!(values["asked"], "restarted");
    let uri = values["data"].as_str().unwrap();
    assert!(uri.starts_with("kestra://"), "{uri}");
    let served = h
        .get(
            &format!("/api/v1/main/executions/{id}/file?path={uri}"),
            Who::Admin,
        )
        .await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text);
    assert_eq!(served.text, id);
}
