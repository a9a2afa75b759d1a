//! Kestra's own test flows (tests/kestra/flows, see its NOTICE), run by `kestrel run` and
//! held to what Kestra's tests assert of them: states, task-run counts, order and outputs.
//! Each test names the Kestra test it follows.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use serde_json::Value;
use std::path::PathBuf;
use util::Sandbox;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kestra/flows")
        .join(name)
}

/// The JSON document of one run of fixture `name` with `inputs` (`KEY=VALUE` each).
fn run(name: &str, inputs: &[&str]) -> Value {
    run_in(&Sandbox::new(), name, inputs)
}

/// [`run`] in `sandbox`, where `inputs` may name its files.
fn run_in(sandbox: &Sandbox, name: &str, inputs: &[&str]) -> Value {
    sandbox.kestrel(run_args(name, inputs)).output().json()
}

/// The arguments of `kestrel run` of fixture `name` with `inputs`, its output JSON.
fn run_args(name: &str, inputs: &[&str]) -> Vec<String> {
    let mut args = vec![
        "run".to_owned(),
        fixture(name).display().to_string(),
        "--output".into(),
        "json".into(),
    ];
    for input in inputs {
        args.extend(["--input".to_owned(), (*input).to_owned()]);
    }
    args
}

fn state(document: &Value) -> &str {
    document["state"].as_str().unwrap()
}

fn task_ids(document: &Value) -> Vec<&str> {
    runs(document)
        .iter()
        .map(|run| run["taskId"].as_str().unwrap())
        .collect()
}

fn runs(document: &Value) -> &Vec<Value> {
    document["taskRuns"].as_array().unwrap()
}

/// The first task run of `task_id`.
fn run_of<'d>(document: &'d Value, task_id: &str) -> &'d Value {
    runs(document)
        .iter()
        .find(|run| run["taskId"] == task_id)
        .unwrap_or_else(|| panic!("no task run of {task_id}"))
}

fn state_of<'d>(document: &'d Value, task_id: &str) -> &'d str {
    run_of(document, task_id)["state"].as_str().unwrap()
}

#[test]
fn every_fixture_validates() {
    let sandbox = Sandbox::new();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kestra/flows");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let output = sandbox
            .kestrel(["validate".to_owned(), path.display().to_string()])
            .output();
        assert_eq!(
            output.code,
            Some(0),
            "{}: {}",
            path.display(),
            output.stderr
        );
    }
}

/// SwitchTest: switchFirst, switchSecond, switchThird, switchDefault.
#[test]
fn switch_runs_the_matching_case_or_the_defaults() {
    let first = run("switch.yaml", &["string=FIRST"]);
    assert_eq!(task_ids(&first)[1], "t1");
    let switch = &run_of(&first, "parent-seq")["outputs"];
    assert_eq!(
        (&switch["value"], &switch["defaults"]),
        (&"FIRST".into(), &false.into())
    );

    let second = run("switch.yaml", &["string=SECOND"]);
    assert_eq!(task_ids(&second)[1..3], ["t2", "t2_sub"]);
    assert_eq!(run_of(&second, "parent-seq")["outputs"]["value"], "SECOND");

    let third = run("switch.yaml", &["string=THIRD"]);
    assert_eq!(task_ids(&third)[1..4], ["t3", "failed", "error-t1"]);
    assert_eq!(run_of(&third, "parent-seq")["outputs"]["defaults"], false);

    let other = run("switch.yaml", &["string=DEFAULT"]);
    assert_eq!(task_ids(&other)[1], "default");
    let switch = &run_of(&other, "parent-seq")["outputs"];
    assert_eq!(
        (&switch["value"], &switch["defaults"]),
        (&"DEFAULT".into(), &true.into())
    );
}

/// SwitchTest: switchImpossible; FailTest: failOnSwitch. A Switch with nothing to run fails.
#[test]
fn a_switch_with_no_matching_case_and_no_defaults_fails() {
    let impossible = run("switch-impossible.yaml", &["string=impossible"]);
    assert_eq!(state(&impossible), "FAILED");

    let on_switch = run("fail-on-switch.yaml", &["param=fail"]);
    assert_eq!(runs(&on_switch).len(), 1);
    assert_eq!(state_of(&on_switch, "switch"), "FAILED");
    assert_eq!(state(&on_switch), "FAILED");
}

/// FailTest: failOnCondition, dontFailOnCondition.
#[test]
fn fail_fails_only_when_its_condition_holds() {
    let failed = run("fail-on-condition.yaml", &["param=fail"]);
    assert_eq!(runs(&failed).len(), 2);
    assert_eq!(state_of(&failed, "fail"), "FAILED");
    assert_eq!(state(&failed), "FAILED");

    let passed = run("fail-on-condition.yaml", &["param=success"]);
    assert_eq!(runs(&passed).len(), 3);
    assert_eq!(state_of(&passed, "fail"), "SUCCESS");
    assert_eq!(state(&passed), "SUCCESS");
}

/// AllowFailureTest: failed (its `success` runs the flow without its required input, which
/// kestrel refuses as Kestra's API does).
#[test]
fn allow_failure_turns_a_failure_into_a_warning_and_the_flow_goes_on() {
    let document = run("allow-failure.yaml", &["crash=1"]);
    assert_eq!(runs(&document).len(), 10);
    for (task, expected) in [
        ("first", "WARNING"),
        ("1-1-allow-failure", "WARNING"),
        ("1-1-1_seq", "FAILED"),
        ("1-1-1-1", "SUCCESS"),
        ("ko", "FAILED"),
        ("local-error", "SUCCESS"),
        ("1-2-todo", "SUCCESS"),
        ("global-error", "SUCCESS"),
        ("switch", "FAILED"),
        ("crash", "FAILED"),
    ] {
        assert_eq!(state_of(&document, task), expected, "{task}");
    }
    assert_eq!(state(&document), "FAILED");
}

/// OutputValuesTest: output.
#[test]
fn output_values_renders_its_map_into_values() {
    let document = run("output-values.yml", &[]);
    assert_eq!(state(&document), "SUCCESS");
    assert_eq!(runs(&document).len(), 1);
    let values = &runs(&document)[0]["outputs"]["values"];
    assert_eq!(
        (&values["output1"], &values["output2"]),
        (&"xyz".into(), &"abc".into())
    );
    assert!(
        values["taskInfo"]
            .as_str()
            .unwrap()
            .starts_with("return > ")
    );
}

/// SleepTest: sleepTaskTest.
#[test]
fn sleep_waits_and_succeeds() {
    let document = run("sleep-task-flow.yaml", &[]);
    assert_eq!(state(&document), "SUCCESS");
    let logs = document["logs"].to_string();
    assert!(logs.contains("Waiting for PT0.2S"), "{logs}");
}

/// TaskWithAllowWarningTest: runnableTask, flowableTask.
#[test]
fn allow_warning_turns_a_warning_into_a_success() {
    let runnable = run("task-allow-warning-runnable.yml", &[]);
    assert_eq!(state(&runnable), "SUCCESS");
    assert_eq!(runs(&runnable).len(), 2);
    let attempts = run_of(&runnable, "fail")["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);

    let flowable = run("task-allow-warning-flowable.yml", &[]);
    assert_eq!(state(&flowable), "SUCCESS");
    assert_eq!(runs(&flowable).len(), 3);
}

/// logs.yaml (ExecutionServiceTest): its `taskDefaults` and each task's `level` and
/// `logLevel`.
#[test]
fn task_defaults_and_log_levels_apply() {
    let document = run("logs.yaml", &[]);
    assert_eq!(state(&document), "SUCCESS");
    assert_eq!(runs(&document).len(), 5);
    let logs: Vec<(String, String)> = document["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let field = |name: &str| entry[name].as_str().unwrap().to_owned();
            (
                field("taskId"),
                format!("{} {}", field("level"), field("message")),
            )
        })
        .collect();
    let of = |task: &str| -> Vec<&str> {
        logs.iter()
            .filter(|(id, _)| id == task)
            .map(|(_, line)| line.as_str())
            .collect()
    };
    assert_eq!(of("t1"), ["TRACE first t1"]);
    assert_eq!(of("t2"), ["WARN second io.kestra.plugin.core.log.Log"]);
    assert_eq!(of("t3"), ["ERROR third logs"]);
    assert!(of("t4").is_empty(), "logLevel INFO drops TRACE");
    assert_eq!(of("t5"), ["INFO five first", "INFO five second"]);
}

