//! Kestra's own invalid test flows (tests/kestra/invalids, see the NOTICE one folder up),
//! refused by `kestrel validate` for the reasons Kestra's tests assert of each. Each case
//! names the Kestra test it follows.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use std::path::PathBuf;
use util::Sandbox;

/// One invalid flow, refused for Kestra's reasons.
struct Case {
    file: &'static str,
    /// The Kestra test asserting on it.
    kestra_test: &'static str,
    /// What Kestra's test asserts the message holds, each once at least.
    reasons: &'static [&'static str],
    /// A reason Kestra's test counts, and how many times.
    counted: Option<(&'static str, usize)>,
}

const fn case(
    file: &'static str,
    kestra_test: &'static str,
    reasons: &'static [&'static str],
) -> Case {
    Case {
        file,
        kestra_test,
        reasons,
        counted: None,
    }
}

const CASES: &[Case] = &[
    case(
        "workingdirectory-invalid.yaml",
        "FlowTest.workingDirectoryTaskInvalid",
        &["Only runnable tasks are allowed as children of a WorkingDirectory task"],
    ),
    case(
        "workingdirectory-no-tasks.yaml",
        "FlowTest.workingDirectoryNoTasks",
        &["The 'tasks' property cannot be empty"],
    ),
    case(
        "dag-cyclicdependency.yaml",
        "DagTest.dagCyclicDependencies",
        &["dag: Cyclic dependency detected: task1, task2"],
    ),
    case(
        "dag-notexist-task.yaml",
        "DagTest.dagNotExistTask",
        &["dag: Not existing task id in dependency: taskX"],
    ),
    case(
        "duplicate-inputs.yaml",
        "FlowTest.duplicateInputs",
        &["Duplicate input with name [first_input]"],
    ),
    case(
        "duplicate-key.yaml",
        "YamlParserTest.duplicateKey",
        &["Duplicate field 'variables.tf'"],
    ),
    case(
        "duplicate-parallel.yaml",
        "FlowTest.duplicateParallel",
        &["Duplicate task id with name [t3]"],
    ),
    case(
        "duplicate.yaml",
        "FlowTest.duplicate",
        &[
            "Duplicate task id with name [date, listen]",
            "Duplicate trigger id with name [trigger]",
        ],
    ),
    case(
        "empty.yaml",
        "YamlParserTest.empty",
        &["tasks: must not be empty"],
    ),
    case(
        "inputs-bad-type.yaml",
        "YamlParserTest.inputsBadType",
        &["Invalid type: FOO"],
    ),
    // No Kestra test asserts on it: the reason is its validator, which is no regex.
    case(
        "inputs-bad-validator-syntax.yaml",
        "(none)",
        &["inputs[0].validator: "],
    ),
    case(
        "inputs-validation.yaml",
        "FlowTest.inputValidation",
        &[
            "no `defaults` can be set for inputs of type 'FILE'",
            "`itemType` cannot be `ARRAY`",
        ],
    ),
    // Kestra: "missing type id property 'type'"; kestrel names the property the same way as
    // every missing one.
    case(
        "inputs.yaml",
        "YamlParserTest.inputsFailed",
        &["inputs[0].type: must not be null"],
    ),
    Case {
        file: "invalid-parallel.yaml",
        kestra_test: "YamlParserTest.invalidParallel",
        reasons: &[],
        counted: Some(("must not be empty", 3)),
    },
    case(
        "invalid-property.yaml",
        "YamlParserTest.invalidProperty",
        &[
            "Unrecognized field \"invalid\" (class io.kestra.plugin.core.debug.Return), not marked as ignorable",
        ],
    ),
    case(
        "invalid-task.yaml",
        "YamlParserTest.invalidTask",
        &["Invalid type: io.kestra.plugin.core.debug.MissingOne"],
    ),
    // Kestra counts 4 violations of the flow's id, its namespace and its task without an id.
    case(
        "invalid.yaml",
        "YamlParserTest.validation",
        &[
            "id: must match",
            "namespace: must match",
            "tasks[0].id: must not be null",
        ],
    ),
    Case {
        file: "listener.yaml",
        kestra_test: "YamlParserTest.listeners",
        reasons: &[],
        counted: Some(("must not be empty", 2)),
    },
    case(
        "recursive-flow.yaml",
        "FlowValidationTest.invalidRecursiveFlow",
        &["Recursive call to flow [io.kestra.tests.recursive-flow]"],
    ),
    case(
        "switch-invalid.yaml",
        "FlowTest.switchTaskInvalid",
        &["impossible: No task defined, neither cases or default have any tasks"],
    ),
    case(
        "system-labels.yaml",
        "FlowValidationTest.systemLabelShouldFailValidation",
        &[
            "System labels can only be set by Kestra itself, offending label: system.label=system_key",
            "System labels can only be set by Kestra itself, offending label: system.id=id",
        ],
    ),
    case(
        "worker-group.yaml",
        "FlowTest.workerGroup",
        &["tasks[0].workerGroup: Worker Group is an Enterprise Edition functionality"],
    ),
];

/// The invalid flows refused, for now, because kestrel lacks a task type they use, not for
fn invalids() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kestra/invalids")
}

/// `kestrel validate FILE`'s exit code and error text.
fn validate(file: &str) -> (Option<i32>, String) {
    let sandbox = Sandbox::new();
    let path = invalids().join(file);
    let output = sandbox
        .kestrel(["validate".to_owned(), path.display().to_string()])
        .output();
    (output.code, output.stderr)
}

#[test]
fn every_invalid_flow_is_refused_for_kestras_reasons() {
    for case in CASES {
        let (code, stderr) = validate(case.file);
        let at = format!("{} ({}):\n{stderr}", case.file, case.kestra_test);
        assert_eq!(code, Some(2), "{at}");
        for reason in case.reasons {
            assert!(stderr.contains(reason), "missing {reason:?} in {at}");
        }
        if let Some((reason, times)) = case.counted {
            assert_eq!(stderr.matches(reason).count(), times, "{reason:?} in {at}");
        }
    }
}

#[test]
fn every_invalid_fixture_is_held_to_a_case() {
    let mut files: Vec<String> = std::fs::read_dir(invalids())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut covered: Vec<String> = CASES.iter().map(|case| case.file.to_owned()).collect();
    covered.sort();
    assert_eq!(files, covered);
    assert_eq!(files.len(), 22, "Kestra's flows/invalids");
}
