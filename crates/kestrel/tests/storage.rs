//! The internal storage from `kestrel run`: a FILE input given as a local file, output files
//! as `kestra://` URIs that later tasks read back, the size bound, and nothing left behind.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use util::Sandbox;

const FLOW: &str = r#"id: files
namespace: company.team
inputs:
  - id: data
    type: FILE
tasks:
  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      in.csv: "{{ inputs.data }}"
    outputFiles: ["out/*.txt"]
    commands:
      - mkdir out && wc -l < in.csv > out/count.txt
  - id: use
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      count.txt: "{{ outputs.make.outputFiles['out/count.txt'] }}"
    commands:
      - echo "lines=$(cat count.txt)"
"#;

#[test]
fn a_file_input_and_output_files_travel_as_uris_and_are_gone_after_the_run() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", FLOW);
    sandbox.write("data.csv", "a\nb\nc\n");
    let output = sandbox
        .kestrel([
            "run",
            "flow.yml",
            "--input",
            "data=data.csv",
            "--output",
            "json",
        ])
        .output();
    output.assert_code(0);
    let document = output.json();
    let id = document["id"].as_str().unwrap();
    let prefix = format!("kestra:///company/team/files/executions/{id}/");
    let count = document["taskRuns"][0]["outputs"]["outputFiles"]["out/count.txt"]
        .as_str()
        .unwrap();
    assert!(
        count.starts_with(&format!("{prefix}tasks/make/")),
        "{count}"
    );
    assert!(count.ends_with("/out/count.txt"), "{count}");
    assert!(
        output.messages().contains(&"lines=3".to_owned()),
        "{:?}",
        output.messages()
    );
    let storage = sandbox.path("data/storage");
    let left: Vec<_> = walk(&storage);
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_file_input_that_cannot_be_stored_is_refused_before_anything_runs() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", FLOW);
    let missing = sandbox
        .kestrel(["run", "flow.yml", "--input", "data=absent.csv"])
        .output();
    missing.assert_code(2);
    assert!(
        missing
            .stderr
            .contains("input 'data': cannot read absent.csv"),
        "{}",
        missing.stderr
    );
    sandbox.write("kestrel.yml", "storage:\n  max-file-size: 4B\n");
    sandbox.write("data.csv", "0123456789");
    let large = sandbox
        .kestrel([
            "--config",
            "kestrel.yml",
            "run",
            "flow.yml",
            "--input",
            "data=@data.csv",
        ])
        .output();
    large.assert_code(2);
    assert!(
        large
            .stderr
            .contains("input 'data': the file is larger than 4 bytes (storage.max-file-size)"),
        "{}",
        large.stderr
    );
    assert!(!large.stderr.contains("Execution"), "{}", large.stderr);
}

#[test]
fn a_file_of_another_namespace_is_not_readable() {
    let sandbox = Sandbox::new();
    sandbox.write("flow.yml", FLOW);
    let output = sandbox
        .kestrel([
            "run",
            "flow.yml",
            "--input",
            "data=kestra:///other/flow/executions/e1/inputs/data/x.csv",
            "--output",
            "json",
        ])
        .output();
    output.assert_code(1);
    let document = output.json();
    assert_eq!(document["state"], "FAILED");
    let messages = output.messages();
    assert!(
        messages.iter().any(|m| m.contains(
            "inputFiles: 'in.csv': kestra:///other/flow/executions/e1/inputs/data/x.csv is not a file of an execution of this flow's namespace"
        )),
        "{messages:?}"
    );
}

#[test]
fn expressions_read_an_output_file_through_its_uri() {
    let sandbox = Sandbox::new();
    let flow = r#"id: read_it
namespace: company.team
tasks:
  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles: ["a.txt"]
    commands:
      - printf 'hello file' > a.txt
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "{{ read(outputs.make.outputFiles['a.txt']) }} size={{ fileSize(outputs.make.outputFiles['a.txt']) }} empty={{ isFileEmpty(outputs.make.outputFiles['a.txt']) }}"
"#;
    let output = sandbox.run_json(flow, &[]);
    output.assert_code(0);
    let uri = output.json()["taskRuns"][0]["outputs"]["outputFiles"]["a.txt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        uri.starts_with("kestra:///company/team/read-it/executions/"),
        "{uri}"
    );
    assert_eq!(
        output.messages(),
        ["hello file size=10 empty=false".to_owned()]
    );
}