/// The value of the execution's label `key`, if it has one.
fn label<'d>(document: &'d Value, key: &str) -> Option<&'d str> {
    document["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|label| label["key"] == key)
        .map(|label| label["value"].as_str().unwrap())
}

/// How many attempts the first task run of `task_id` took.
fn attempts_of(document: &Value, task_id: &str) -> usize {
    run_of(document, task_id)["attempts"]
        .as_array()
        .unwrap()
        .len()
}

/// The execution's own log messages (of no task).
fn execution_logs(document: &Value) -> Vec<&str> {
    document["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["taskId"] == "")
        .map(|entry| entry["message"].as_str().unwrap())
        .collect()
}

/// RetryCaseTest: retryFailedFlowAttempts, retryFailedFlowDuration. The flow's `retry` is the
/// retry of its tasks without one.
#[test]
fn the_flows_retry_tries_its_tasks_again() {
    let attempts = run("retry-failed-flow-attempts.yml", &[]);
    assert_eq!(state(&attempts), "FAILED");
    assert_eq!(attempts_of(&attempts, "fail"), 4);

    let duration = run("retry-failed-flow-duration.yml", &[]);
    assert_eq!(state(&duration), "FAILED");
    assert_eq!(attempts_of(&duration, "fail"), 3);
}

/// RetryCaseTest: retryFlowable. A flowable's `retry` is the retry of its children.
#[test]
fn a_flowables_retry_tries_its_children_again() {
    let document = run("retry-flowable.yaml", &[]);
    assert_eq!(state(&document), "FAILED");
    assert_eq!(task_ids(&document), ["flowable", "child"]);
    assert_eq!(attempts_of(&document, "child"), 3);
    assert_eq!(attempts_of(&document, "flowable"), 1);
}

/// SLAServiceTest / SLATestCase: maxDurationSLAShouldFail, maxDurationSLAShouldPass.
#[test]
fn a_max_duration_sla_fails_an_execution_that_runs_longer() {
    let failed = run("sla-max-duration-fail.yaml", &[]);
    assert_eq!(state(&failed), "FAILED");
    assert_eq!(state_of(&failed, "sleep"), "KILLED");
    let logs = execution_logs(&failed);
    assert!(
        logs.iter().any(|message| message.starts_with(
            "Execution failed due to SLA 'maxDuration' violated: execution duration of PT0.5"
        ) && message.ends_with("exceed the maximum duration of PT0.5S.")),
        "{logs:?}"
    );

    let passed = run("sla-max-duration-ok.yaml", &[]);
    assert_eq!(state(&passed), "SUCCESS");
    assert!(execution_logs(&passed).is_empty());
}

/// SLATestCase: executionConditionSLAShouldPass, executionConditionSLAShouldCancel,
/// executionConditionSLAShouldLabel.
#[test]
fn an_execution_assertion_sla_cancels_or_labels_as_its_behavior_says() {
    let passed = run("sla-execution-condition.yaml", &[]);
    assert_eq!(state(&passed), "SUCCESS");
    assert_eq!(label(&passed, "sla"), None);

    let cancelled = run("sla-execution-condition.yaml", &["string=CANCEL"]);
    assert_eq!(state(&cancelled), "CANCELLED");
    assert!(runs(&cancelled).is_empty());

    let labelled = run("sla-execution-condition.yaml", &["string=LABEL"]);
    assert_eq!(state(&labelled), "SUCCESS");
    assert_eq!(label(&labelled, "sla"), Some("violated"));
    assert_eq!(
        execution_logs(&labelled),
        ["SLA 'condition' violated: assertion is false: {{inputs.string != 'LABEL'}}."]
    );
}

/// Every execution gets Kestra's label `system.correlationId`: its own id, for one no other
/// execution started.
#[test]
fn every_execution_is_labelled_with_its_correlation_id() {
    let document = run("sla-max-duration-ok.yaml", &[]);
    assert_eq!(
        label(&document, "system.correlationId"),
        document["id"].as_str()
    );
}

/// EachSequentialTest: eachNull.
#[test]
fn a_null_for_each_value_fails_as_kestras_does() {
    let document = run("each-null.yaml", &[]);
    assert_eq!(state(&document), "FAILED");
    assert_eq!(runs(&document).len(), 1);
    let logs = document["logs"].to_string();
    assert!(
        logs.contains(
            "Found '1' null values on Each, with values=[1, null, {key=my-key, value=my-value}]"
        ),
        "{logs}"
    );
}

/// FlowConcurrencyCaseTest runs several executions at once, which only the server could do
/// (it refuses these flows for now: docs/compatibility.md); `kestrel run` starts one, which
/// no limit of 1 or more holds back.
#[test]
fn one_execution_of_a_flow_with_a_concurrency_limit_runs() {
    for name in [
        "flow-concurrency-queue.yml",
        "flow-concurrency-cancel.yml",
        "flow-concurrency-fail.yml",
    ] {
        let document = run(name, &[]);
        assert_eq!(state(&document), "SUCCESS", "{name}");
        assert_eq!(task_ids(&document), ["sleep"], "{name}");
    }
}

/// RetryCaseTest: retryNewExecutionTaskAttempts, retryNewExecutionTaskDuration,
/// retryNewExecutionFlowAttempts, retryNewExecutionFlowDuration. Kestra sees executions end
/// RETRIED, RETRIED, FAILED: `kestrel run` shows the last, the third of its chain, labelled
/// with the first one's id.
#[test]
fn a_retry_in_new_executions_runs_the_flow_again_up_to_its_bounds() {
    for name in [
        "retry-new-execution-task-attempts.yml",
        "retry-new-execution-task-duration.yml",
        "retry-new-execution-flow-attempts.yml",
        "retry-new-execution-flow-duration.yml",
    ] {
        let document = run(name, &[]);
        assert_eq!(state(&document), "FAILED", "{name}");
        assert_eq!(document["metadata"]["attemptNumber"], 3, "{name}");
        assert_eq!(task_ids(&document), ["fail"], "{name}");
        assert_eq!(attempts_of(&document, "fail"), 1, "{name}");
        let first = label(&document, "system.correlationId").unwrap();
        assert_ne!(Some(first), document["id"].as_str(), "{name}");
    }
}

/// The executions of `document`'s Subflow tasks (and theirs) of flow `flow_id`.
fn subflows<'d>(document: &'d Value, flow_id: &str) -> Vec<&'d Value> {
    document["subflowExecutions"]
        .as_array()
        .map(|all| all.iter().filter(|e| e["flowId"] == flow_id).collect())
        .unwrap_or_default()
}

/// The labels of an execution document, as `key=value`, sorted.
fn labels(document: &Value) -> Vec<String> {
    let mut labels: Vec<String> = document["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|label| {
            format!(
                "{}={}",
                label["key"].as_str().unwrap(),
                label["value"].as_str().unwrap()
            )
        })
        .collect();
    labels.sort();
    labels
}

