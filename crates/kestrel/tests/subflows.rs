//! Subflows in `kestrel run`: where children are found (`--flows`), how deep they may nest,
//! `wait: false`, and secrets crossing the parent and the child only masked.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use serde_json::Value;
use util::{MASK, Sandbox};

const LOG: &str = "io.kestra.plugin.core.log.Log";
const SUBFLOW: &str = "io.kestra.plugin.core.flow.Subflow";

/// A flow `id` of `namespace` starting `child` (of `dev`) with `extra` properties.
fn parent(id: &str, namespace: &str, child: &str, extra: &str) -> String {
    format!(
        "id: {id}\nnamespace: {namespace}\ntasks:\n  - id: launch\n    type: {SUBFLOW}\n    namespace: dev\n    flowId: {child}\n{extra}"
    )
}

fn child_flow(id: &str) -> String {
    format!(
        "id: {id}\nnamespace: dev\ntasks:\n  - id: hello\n    type: {LOG}\n    message: hi from {id}\n"
    )
}

fn launch(document: &Value) -> &Value {
    &document["taskRuns"][0]
}

#[test]
fn children_are_found_in_the_flows_folder_and_named_when_missing() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path("lib")).unwrap();
    sandbox.write("lib/child.yaml", &child_flow("child"));
    sandbox.write("lib/notes.yml", "not: [a flow");
    sandbox.write("parent.yml", &parent("p", "dev", "child", ""));

    let missing = sandbox
        .kestrel(["run", "parent.yml", "--output", "json"])
        .output();
    missing.assert_code(1);
    let document = missing.json();
    assert_eq!(document["state"], "FAILED");
    let error = launch(&document)["error"].as_str().unwrap();
    assert!(
        error.starts_with("Unable to find flow 'dev'.'child' in "),
        "{error}"
    );

    let found = sandbox
        .kestrel(["run", "parent.yml", "--flows", "lib", "--output", "json"])
        .output();
    found.assert_code(0);
    assert!(
        found.stderr.contains("notes.yml: not a valid flow"),
        "{}",
        found.stderr
    );
    let document = found.json();
    assert_eq!(document["state"], "SUCCESS");
    let child = &document["subflowExecutions"][0];
    assert_eq!(child["flowId"], "child");
    assert_eq!(child["logs"][0]["message"], "hi from child");
    assert_eq!(launch(&document)["outputs"]["executionId"], child["id"]);
    assert_eq!(launch(&document)["outputs"]["state"], "SUCCESS");
}

/// A flow starting itself is refused when validated (Kestra's `Recursive call to flow`); two
/// flows starting each other run until the depth limit.
#[test]
fn flows_starting_each_other_stop_at_the_depth_limit() {
    let sandbox = Sandbox::new();
    sandbox.write("ping.yml", &parent("ping", "dev", "pong", ""));
    sandbox.write("pong.yml", &parent("pong", "dev", "ping", ""));
    let out = sandbox
        .kestrel(["run", "ping.yml", "--output", "json"])
        .output();
    out.assert_code(1);
    let document = out.json();
    assert_eq!(document["state"], "FAILED");
    let children = document["subflowExecutions"].as_array().unwrap();
    assert_eq!(children.len(), 10, "the root and 10 levels of children");
    let deepest = &children[0];
    let error = launch(deepest)["error"].as_str().unwrap();
    assert_eq!(
        error,
        "Cannot start flow 'dev'.'pong': subflows are nested 10 deep already (does a flow start \
         itself?)"
    );
}

#[test]
fn a_child_not_waited_for_gives_its_id_only() {
    let sandbox = Sandbox::new();
    sandbox.write("child.yml", &child_flow("child"));
    sandbox.write(
        "parent.yml",
        &parent("p", "dev", "child", "    wait: false\n"),
    );
    let document = sandbox
        .kestrel(["run", "parent.yml", "--output", "json"])
        .output()
        .json();
    assert_eq!(document["state"], "SUCCESS");
    let outputs = launch(&document)["outputs"].as_object().unwrap();
    assert_eq!(outputs.keys().collect::<Vec<_>>(), ["executionId"]);
    assert_eq!(
        outputs["executionId"],
        document["subflowExecutions"][0]["id"]
    );
}

#[test]
fn text_output_shows_the_childs_log_lines_too() {
    let sandbox = Sandbox::new();
    sandbox.write("child.yml", &child_flow("child"));
    sandbox.write("parent.yml", &parent("p", "dev", "child", ""));
    let out = sandbox.kestrel(["run", "parent.yml"]).output();
    out.assert_code(0);
    assert!(out.stdout.contains("hello hi from child"), "{}", out.stdout);
}

/// The child reads its own namespace's secret and gives it back as an output; the parent
/// sends its own secret as an input. Each is masked on the other side: the parent's
/// expressions get the child's outputs as readers see them.
#[test]
fn secrets_cross_between_parent_and_child_only_masked() {
    let sandbox = Sandbox::new();
    for (namespace, key, value) in [
        ("team.b", "B", "team-b-secret-41"),
        ("team.a", "A", "team-a-secret-93"),
    ] {
        sandbox
            .kestrel(["secrets", "set", namespace, key])
            .stdin(value)
            .output()
            .assert_code(0);
    }
    sandbox.write(
        "child.yml",
        &format!(
            "id: child\nnamespace: team.b\ninputs:\n  - id: given\n    type: STRING\ntasks:\n  - id: echo\n    type: {LOG}\n    message: \"got {{{{ inputs.given }}}}\"\noutputs:\n  - id: leak\n    type: STRING\n    value: \"{{{{ secret('B') }}}}\"\n"
        ),
    );
    sandbox.write(
        "parent.yml",
        &format!(
            "id: p\nnamespace: team.a\ntasks:\n  - id: launch\n    type: {SUBFLOW}\n    namespace: team.b\n    flowId: child\n    inputs:\n      given: \"{{{{ secret('A') }}}}\"\n  - id: show\n    type: {LOG}\n    message: \"child gave {{{{ outputs.launch.outputs.leak }}}}\"\n"
        ),
    );
    let out = sandbox
        .kestrel(["run", "parent.yml", "--output", "json"])
        .output();
    out.assert_code(0)
        .assert_hides("team-b-secret-41")
        .assert_hides("team-a-secret-93");
    let document = out.json();
    let child = &document["subflowExecutions"][0];
    assert_eq!(child["logs"][0]["message"], format!("got {MASK}"));
    assert_eq!(child["outputs"]["leak"], MASK);
    assert_eq!(document["logs"][0]["message"], format!("child gave {MASK}"));
}