/// Every regular file under `root` (none when it does not exist).
fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
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

#[test]
fn a_subflows_files_are_its_own_and_are_gone_after_the_run() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "child.yml",
        concat!(
            "id: child\nnamespace: company.team\ntasks:\n",
            "  - id: make\n    type: io.kestra.plugin.scripts.shell.Commands\n",
            "    outputFiles: [\"out.txt\"]\n",
            "    commands:\n      - echo made > out.txt\n",
        ),
    );
    sandbox.write(
        "parent.yml",
        concat!(
            "id: parent\nnamespace: company.team\ntasks:\n",
            "  - id: call\n    type: io.kestra.plugin.core.flow.Subflow\n",
            "    namespace: company.team\n    flowId: child\n",
        ),
    );
    let output = sandbox
        .kestrel(["run", "parent.yml", "--output", "json"])
        .output();
    output.assert_code(0);
    let document = output.json();
    let child = &document["subflowExecutions"][0];
    let id = child["id"].as_str().unwrap();
    assert_ne!(document["id"], child["id"]);
    let file = child["taskRuns"][0]["outputs"]["outputFiles"]["out.txt"]
        .as_str()
        .unwrap();
    assert!(
        file.starts_with(&format!(
            "kestra:///company/team/child/executions/{id}/tasks/make/"
        )),
        "{file}"
    );
    let left: Vec<_> = walk(&sandbox.path("data/storage"));
    assert!(left.is_empty(), "{left:?}");
}

/// A WorkingDirectory's cache outlives the execution: a secret a task wrote into a cached file
/// is masked in the archive, as in the execution's own files.
#[test]
fn a_cached_file_never_holds_a_secret_at_rest() {
    let sandbox = Sandbox::new();
    let flow = concat!(
        "id: cached\nnamespace: company.team\ntasks:\n",
        "  - id: dir\n    type: io.kestra.plugin.core.flow.WorkingDirectory\n",
        "    cache:\n      patterns: [\"*.txt\"]\n    tasks:\n",
        "      - id: write\n        type: io.kestra.plugin.core.storage.LocalFiles\n",
        "        inputs:\n          token.txt: \"token={{ secret('API_TOKEN') }}\"\n",
    );
    let output = sandbox.run_json(flow, &[("SECRET_API_TOKEN", "czNjcjN0LWNhY2hlZA==")]);
    assert_eq!(output.json()["state"], "SUCCESS");
    let archives: Vec<_> = walk(&sandbox.path("data"))
        .into_iter()
        .filter(|path| path.ends_with("_cache/dir/cache.bin"))
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let archive = String::from_utf8_lossy(&std::fs::read(&archives[0]).unwrap()).into_owned();
    assert!(archive.contains("token=******"), "{archive}");
    assert!(!archive.contains("s3cr3t-cached"));
}