/// FlowCaseTest: waitSuccess, waitFailed, invalidOutputs (task-flow.yaml starts switch.yaml,
/// found in the same folder). Kestra's test also gives the parent an execution label, which
/// `kestrel run` has no option for: the child has the other four labels Kestra asserts.
#[test]
fn subflow_waits_for_its_child_and_takes_its_state_and_outputs() {
    for (input, ended, child_state, child_runs, extracted) in [
        ("OK", "SUCCESS", "SUCCESS", 2, Some("default > amazing")),
        (
            "THIRD",
            "FAILED",
            "FAILED",
            4,
            Some("Error Trigger ! error-t1"),
        ),
        ("FIRST", "FAILED", "SUCCESS", 2, None),
    ] {
        let document = run("task-flow.yaml", &[&format!("string={input}")]);
        assert_eq!(state(&document), ended, "{input}: {document}");
        assert_eq!(runs(&document).len(), 1);
        let launch = run_of(&document, "launch");
        assert_eq!(launch["attempts"].as_array().unwrap().len(), 1);
        assert_eq!(launch["state"], ended);
        let children = subflows(&document, "switch");
        assert_eq!(children.len(), 1, "{document}");
        let child = children[0];
        assert_eq!(launch["outputs"]["executionId"], child["id"]);
        assert_eq!(child["state"], child_state);
        assert_eq!(runs(child).len(), child_runs);
        match extracted {
            Some(text) => {
                let found = launch["outputs"]["outputs"]["extracted"].as_str().unwrap();
                assert!(found.contains(text), "{found}");
                assert_eq!(launch["outputs"]["state"], child_state);
            }
            None => assert!(
                launch["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("Failed to extract outputs with the error:")
            ),
        }
        let trigger = &child["trigger"];
        assert_eq!(
            (
                &trigger["executionId"],
                &trigger["flowId"],
                &trigger["namespace"]
            ),
            (
                &document["id"],
                &"task-flow".into(),
                &"io.kestra.tests".into()
            )
        );
        let correlation = format!("system.correlationId={}", document["id"].as_str().unwrap());
        assert_eq!(
            labels(child),
            [
                "launchTaskLabel=launchFoo",
                "mainFlowLabel=flowFoo",
                "switchFlowLabel=switchFoo",
                correlation.as_str(),
            ]
        );
    }
}

/// FlowCaseTest: noLabels. Without labels to inherit, the child has the task's, its flow's
/// and the correlation id.
#[test]
fn a_subflow_child_gets_the_tasks_labels_and_the_correlation_id() {
    let document = run("task-flow-inherited-labels.yaml", &["string=OK"]);
    assert_eq!(state(&document), "SUCCESS");
    let child = subflows(&document, "switch")[0];
    let correlation = format!("system.correlationId={}", document["id"].as_str().unwrap());
    assert_eq!(
        labels(child),
        [
            "launchTaskLabel=launchFoo",
            "switchFlowLabel=switchFoo",
            correlation.as_str(),
        ]
    );
}

/// CorrelationIdTest: shouldHaveCorrelationId. A child and a grandchild carry the root's id,
/// which the grandchild reads as `labels.system.correlationId`.
#[test]
fn subflows_nest_and_share_the_roots_correlation_id() {
    let document = run("subflow-parent.yaml", &[]);
    assert_eq!(state(&document), "SUCCESS");
    let root = document["id"].as_str().unwrap();
    for flow in ["subflow-child", "subflow-grand-child"] {
        let found = subflows(&document, flow);
        assert_eq!(found.len(), 1, "{flow}");
        assert_eq!(state(found[0]), "SUCCESS");
        assert_eq!(labels(found[0]), [format!("system.correlationId={root}")]);
    }
    let grand_child = subflows(&document, "subflow-grand-child")[0];
    assert_eq!(
        grand_child["logs"][0]["message"],
        format!("My grandparent is {root}")
    );
}

/// TaskWithAllowFailureTest: executableTask_Flow; TaskWithAllowWarningTest: executableTask_Flow.
#[test]
fn a_failed_subflow_under_allow_failure_warns_or_under_allow_warning_succeeds() {
    let failure = run("task-allow-failure-executable-flow.yml", &[]);
    assert_eq!(state(&failure), "WARNING");
    assert_eq!(runs(&failure).len(), 2);
    assert_eq!(
        state(subflows(&failure, "for-each-item-subflow-failed")[0]),
        "FAILED"
    );

    let warning = run("task-allow-warning-executable-flow.yml", &[]);
    assert_eq!(state(&warning), "SUCCESS");
    assert_eq!(runs(&warning).len(), 2);
}

/// PauseTest: runDelay, runDelayFromInput (kestrel run resumes a Pause once its delay passed).
#[test]
fn a_pause_with_a_delay_resumes_by_itself() {
    for fixture in ["pause-delay.yaml", "pause-delay-from-input.yaml"] {
        let document = run(fixture, &[]);
        assert_eq!(state(&document), "SUCCESS", "{fixture}");
        assert_eq!(task_ids(&document), ["pause", "subtask", "last"]);
        assert_eq!(state_of(&document, "pause"), "SUCCESS");
    }
}

/// PauseTest: runTimeout. Nothing resumes it before its timeout: it fails, its tasks unrun.
#[test]
fn a_pause_past_its_timeout_fails() {
    let document = run("pause-timeout.yaml", &[]);
    assert_eq!(state(&document), "FAILED");
    assert_eq!(task_ids(&document), ["pause"]);
    assert_eq!(state_of(&document, "pause"), "FAILED");
}

/// PauseTest: run, runEmptyTasks, runOnResumeOptionalInputs up to the pause. `kestrel run`
/// cannot resume an execution: it ends PAUSED, saying so.
#[test]
fn kestrel_run_ends_a_pause_without_delay_paused() {
    for fixture in [
        "pause.yaml",
        "pause_no_tasks.yaml",
        "pause_on_resume_optional.yaml",
    ] {
        let document = run(fixture, &[]);
        assert_eq!(state(&document), "PAUSED", "{fixture}");
        assert_eq!(task_ids(&document), ["pause"]);
        assert_eq!(state_of(&document, "pause"), "PAUSED");
        let message = document["logs"][0]["message"].as_str().unwrap();
        assert!(
            message.starts_with("Nothing can resume this execution here"),
            "{message}"
        );
    }
}

/// WaitForCaseTest: waitfor, waitforMultipleTasks, waitforNoSuccess.
#[test]
fn wait_for_runs_its_tasks_until_its_condition_holds() {
    let once = run("waitfor.yaml", &[]);
    assert_eq!(state(&once), "SUCCESS");
    assert_eq!(run_of(&once, "waitfor")["outputs"]["iterationCount"], 1);

    let several = run("waitfor-multiple-tasks.yaml", &[]);
    assert_eq!(state(&several), "SUCCESS");
    assert_eq!(
        runs(&several).last().unwrap()["outputs"]["values"]["count"],
        "4"
    );

    let no_success = run("waitfor-no-success.yaml", &[]);
    assert_eq!(state(&no_success), "SUCCESS");
}

/// WaitForCaseTest: waitforMaxIterations, waitforMaxDuration (its PT5S shortened to PT1S),
/// waitforMultipleTasksFailed.
#[test]
fn wait_for_fails_at_a_maximum_under_fail_on_max_reached_or_when_a_task_fails() {
    for (fixture, warning) in [
        ("waitfor-max-iterations.yaml", "Max iterations reached"),
        ("waitfor-max-duration.yaml", "Max duration reached"),
    ] {
        let document = run(fixture, &[]);
        assert_eq!(state(&document), "FAILED", "{fixture}");
        assert_eq!(state_of(&document, "waitfor"), "FAILED");
        let last = document["logs"].as_array().unwrap().last().unwrap();
        assert_eq!(
            (&last["level"], &last["message"]),
            (&"WARN".into(), &warning.into())
        );
    }
    let max = run("waitfor-max-iterations.yaml", &[]);
    assert_eq!(run_of(&max, "waitfor")["outputs"]["iterationCount"], 4);

    let failed = run("waitfor-multiple-tasks-failed.yaml", &[]);
    assert_eq!(state(&failed), "FAILED");
    let last = runs(&failed).last().unwrap();
    assert_eq!(last["taskId"], "fail");
    assert_eq!(last["attempts"].as_array().unwrap().len(), 1);
}

/// RuntimeLabelsTest: update, noNpeOnNullPreviousExecutionLabels, primitiveTypeLabels (their
/// labels given at the start of the execution left out: `kestrel run` has no option for them).
#[test]
fn labels_tasks_add_to_the_executions_labels() {
    let updated = run(
        "labels-update-task.yml",
        &[
            r#"labelsJson={"keyFromJson": "valueFromJson"}"#,
            "labelsMapKey=keyFromMap",
            "labelsMapValue=valueFromMap",
            "labelsListKey=keyFromList",
            "labelsListValue=valueFromList",
        ],
    );
    assert_eq!(state(&updated), "SUCCESS");
    assert_eq!(runs(&updated).len(), 4);
    let id = updated["id"].as_str().unwrap();
    let overrider = run_of(&updated, "override-labels")["id"].as_str().unwrap();
    let mut expected = vec![
        format!("system.correlationId={id}"),
        "flowLabelKey=flowLabelValue".to_owned(),
        "overriddenFlowLabelKey=io.kestra.tests.labels-update-task".to_owned(),
        "keyFromJson=valueFromJson".to_owned(),
        "keyFromMap=valueFromMap".to_owned(),
        "keyFromList=valueFromList".to_owned(),
        format!("overriddenExecutionLabelKey={overrider}"),
    ];
    expected.sort();
    assert_eq!(labels(&updated), expected);

    let npe = run("npe-labels-update-task.yml", &[]);
    assert_eq!(state(&npe), "SUCCESS");
    let task_run = run_of(&npe, "labels")["id"].as_str().unwrap();
    assert!(labels(&npe).contains(&format!("someLabel={task_run}")));

    let primitive = run(
        "primitive-labels-flow.yml",
        &["intLabel=42", "boolLabel=true", "floatLabel=3.14"],
    );
    assert_eq!(state(&primitive), "SUCCESS");
    let task_run = run_of(&primitive, "update-labels")["id"].as_str().unwrap();
    let id = primitive["id"].as_str().unwrap();
    let mut expected = vec![
        format!("system.correlationId={id}"),
        "intValue=42".to_owned(),
        "boolValue=true".to_owned(),
        "floatValue=3.14".to_owned(),
        format!("taskRunId={task_run}"),
    ];
    expected.sort();
    assert_eq!(labels(&primitive), expected);
}

/// DagTest: dag. Each task starts once those it depends on ended.
#[test]
fn dag_runs_each_task_after_its_dependencies() {
    let document = run("dag.yaml", &[]);
    assert_eq!(state(&document), "SUCCESS");
    assert_eq!(runs(&document).len(), 7);
    let ids = task_ids(&document);
    let at = |id: &str| ids.iter().position(|t| *t == id).unwrap();
    assert_eq!(ids[..2], ["dag", "task1"]);
    for (task, dependency) in [
        ("task2", "task1"),
        ("task3", "task1"),
        ("task4", "task2"),
        ("task5", "task4"),
        ("task5", "task3"),
        ("task6", "task2"),
        ("task6", "task3"),
    ] {
        assert!(
            at(dependency) < at(task),
            "{task} after {dependency}: {ids:?}"
        );
    }
}

/// WorkingDirectoryTest: success and failed. The tasks share one directory: a file the first
/// writes, the second stores; a failure runs the WorkingDirectory's `errors`.
#[test]
fn working_directory_tasks_share_their_directory() {
    let document = run("working-directory.yaml", &["failed=false"]);
    assert_eq!(state(&document), "SUCCESS");
    assert_eq!(task_ids(&document), ["worker", "first", "second", "2_end"]);
    let uri = runs(&document)[3]["outputs"]["value"].as_str().unwrap();
    assert!(
        uri.starts_with("kestra://") && uri.ends_with("out/stay.txt"),
        "{uri}"
    );

    let failed = run("working-directory.yaml", &["failed=true"]);
    assert_eq!(state(&failed), "FAILED");
    assert_eq!(task_ids(&failed), ["worker", "first", "error-t1"]);
}

/// WorkingDirectoryTest: each. A WorkingDirectory inside three ForEach: outputs kept by value.
#[test]
fn working_directory_under_for_each() {
    let document = run("working-directory-each.yaml", &[]);
    assert_eq!(state(&document), "SUCCESS");
    assert_eq!(runs(&document).len(), 8);
    let end = run_of(&document, "2_end")["outputs"]["value"]
        .as_str()
        .unwrap();
    assert!(end.starts_with("kestra://"), "{end}");
}

/// WorkingDirectoryTest: inputFiles and outputFiles.
#[test]
fn working_directory_input_and_output_files() {
    let inputs = run("working-directory-inputs.yml", &[]);
    assert_eq!(state(&inputs), "SUCCESS");
    assert_eq!(runs(&inputs).len(), 2);
    let uri = runs(&inputs)[1]["outputs"]["uris"]["input.txt"]
        .as_str()
        .unwrap();
    assert!(uri.ends_with("input.txt"), "{uri}");

    let outputs = run("working-directory-outputs.yml", &[]);
    assert_eq!(state(&outputs), "SUCCESS");
    assert_eq!(runs(&outputs).len(), 2);
    let files = &runs(&outputs)[0]["outputs"]["outputFiles"];
    assert!(
        files["output.txt"]
            .as_str()
            .unwrap()
            .starts_with("kestra://")
    );
}

/// What Kestra's outputFiles test reads back: the stored file holds what the task wrote.
#[test]
fn working_directory_output_files_hold_what_the_tasks_wrote() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "wd.yml",
        concat!(
            "id: wd\nnamespace: dev\ntasks:\n",
            "  - id: dir\n    type: io.kestra.plugin.core.flow.WorkingDirectory\n",
            "    inputFiles:\n      in.txt: Hello\n    outputFiles: [out.txt]\n    tasks:\n",
            "      - id: copy\n        type: io.kestra.plugin.scripts.shell.Commands\n",
            "        commands: [\"cat in.txt > out.txt; echo ' World' >> out.txt\"]\n",
            "  - id: back\n    type: io.kestra.plugin.core.debug.Return\n",
            "    format: \"{{ read(outputs.dir.outputFiles['out.txt']) | trim }}\"\n",
        ),
    );
    let document = sandbox
        .kestrel(["run", "wd.yml", "--output", "json"])
        .output()
        .json();
    assert_eq!(state(&document), "SUCCESS", "{document}");
    assert_eq!(run_of(&document, "back")["outputs"]["value"], "Hello World");
}

/// WorkingDirectoryTest: cache. The first run archives hello.txt; the second finds it.
#[test]
fn working_directory_cache_is_found_by_the_next_execution() {
    let sandbox = Sandbox::new();
    let run_once = || run_in(&sandbox, "working-directory-cache.yml", &[]);
    let first = run_once();
    assert_eq!(state(&first), "SUCCESS");
    assert_eq!(runs(&first).len(), 3);
    assert_eq!(
        run_of(&first, "exists")["outputs"],
        serde_json::json!({"uris": {}})
    );
    let second = run_once();
    assert_eq!(state(&second), "SUCCESS");
    assert!(run_of(&second, "exists")["outputs"]["uris"]["hello.txt"].is_string());
}

/// WorkingDirectoryTest: taskRun and taskRunNested. Children see the ForEach value, and
/// `parent` as Kestra shows it.
#[test]
fn working_directory_children_see_the_value_and_their_parents() {
    let document = run("working-directory-taskrun.yml", &[]);
    assert_eq!(state(&document), "SUCCESS");
    assert_eq!(runs(&document).len(), 3);
    assert_eq!(run_of(&document, "log-taskrun")["outputs"]["value"], "1");

    let nested = run("working-directory-taskrun-nested.yml", &[]);
    assert_eq!(state(&nested), "SUCCESS");
    assert_eq!(runs(&nested).len(), 6);
    let parent = run_of(&nested, "log-workerparent")["outputs"]["value"]
        .as_str()
        .unwrap();
    assert!(parent.contains(r#"{"taskrun":{"value":"1"}}"#), "{parent}");
}

/// FetchTest: fetch, fetchWithTaskId, fetchWithExecutionId. The entries so far at INFO or
/// above: both Echo entries and the Sleep's, or task-1's only.
#[test]
fn log_fetch_counts_the_executions_entries() {
    for (flow, size) in [
        ("get-log.yaml", 3),
        ("get-log-taskid.yaml", 1),
        ("get-log-executionid.yaml", 3),
    ] {
        let document = run(flow, &[]);
        assert_eq!(state(&document), "SUCCESS", "{flow}");
        assert_eq!(runs(&document).len(), 4, "{flow}");
        let fetched = &run_of(&document, "get-log-task")["outputs"];
        assert_eq!(fetched["size"], size, "{flow}");
        assert!(fetched["uri"].as_str().unwrap().starts_with("kestra://"));
    }
}

/// StateTest: set and each. A state outlives its execution: created, updated, deleted; each
/// ForEach value has its own unless `taskrunValue: false`.
#[test]
fn state_tasks_keep_a_map_from_one_execution_to_the_next() {
    let sandbox = Sandbox::new();
    let run_with = |input: &str| run_in(&sandbox, "state.yaml", &[input]);
    let created = run_with("state=counter");
    assert_eq!(state(&created), "SUCCESS");
    assert_eq!(runs(&created).len(), 5);
    assert_eq!(run_of(&created, "createGet")["outputs"]["data"]["value"], 1);
    let updated = run_with("state=counter");
    assert_eq!(runs(&updated).len(), 5);
    assert_eq!(
        run_of(&updated, "updateGet")["outputs"]["data"]["value"],
        "2"
    );
    let deleted = run_with("state=counter");
    assert_eq!(runs(&deleted).len(), 5);
    assert_eq!(run_of(&deleted, "deleteGet")["outputs"]["count"], 0);

    let each = run_with("state=each");
    assert_eq!(state(&each), "SUCCESS");
    assert_eq!(runs(&each).len(), 17);
    let reget = |task: &str| {
        runs(&each)
            .iter()
            .find(|run| run["taskId"] == task && run["value"] == "b")
            .map(|run| run["outputs"]["data"]["value"].clone())
            .unwrap()
    };
    assert_eq!(reget("regetEach1"), "null-b");
    assert_eq!(reget("regetEach2"), "null-a-b");
}

/// LogToFileTest: task. The attempt names the file of its entries.
#[test]
fn log_to_file_gives_the_attempt_a_log_file() {
    let document = run("log-to-file.yaml", &[]);
    assert_eq!(state(&document), "SUCCESS");
    let attempts = runs(&document)[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    let file = attempts[0]["logFile"].as_str().unwrap();
    assert!(
        file.starts_with("kestra://") && file.ends_with("attempt-1.log"),
        "{file}"
    );
}

/// The JSON document of fixture `name` run with Kestra's ForEachItem test file (102 lines,
/// each a number padded to 20) as its FILE input `file`, and `inputs`.
fn run_items(name: &str, inputs: &[&str]) -> Value {
    let sandbox = Sandbox::new();
    let lines: Vec<String> = (0..102).map(|n| format!("{n:>20}")).collect();
    sandbox.write("items.txt", &(lines.join("\n") + "\n"));
    let mut all = vec!["file=items.txt"];
    all.extend(inputs);
    run_in(&sandbox, name, &all)
}

/// The `iterations` of a ForEachItem's `<id>_items` step.
fn iterations(document: &Value) -> &Value {
    &runs(document)[2]["outputs"]["iterations"]
}

/// ForEachItemCaseTest: forEachItem. 26 batches of 4 lines, one subflow each, each seeing its
/// batch's file and the parent's correlation id.
#[test]
fn for_each_item_starts_one_subflow_per_batch() {
    let document = run_items("for-each-item.yaml", &["batch=4"]);
    assert_eq!(state(&document), "SUCCESS");
    assert_eq!(
        task_ids(&document),
        ["each", "each_split", "each_items", "each_merge"]
    );
    let items = &runs(&document)[2];
    assert_eq!(items["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(items["outputs"]["numberOfBatches"], 26);
    assert_eq!(
        iterations(&document),
        &serde_json::json!({"CREATED": 0, "RUNNING": 0, "SUCCESS": 26})
    );
    let children = document["subflowExecutions"].as_array().unwrap();
    assert_eq!(children.len(), 26);
    let last = &children[25];
    assert_eq!(last["state"], "SUCCESS");
    assert_eq!(last["flowId"], "for-each-item-subflow");
    assert_eq!(last["taskRuns"].as_array().unwrap().len(), 1);
    let batch = last["logs"][0]["message"].as_str().unwrap();
    let id = document["id"].as_str().unwrap();
    assert!(
        batch.starts_with(&format!(
            "kestra:///io/kestra/tests/for-each-item/executions/{id}/tasks/each-split/"
        )) && batch.ends_with(".txt"),
        "{batch}"
    );
    let correlation = last["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|label| label["key"] == "system.correlationId")
        .unwrap();
    assert_eq!(correlation["value"], id);
}

/// ForEachItemCaseTest: forEachItemFailed, forEachItemWithSubflowOutputs.
#[test]
fn for_each_item_passes_on_failures_and_merges_outputs() {
    let failed = run_items("for-each-item-failed.yaml", &[]);
    assert_eq!(state(&failed), "FAILED");
    assert_eq!(runs(&failed).len(), 3);
    assert_eq!(runs(&failed)[2]["state"], "FAILED");
    assert_eq!(runs(&failed)[2]["outputs"]["numberOfBatches"], 26);
    assert_eq!(iterations(&failed)["FAILED"], 26);

    let outputs = run_items("for-each-item-outputs.yaml", &[]);
    assert_eq!(state(&outputs), "SUCCESS");
    assert_eq!(runs(&outputs).len(), 5);
    assert_eq!(iterations(&outputs)["SUCCESS"], 26);
    let merged = runs(&outputs)[3]["outputs"]["subflowOutputs"]
        .as_str()
        .unwrap();
    assert!(merged.starts_with("kestra://"), "{merged}");
    assert_eq!(run_of(&outputs, "return")["outputs"]["value"], merged);
}

/// ForEachItemCaseTest: forEachItemNoWait. The children are started, not waited for: kestrel
/// counts them RUNNING (Kestra's racy count may see some end).
#[test]
fn for_each_item_without_wait_counts_its_children_started() {
    let document = run_items("for-each-item-no-wait.yaml", &[]);
    assert_eq!(state(&document), "SUCCESS");
    assert_eq!(runs(&document).len(), 4);
    assert_eq!(runs(&document)[2]["outputs"]["numberOfBatches"], 26);
    assert_eq!(iterations(&document)["RUNNING"], 26);
    assert_eq!(document["subflowExecutions"].as_array().unwrap().len(), 26);
}

/// TaskWithAllowFailureTest and TaskWithAllowWarningTest: executableTask_ForEachItem.
#[test]
fn a_for_each_item_allowed_to_fail_lets_the_flow_go_on() {
    let failure = run_items("task-allow-failure-executable-foreachitem.yml", &[]);
    assert_eq!(state(&failure), "WARNING");
    assert_eq!(runs(&failure).len(), 4);
    let warning = run_items("task-allow-warning-executable-foreachitem.yml", &[]);
    assert_eq!(state(&warning), "SUCCESS");
    assert_eq!(runs(&warning).len(), 4);
}

/// The state of fixture `name` run with `inputs`, and how many task runs it made.
fn outcome(name: &str, inputs: &[&str]) -> (String, usize) {
    let document = run(name, inputs);
    (state(&document).to_owned(), runs(&document).len())
}

/// SequentialTest: sequential, sequentialWithGlobalErrors, sequentialWithLocalErrors;
/// JdbcRunnerTest: sequential.
#[test]
fn sequential_runs_its_tasks_and_its_errors() {
    for (name, expected) in [
        ("sequential.yaml", ("SUCCESS", 11)),
        ("sequential-with-global-errors.yaml", ("FAILED", 6)),
        ("sequential-with-local-errors.yaml", ("FAILED", 6)),
    ] {
        let (state, count) = outcome(name, &[]);
        assert_eq!((state.as_str(), count), expected, "{name}");
    }
}

/// ParallelTest: parallel, parallelNested; JdbcRunnerTest: parallel, parallelNested (they
/// assert the task-run count only).
#[test]
fn parallel_runs_every_branch() {
    assert_eq!(outcome("parallel.yaml", &[]).1, 8);
    assert_eq!(outcome("parallel-nested.yaml", &[]).1, 11);
}

/// IfTest: multipleIf, ifTruthy, ifFalsy, ifWithoutElse, ifInFlowable.
#[test]
fn if_runs_then_on_a_truthy_condition_and_else_otherwise() {
    let multiple = outcome("if.yaml", &["if1=true", "if2=false", "if3=true"]);
    assert_eq!(multiple, ("SUCCESS".to_owned(), 12));

    for (param, branch) in [
        ("true", "when-true"),
        ("1", "when-true"),
        ("false", "when-false"),
        ("0", "when-false"),
        ("-0", "when-false"),
    ] {
        let document = run("if-condition.yaml", &[&format!("param={param}")]);
        assert_eq!(state(&document), "SUCCESS", "{param}");
        assert_eq!(runs(&document).len(), 2, "{param}");
        assert_eq!(state_of(&document, branch), "SUCCESS", "{param}");
    }

    let then = run("if-without-else.yaml", &["param=true"]);
    assert_eq!((state(&then), runs(&then).len()), ("SUCCESS", 2));
    assert_eq!(state_of(&then, "when-true"), "SUCCESS");
    let nothing = run("if-without-else.yaml", &["param=false"]);
    assert_eq!(
        (state(&nothing), task_ids(&nothing)),
        ("SUCCESS", vec!["if"])
    );

    let in_flowable = run("if-in-flowable.yaml", &["param=true"]);
    assert_eq!(
        (state(&in_flowable), runs(&in_flowable).len()),
        ("SUCCESS", 8)
    );
    assert_eq!(state_of(&in_flowable, "after_if"), "SUCCESS");
}

/// DisabledTest: simple, error, flowable. Disabled tasks make no task run.
#[test]
fn disabled_tasks_do_not_run() {
    assert_eq!(outcome("disable-simple.yaml", &[]).1, 2);
    assert_eq!(outcome("disable-error.yaml", &[]).1, 3);
    assert_eq!(outcome("disable-flowable.yaml", &[]).1, 10);
}

/// The ForEach values a task run of `document` runs for, outermost first: those of its task
/// run and its parents', each once.
fn values_of<'d>(document: &'d Value, task_run: &'d Value) -> Vec<&'d str> {
    let mut values = Vec::new();
    let mut current = Some(task_run);
    while let Some(run) = current {
        if let Some(value) = run["value"].as_str()
            && values.last() != Some(&value)
        {
            values.push(value);
        }
        current = runs(document)
            .iter()
            .find(|parent| parent["id"] == run["parentTaskRunId"]);
    }
    values.reverse();
    values
}

/// The `value` output of the task run of `task_id` for ForEach `values` (Kestra's
/// findTaskRunByTaskIdAndValue).
fn output_for<'d>(document: &'d Value, task_id: &str, values: &[&str]) -> &'d str {
    runs(document)
        .iter()
        .find(|run| run["taskId"] == task_id && values_of(document, run) == values)
        .unwrap_or_else(|| panic!("no task run of {task_id} for {values:?}"))["outputs"]["value"]
        .as_str()
        .unwrap()
}

/// EachSequentialTest: sequential, object, objectInList, sequentialNested, eachEmpty,
/// eachSwitch; JdbcRunnerTest: eachSequentialNested.
#[test]
fn for_each_runs_its_tasks_for_each_value() {
    assert_eq!(
        outcome("each-sequential.yaml", &[]),
        ("WARNING".to_owned(), 11)
    );
    assert_eq!(outcome("each-empty.yaml", &[]), ("SUCCESS".to_owned(), 2));
    for name in ["each-object.yaml", "each-object-in-list.yaml"] {
        let document = run(name, &[]);
        assert_eq!((state(&document), runs(&document).len()), ("SUCCESS", 8));
        let value = runs(&document)[6]["outputs"]["value"].as_str().unwrap();
        assert!(value.contains("json > JSON > [\"my-complex\"]"), "{value}");
    }

    let nested = run("each-sequential-nested.yaml", &[]);
    assert_eq!((state(&nested), runs(&nested).len()), ("SUCCESS", 23));
    let inner = output_for(&nested, "1-2-1_return", &["s1", "a a"]);
    assert!(output_for(&nested, "2_return", &[]).contains(inner));
    let outer = output_for(&nested, "1-1_return", &["s1"]);
    assert!(output_for(&nested, "1-3_return", &["s1"]).contains(outer));
    let second = output_for(&nested, "1-2-2_return", &["s1", "a a"]);
    assert!(second.contains(&format!("get {inner}")), "{second}");

    let switch = run("each-switch.yaml", &[]);
    assert_eq!((state(&switch), runs(&switch).len()), ("SUCCESS", 12));
    assert_eq!(
        output_for(&switch, "2-1-1_switch-number-1", &["b", "1"]),
        "1"
    );
    assert_eq!(
        output_for(&switch, "2-1-1_switch-number-2", &["b", "2"]),
        "2 b"
    );
}

/// EachParallelTest: parallel, parallelNested, parallelInteger; JdbcRunnerTest: eachParallel,
/// eachParallelNested, eachParallelWithSubflowMissing (at least the ForEach and one child fail).
#[test]
fn a_concurrent_for_each_runs_every_value() {
    for (name, expected) in [("each-parallel.yaml", 8), ("each-parallel-nested.yaml", 11)] {
        assert_eq!(
            outcome(name, &[]),
            ("SUCCESS".to_owned(), expected),
            "{name}"
        );
    }
    assert_eq!(outcome("each-parallel-Integer.yml", &[]).0, "SUCCESS");

    let missing = run("each-parallel-subflow-notfound.yml", &[]);
    assert_eq!(state(&missing), "FAILED");
    let failed = runs(&missing)
        .iter()
        .filter(|run| run["state"] == "FAILED")
        .count();
    assert!(failed >= 2, "{failed}");
}

/// ForEachTest: nonConcurrent, concurrent, concurrentWithParallel, concurrentNoLimit.
#[test]
fn for_each_with_a_concurrency_limit_runs_every_value() {
    for (name, expected) in [
        ("foreach-non-concurrent.yaml", 7),
        ("foreach-concurrent.yaml", 7),
        ("foreach-concurrent-parallel.yaml", 10),
        ("foreach-concurrent-no-limit.yaml", 7),
    ] {
        assert_eq!(
            outcome(name, &[]),
            ("SUCCESS".to_owned(), expected),
            "{name}"
        );
    }
}

/// CurrentEachOutputFunctionTest: parallel. `currentEachOutput` reads the output of the same
/// ForEach values; a Sequential's tasks read each other's outputs by id.
#[test]
fn current_each_output_reads_the_output_of_the_same_values() {
    let document = run("current-output.yaml", &[]);
    for outer in ["v11", "v12"] {
        for middle in ["v21", "v22"] {
            for inner in ["v31", "v32"] {
                assert_eq!(
                    output_for(&document, "1-1-1_return", &[outer, middle, inner]),
                    format!("return-{outer}-{middle}-{inner}")
                );
            }
        }
    }
    for value in ["v41", "v42"] {
        assert_eq!(
            output_for(&document, "2-1_return", &[value]),
            format!("return-{value}")
        );
    }
}

/// RunContextTest: variables. Return renders the date, the task's and the flow's ids.
#[test]
fn return_renders_its_format() {
    let document = run("return.yaml", &[]);
    assert_eq!(runs(&document).len(), 3);
    let date = runs(&document)[0]["outputs"]["value"].as_str().unwrap();
    assert!(date.len() == 24 && date.ends_with('Z'), "{date}");
    assert_eq!(runs(&document)[1]["outputs"]["value"], "task-id");
    assert_eq!(runs(&document)[2]["outputs"]["value"], "return");
}

/// JdbcRunnerTest: full, executionDate.
#[test]
fn full_and_execution_render_their_values() {
    let full = run("full.yaml", &[]);
    assert_eq!((state(&full), runs(&full).len()), ("SUCCESS", 13));
    let value = run_of(&full, "t2")["outputs"]["value"].as_str().unwrap();
    assert!(value.contains("value1"), "{value}");

    let execution = run("execution.yaml", &[]);
    let date = runs(&execution)[0]["outputs"]["value"].as_str().unwrap();
    let digits = |range: std::ops::Range<usize>| date[range].bytes().all(|b| b.is_ascii_digit());
    assert!(
        date.len() == 24 && digits(0..4) && digits(17..19) && digits(20..23) && date.ends_with('Z'),
        "{date}"
    );
}

/// VariablesTest: failedFirst.
#[test]
fn a_failed_first_task_ends_the_flow() {
    let document = run("failed-first.yaml", &[]);
    assert_eq!(runs(&document).len(), 1);
    assert_eq!(runs(&document)[0]["state"], "FAILED");
}

/// TaskWithRunIfTest: runnableTask. A false `runIf` skips the task.
#[test]
fn run_if_skips_a_task_whose_condition_is_false() {
    let document = run("task-runif.yml", &[]);
    assert_eq!((state(&document), runs(&document).len()), ("FAILED", 4));
    for (task, expected) in [
        ("executed", "SUCCESS"),
        ("notexecuted", "SKIPPED"),
        ("willfailedtheflow", "FAILED"),
    ] {
        assert_eq!(state_of(&document, task), expected, "{task}");
    }
}

/// TaskWithAllowFailureTest: runnableTask, flowableTask.
#[test]
fn allow_failure_on_a_task_or_a_flowable_ends_the_flow_in_warning() {
    let runnable = run("task-allow-failure-runnable.yml", &[]);
    assert_eq!((state(&runnable), runs(&runnable).len()), ("WARNING", 2));
    assert_eq!(attempts_of(&runnable, "fail"), 3);
    assert_eq!(
        outcome("task-allow-failure-flowable.yml", &[]),
        ("WARNING".to_owned(), 3)
    );
}

/// EmptyVariablesTest: emptyVariables.
#[test]
fn empty_json_inputs_and_missing_outputs_render() {
    let inputs = [
        r#"emptyKey={ "foo": "" }"#,
        r#"emptySubObject={"json":{"someEmptyObject":{}}}"#,
    ];
    assert_eq!(
        outcome("empty-variables.yml", &inputs),
        ("SUCCESS".to_owned(), 3)
    );
}

/// FlowOutputTest: shouldGetSuccessExecutionForFlowWithOutputs,
/// shouldGetSuccessExecutionForFlowWithArrayOutputs,
/// shouldGetFailExecutionForFlowWithInvalidOutputs (Kestra's outputs are null, kestrel's
/// document shows them empty).
#[test]
fn flow_outputs_are_rendered_or_fail_the_flow() {
    let single = run("flow-with-outputs.yml", &[]);
    assert_eq!(state(&single), "SUCCESS");
    assert_eq!(
        single["outputs"],
        serde_json::json!({"key": "{\"value\":\"flow-with-outputs\"}"})
    );
    let array = run("flow-with-array-outputs.yml", &[]);
    assert_eq!(state(&array), "SUCCESS");
    assert_eq!(
        array["outputs"],
        serde_json::json!({"myout": ["1rstValue", "2ndValue"]})
    );
    let failed = run("flow-with-outputs-failed.yml", &[]);
    assert_eq!(state(&failed), "FAILED");
    assert!(
        failed["outputs"].as_object().is_none_or(|o| o.is_empty()),
        "{}",
        failed["outputs"]
    );
}

/// RetryCaseTest (through JdbcRunnerRetryTest): retrySuccess, retrySuccessAtFirstAttempt,
/// retryFailed, retryRandom, retryExpo, retryFail.
#[test]
fn a_tasks_retry_tries_it_again_up_to_its_bounds() {
    for (name, expected, attempts) in [
        ("retry-success.yaml", ("WARNING", 1), 4),
        ("retry-success-first-attempt.yaml", ("SUCCESS", 1), 1),
        ("retry-failed.yaml", ("FAILED", 2), 5),
        ("retry-random.yaml", ("FAILED", 1), 3),
        ("retry-expo.yaml", ("FAILED", 1), 3),
        ("retry-fail.yaml", ("FAILED", 2), 3),
    ] {
        let document = run(name, &[]);
        assert_eq!(
            (state(&document), runs(&document).len()),
            expected,
            "{name}"
        );
        let first = runs(&document)[0]["attempts"].as_array().unwrap();
        assert_eq!(first.len(), attempts, "{name}");
    }
}

/// RetryCaseTest: retryFailedTaskDuration, retryFailedTaskAttempts, retrySubflow,
/// retryFlowableChild, retryFlowableNestedChild, retryFlowableParallel (retry-subflow.yaml
/// starts failed-first.yaml, found in the same folder).
#[test]
fn a_retried_task_fails_after_its_last_attempt() {
    for (name, index, attempts) in [
        ("retry-failed-task-duration.yml", 0, 3),
        ("retry-failed-task-attempts.yml", 0, 4),
        ("retry-subflow.yaml", 0, 3),
        ("retry-flowable-child.yaml", 1, 3),
        ("retry-flowable-nested-child.yaml", 2, 3),
        ("retry-flowable-parallel.yaml", 1, 2),
        ("retry-flowable-parallel.yaml", 2, 2),
    ] {
        let document = run(name, &[]);
        assert_eq!(state(&document), "FAILED", "{name}");
        let made = runs(&document)[index]["attempts"].as_array().unwrap().len();
        assert!(made >= attempts, "{name}: {made} attempts");
        if !name.contains("parallel") {
            assert_eq!(made, attempts, "{name}");
        }
    }
}

/// VariablesTest: recursiveVars, run with Kestra's test configuration: its globals, and
/// environment variables read with the prefix `KESTRA_`.
#[test]
fn variables_render_recursively_and_see_envs_and_globals() {
    let sandbox = Sandbox::new();
    let config = sandbox.write(
        "config.yml",
        "variables:
  env-vars-prefix: KESTRA_
  globals: {string: string, int: 1, bool: true, nested: {int: 2}}
",
    );
    let document = sandbox
        .kestrel(
            ["--config".to_owned(), config.display().to_string()]
                .into_iter()
                .chain(run_args("variables.yaml", &[])),
        )
        .env("KESTRA_TEST1", "true")
        .env("KESTRA_TEST2", "Pass by env")
        .output()
        .json();
    assert_eq!(runs(&document).len(), 3);
    for (task, expected) in [
        ("variable", "1 > 2 > 3"),
        ("env", "true Pass by env"),
        ("global", "string 1 true 2"),
    ] {
        assert_eq!(
            run_of(&document, task)["outputs"]["value"],
            expected,
            "{task}"
        );
    }
}

/// VariablesTest: invalidVars. A flow without inputs has no `inputs` to read.
#[test]
fn an_expression_reading_missing_inputs_fails_its_task() {
    let document = run("variables-invalid.yaml", &[]);
    assert_eq!((state(&document), runs(&document).len()), ("FAILED", 2));
    let failed = &runs(&document)[1];
    assert_eq!(failed["state"], "FAILED");
    let logged = document["logs"].as_array().unwrap().iter().any(|entry| {
        entry["taskId"] == failed["taskId"]
            && entry["message"]
                .as_str()
                .unwrap()
                .contains("Unable to find `inputs` used in the expression `{{inputs.invalid}}`")
    });
    assert!(logged, "{}", document["logs"]);
}

/// The output of `kestrel run inputs.yaml` with Kestra's InputsTest inputs, `KEY=VALUE`s of
/// `changes` replacing, adding or (a bare `KEY`) removing them (the file input is a file of the sandbox, the secret
/// is read from one, as the command line wants).
fn run_inputs(changes: &[&str]) -> util::Output {
    let sandbox = Sandbox::new();
    let file = sandbox.write("application-test.yml", "a: b\n");
    sandbox.write("secret.txt", "secret");
    let file = format!("file={}", file.display());
    let mut inputs: Vec<&str> = vec![
        "string=myString",
        "enum=ENUM_VALUE",
        "int=42",
        "float=42.42",
        "bool=false",
        "instant=2019-10-06T18:27:49Z",
        "date=2019-10-06",
        "time=18:27:49",
        "duration=PT5M6S",
        &file,
        "json={\"a\": \"b\"}",
        "uri=https://www.google.com",
        "nested.string=a string",
        "nested.more.int=123",
        "nested.bool=true",
        "validatedString=A123",
        "validatedInt=12",
        "validatedDate=2023-01-02",
        "validatedDateTime=2023-01-01T00:00:10Z",
        "validatedDuration=PT15S",
        "validatedFloat=0.42",
        "validatedTime=11:27:49",
        "secret=@secret.txt",
        "array=[1, 2, 3]",
        "yaml=some: property\nalist:\n- of\n- values",
    ];
    for change in changes {
        let key = change.split('=').next().unwrap();
        inputs.retain(|input| input.split('=').next() != Some(key));
        if change.contains('=') {
            inputs.push(change);
        }
    }
    sandbox.kestrel(run_args("inputs.yaml", &inputs)).output()
}

/// InputsTest: inputFlow, inputEmptyJsonFlow. Unlike Kestra's, the SECRET input's output is
/// shown masked (docs/compatibility.md).
#[test]
fn every_input_type_reaches_the_tasks() {
    let document = run_inputs(&[]).json();
    assert_eq!((state(&document), runs(&document).len()), ("SUCCESS", 14));
    let file = run_of(&document, "file")["outputs"]["value"]
        .as_str()
        .unwrap();
    assert!(
        file.starts_with("kestra:///io/kestra/tests/inputs/executions/")
            && file.ends_with("/inputs/file/application-test.yml"),
        "{file}"
    );
    assert_eq!(run_of(&document, "secret")["outputs"]["value"], util::MASK);
    assert_eq!(run_of(&document, "optional")["outputs"]["value"], "");

    let empty = run_inputs(&["json={}"]).json();
    assert_eq!((state(&empty), runs(&empty).len()), ("SUCCESS", 14));
    assert_eq!(run_of(&empty, "jsonOutput")["outputs"]["value"], "{}");
}

/// InputsTest: missingRequired, inputValidated*BadValue, inputEnumFailed, inputArrayFailed.
/// kestrel refuses each value with Kestra's reason, never quoting the value
/// (docs/compatibility.md).
#[test]
fn an_invalid_input_is_refused_with_kestras_reason() {
    for (change, reason) in [
        ("string", "'string': missing required"),
        (
            "validatedString=foo",
            "'validatedString': it must match the pattern",
        ),
        (
            "validatedInt=9",
            "'validatedInt': it must be more than `10`",
        ),
        (
            "validatedInt=21",
            "'validatedInt': it must be less than `20`",
        ),
        (
            "validatedDate=2022-01-01",
            "'validatedDate': it must be after `2023-01-01`",
        ),
        (
            "validatedDate=2024-01-01",
            "'validatedDate': it must be before `2023-12-31`",
        ),
        (
            "validatedDateTime=2022-01-01T00:00:00Z",
            "'validatedDateTime': it must be after `2023-01-01T00:00:00Z`",
        ),
        (
            "validatedDateTime=2024-01-01T00:00:00Z",
            "'validatedDateTime': it must be before `2023-12-31T23:59:59Z`",
        ),
        (
            "validatedDuration=PT1S",
            "'validatedDuration': It must be more than `PT10S`",
        ),
        (
            "validatedDuration=PT30S",
            "'validatedDuration': It must be less than `PT20S`",
        ),
        (
            "validatedFloat=0.01",
            "'validatedFloat': it must be more than `0.1`",
        ),
        (
            "validatedFloat=1.01",
            "'validatedFloat': it must be less than `0.5`",
        ),
        (
            "validatedTime=00:00:01",
            "'validatedTime': it must be after `01:00`",
        ),
        (
            "validatedTime=14:00:00",
            "'validatedTime': it must be before `11:59:59`",
        ),
        (
            "enum=INVALID",
            "'enum': it must match the values `[ENUM_VALUE, OTHER_ONE]`",
        ),
        (
            "array=[\"s1\", \"s2\"]",
            "'array': Unable to parse array element",
        ),
    ] {
        let output = run_inputs(&[change]);
        assert_ne!(output.code, Some(0), "{change}");
        assert!(
            output.stderr.contains(&format!("invalid input {reason}")),
            "{change}: {}",
            output.stderr
        );
    }
}

/// InputsTest: shouldNotLogSecretInput. The SECRET input's default is masked in the log, with
/// kestrel's mask (Kestra's has eight stars).
#[test]
fn a_secret_input_is_not_logged() {
    let document = run("input-log-secret.yaml", &[]);
    assert_eq!((state(&document), runs(&document).len()), ("SUCCESS", 1));
    assert_eq!(
        document["logs"][0]["message"],
        format!("This is my secret: {}", util::MASK)
    );
}

/// SecretFunctionTest: getSecret, its secrets given as Kestra's test gives them (base64 in
/// `SECRET_` variables). The log is masked as Kestra's; unlike Kestra's, the outputs shown are
/// masked too (docs/compatibility.md).
#[test]
fn secret_reads_environment_secrets_and_masks_them() {
    let long = "passwordveryveryveyrlong".repeat(5);
    let sandbox = Sandbox::new();
    let document = sandbox
        .kestrel(run_args("secrets.yaml", &[]))
        .env(
            "SECRET_MY_SECRET",
            util::base64(r#"{"secretKey":"secretValue"}"#),
        )
        .env("SECRET_NEW_LINE", util::base64(&long))
        .output()
        .json();
    assert_eq!(state(&document), "SUCCESS");
    let log = &document["logs"][0];
    assert_eq!(log["taskId"], "log-secret");
    assert!(log["message"].as_str().unwrap().contains("***"), "{log}");
    for task in ["get-secret", "get-multiline-secret"] {
        assert_eq!(run_of(&document, task)["outputs"]["value"], util::MASK);
    }
}

/// PauseTest: runParallelDelay (through JdbcRunnerTest: pauseRunParallelDelay). Each Pause of a
/// concurrent ForEach resumes after its delay.
#[test]
fn pauses_with_a_delay_in_a_concurrent_for_each_all_resume() {
    assert_eq!(
        outcome("each-parallel-pause.yml", &[]),
        ("SUCCESS".to_owned(), 7)
    );
}

/// SkipExecutionCaseTest: skipExecution, the execution it lets run (skipping another needs
/// the server's configuration).
#[test]
fn a_minimal_flow_succeeds() {
    assert_eq!(outcome("minimal.yaml", &[]).0, "SUCCESS");
}

/// YamlParserTest: allFlowable (Kestra parses it, never runs it).
#[test]
fn a_flow_of_every_flowable_validates() {
    let output = Sandbox::new()
        .kestrel([
            "validate".to_owned(),
            fixture("all-flowable.yaml").display().to_string(),
        ])
        .output();
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert!(
        output
            .stdout
            .contains("valid (io.kestra.tests.all-flowable)"),
        "{}",
        output.stdout
    );
}

/// JdbcRunnerTest: errors. The `errors` branch reads the failed task's ERROR entry through
/// `errorLogs()` and runs its nested Parallels: 7 task runs.
#[test]
fn error_logs_give_the_errors_branch_the_failure() {
    let document = run("errors.yaml", &[]);
    assert_eq!(state(&document), "FAILED");
    assert_eq!(runs(&document).len(), 7);
    let logged: Vec<&str> = document["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["taskId"] == "t2")
        .map(|entry| entry["message"].as_str().unwrap())
        .collect();
    assert_eq!(logged, ["- task: failed, message: Task failure"]);
}