/// A state outlives the execution: a secret set into it is masked at rest, and the next
/// execution reads the masked value.
#[test]
fn a_state_never_holds_a_secret_at_rest() {
    let sandbox = Sandbox::new();
    let flow = concat!(
        "id: stateful\nnamespace: company.team\ntasks:\n",
        "  - id: set\n    type: io.kestra.plugin.core.state.Set\n",
        "    data:\n      token: \"{{ secret('API_TOKEN') }}\"\n",
    );
    let output = sandbox.run_json(flow, &[("SECRET_API_TOKEN", "czNjcjN0LWNhY2hlZA==")]);
    assert_eq!(output.json()["state"], "SUCCESS");
    let states: Vec<String> = walk(&sandbox.path("data"))
        .into_iter()
        .filter(|path| path.ends_with("state.json"))
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    assert_eq!(states, [r#"{"token":"******"}"#]);
}

/// `storage.Concat` joins files of the internal storage, given as a list or as a JSON text.
#[test]
fn concat_joins_files_with_a_separator() {
    let sandbox = Sandbox::new();
    let flow = concat!(
        "id: joined\nnamespace: company.team\ntasks:\n",
        "  - id: make\n    type: io.kestra.plugin.core.storage.LocalFiles\n",
        "    inputs:\n      a.txt: first\n      b.txt: second\n    outputs: [\"*.txt\"]\n",
        "  - id: list\n    type: io.kestra.plugin.core.storage.Concat\n",
        "    files:\n      - \"{{ outputs.make.uris['a.txt'] }}\"\n      - \"{{ outputs.make.uris['b.txt'] }}\"\n",
        "    separator: \"|\"\n    extension: .csv\n",
        "  - id: text\n    type: io.kestra.core.tasks.storages.Concat\n",
        "    files: \"[\\\"{{ outputs.make.uris['b.txt'] }}\\\"]\"\n",
        "  - id: show\n    type: io.kestra.plugin.core.debug.Return\n",
        "    format: \"{{ read(outputs.list.uri) }} {{ read(outputs.text.uri) }}\"\n",
    );
    let document = sandbox.run_json(flow, &[]).json();
    assert_eq!(document["state"], "SUCCESS", "{document}");
    let list = document["taskRuns"][1]["outputs"]["uri"].as_str().unwrap();
    assert!(list.ends_with("/concat.csv"), "{list}");
    assert_eq!(
        document["taskRuns"][3]["outputs"]["value"],
        "first|second| second"
    );
}

/// A run killed on the way leaves its files; the next `kestrel run` removes them (the claim
/// of a dead run is unlocked), and keeps those of a run still going (its claim is locked).
#[test]
fn a_run_removes_what_a_dead_run_left_in_the_storage() {
    let sandbox = Sandbox::new();
    let storage = sandbox.path("data").join("storage");
    let left = storage.join("company/team/gone/executions/dead1/tasks/t/r/secret.txt");
    std::fs::create_dir_all(left.parent().unwrap()).unwrap();
    std::fs::write(&left, "unmasked").unwrap();
    let claims = storage.join(".runs");
    std::fs::create_dir_all(&claims).unwrap();
    std::fs::write(
        claims.join("dead1"),
        "kestra:///company/team/gone/executions/dead1\n",
    )
    .unwrap();
    let alive = storage.join("company/team/busy/executions/live1/x.txt");
    std::fs::create_dir_all(alive.parent().unwrap()).unwrap();
    std::fs::write(&alive, "in use").unwrap();
    let held = std::fs::File::create(claims.join("live1")).unwrap();
    std::io::Write::write_all(
        &mut &held,
        b"kestra:///company/team/busy/executions/live1\n",
    )
    .unwrap();
    held.lock().unwrap();

    let flow = "id: next\nnamespace: company.team\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";
    assert_eq!(sandbox.run_json(flow, &[]).json()["state"], "SUCCESS");
    assert!(!left.exists(), "the dead run's files are removed");
    assert!(!claims.join("dead1").exists());
    assert!(alive.exists(), "a live run's files stay");
    assert!(claims.join("live1").exists());
    let claims_left: Vec<_> = std::fs::read_dir(&claims).unwrap().collect();
    assert_eq!(claims_left.len(), 1, "this run's own claim went with it");
}

/// A state's name goes into its place in the storage unmasked: one holding a secret is refused.
#[test]
fn a_state_named_by_a_secret_is_refused() {
    let sandbox = Sandbox::new();
    let flow = concat!(
        "id: stateful\nnamespace: company.team\ntasks:\n",
        "  - id: set\n    type: io.kestra.plugin.core.state.Set\n",
        "    name: \"{{ secret('API_TOKEN') }}\"\n    data:\n      a: 1\n",
    );
    let document = sandbox
        .run_json(flow, &[("SECRET_API_TOKEN", "czNjcjN0LWNhY2hlZA==")])
        .json();
    assert_eq!(document["state"], "FAILED");
    assert_eq!(
        document["taskRuns"][0]["error"],
        "name: must not hold a secret"
    );
    assert!(walk(&sandbox.path("data")).is_empty());
}
