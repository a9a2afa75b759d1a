//! Kestra's core tasks that run no children and no process: Fail, Sleep, Echo, Labels,
//! OutputValues, Resume and log Fetch (Log and Return live in `tasks.rs`, the flowable ones in `flowable.rs`).

use super::{TaskType, read};
use crate::context::{Ctx, Props};
use crate::yaml::Yaml;
use crate::{Level, TaskKind};
use std::time::Duration;

pub(crate) const FAIL: TaskType = TaskType {
    class: "io.kestra.plugin.core.execution.Fail",
    aliases: &["io.kestra.core.tasks.executions.Fail"],
    properties: &["condition", "errorMessage"],
    build: build_fail,
};

pub(crate) const SLEEP: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.Sleep",
    aliases: &[],
    properties: &["duration"],
    build: build_sleep,
};

pub(crate) const ECHO: TaskType = TaskType {
    class: "io.kestra.plugin.core.debug.Echo",
    aliases: &["io.kestra.core.tasks.debugs.Echo"],
    properties: &["format", "level"],
    build: build_echo,
};

pub(crate) const OUTPUT_VALUES: TaskType = TaskType {
    class: "io.kestra.plugin.core.output.OutputValues",
    aliases: &[],
    properties: &["values"],
    build: build_output_values,
};

pub(crate) const LABELS: TaskType = TaskType {
    class: "io.kestra.plugin.core.execution.Labels",
    aliases: &["io.kestra.core.tasks.executions.Labels"],
    properties: &["labels"],
    build: build_labels,
};

pub(crate) const FETCH: TaskType = TaskType {
    class: "io.kestra.plugin.core.log.Fetch",
    aliases: &["io.kestra.core.tasks.log.Fetch"],
    properties: &["namespace", "flowId", "executionId", "tasksId", "level"],
    build: build_fetch,
};

pub(crate) const RESUME: TaskType = TaskType {
    class: "io.kestra.plugin.core.execution.Resume",
    aliases: &[],
    properties: &["namespace", "flowId", "executionId", "inputs"],
    build: build_resume,
};

/// Kestra's `errorMessage` when the flow gives none.
const TASK_FAILURE: &str = "Task failure";

/// The longest Sleep: a flow that sleeps longer waits for a trigger or a Pause instead.
const SLEEP_MAX: Duration = Duration::from_secs(24 * 3600);

fn build_fail(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    Some(TaskKind::Fail {
        condition: props.text(ctx, "condition"),
        error_message: props
            .text(ctx, "errorMessage")
            .unwrap_or_else(|| TASK_FAILURE.to_owned()),
    })
}

fn build_sleep(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    if props.get("duration").is_none() {
        props.missing(ctx, "duration");
        return None;
    }
    let duration = read::duration(ctx, props, "duration")?;
    if duration > SLEEP_MAX {
        let field = props.field("duration");
        ctx.report(
            props.locate("duration"),
            format!("{field}: must be at most PT24H"),
        );
        return None;
    }
    Some(TaskKind::Sleep { duration })
}

/// Echo is Kestra's deprecated Log of one message: it runs as a Log.
fn build_echo(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let level = props.choice(ctx, "level", &Level::ALL, Level::as_str);
    let format = read::non_blank(ctx, props, "format")?;
    Some(TaskKind::Log {
        messages: vec![format],
        level: level.unwrap_or(Level::Info),
    })
}

/// `labels`: a map, a list of `{key, value}`, or a text rendering to a JSON map; kept as
/// written, rendered when the task runs.
fn build_labels(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let Some(node) = props.get("labels") else {
        props.missing(ctx, "labels");
        return None;
    };
    match &node.value {
        Yaml::String(_) => {}
        Yaml::Map(_) | Yaml::Seq(_) => {
            crate::parse::read_labels(ctx, props);
        }
        _ => {
            let field = props.field("labels");
            ctx.report(
                node,
                format!("{field}: must be a map, a list of {{key, value}} or a JSON string"),
            );
            return None;
        }
    }
    Some(TaskKind::Labels {
        labels: node.to_json(),
    })
}

fn build_fetch(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let level = props.choice(ctx, "level", &Level::ALL, Level::as_str);
    let task_ids = props
        .get("tasksId")
        .map(|_| read::texts_only(ctx, props, "tasksId"));
    Some(TaskKind::FetchLogs {
        namespace: props.text(ctx, "namespace"),
        flow_id: props.text(ctx, "flowId"),
        execution_id: props.text(ctx, "executionId"),
        task_ids: task_ids.map(|ids| ids.unwrap_or_default()),
        level: level.unwrap_or(Level::Info),
    })
}

fn build_resume(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    if props.get("inputs").is_some() {
        props.map(ctx, "inputs")?;
    }
    Some(TaskKind::Resume {
        namespace: props.text(ctx, "namespace"),
        flow_id: props.text(ctx, "flowId"),
        execution_id: props.text(ctx, "executionId"),
        inputs: props.json("inputs").unwrap_or_default(),
    })
}

fn build_output_values(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    if props.get("values").is_some() {
        props.map(ctx, "values")?;
    }
    Some(TaskKind::OutputValues {
        values: props.json("values").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use crate::{Level, TaskKind, parse_flow};
    use std::time::Duration;

    fn kind(task: &str) -> TaskKind {
        let source = format!("id: f\nnamespace: dev\ntasks:\n  - id: t\n{task}");
        let mut flow = parse_flow(&source).unwrap_or_else(|v| panic!("{v:?}"));
        flow.tasks.remove(0).kind
    }

    fn violations(task: &str) -> Vec<String> {
        let source = format!("id: f\nnamespace: dev\ntasks:\n  - id: t\n{task}");
        let found = parse_flow(&source).unwrap_err();
        found.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn fail_under_both_names_with_kestras_default_message() {
        for name in [
            "io.kestra.plugin.core.execution.Fail",
            "io.kestra.core.tasks.executions.Fail",
        ] {
            let found = kind(&format!("    type: {name}\n"));
            assert!(matches!(
                found,
                TaskKind::Fail { condition: None, error_message } if error_message == "Task failure"
            ));
        }
        let found = kind(concat!(
            "    type: io.kestra.plugin.core.execution.Fail\n",
            "    condition: \"{{ inputs.x }}\"\n    errorMessage: bad {{ inputs.x }}\n",
        ));
        assert!(matches!(
            found,
            TaskKind::Fail { condition: Some(c), error_message: m }
                if c == "{{ inputs.x }}" && m == "bad {{ inputs.x }}"
        ));
    }

    #[test]
    fn sleep_takes_an_iso_duration_up_to_a_day() {
        let found = kind("    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.5S\n");
        assert!(
            matches!(found, TaskKind::Sleep { duration } if duration == Duration::from_millis(500))
        );
        let sleep = "    type: io.kestra.plugin.core.flow.Sleep\n";
        assert_eq!(
            violations(sleep),
            ["4:5: tasks[0].duration: must not be null"]
        );
        assert_eq!(
            violations(&format!("{sleep}    duration: 5s\n")),
            ["6:15: tasks[0].duration: must be an ISO-8601 duration such as PT30S"]
        );
        assert_eq!(
            violations(&format!("{sleep}    duration: P2D\n")),
            ["6:15: tasks[0].duration: must be at most PT24H"]
        );
    }

    #[test]
    fn echo_is_a_log_of_its_format() {
        for name in [
            "io.kestra.plugin.core.debug.Echo",
            "io.kestra.core.tasks.debugs.Echo",
        ] {
            let found = kind(&format!(
                "    type: {name}\n    format: hi\n    level: WARN\n"
            ));
            assert!(matches!(
                found,
                TaskKind::Log { messages, level: Level::Warn } if messages == ["hi"]
            ));
        }
        assert_eq!(
            violations("    type: io.kestra.plugin.core.debug.Echo\n    format: \" \"\n"),
            ["6:13: tasks[0].format: must not be blank"]
        );
    }

    #[test]
    fn labels_are_a_map_a_list_or_a_text_and_never_system_ones() {
        for name in [
            "io.kestra.plugin.core.execution.Labels",
            "io.kestra.core.tasks.executions.Labels",
        ] {
            let found = kind(&format!(
                "    type: {name}\n    labels:\n      a: \"{{{{ 1 }}}}\"\n"
            ));
            assert!(matches!(
                found,
                TaskKind::Labels { labels } if labels == serde_json::json!({"a": "{{ 1 }}"})
            ));
        }
        let labels = "    type: io.kestra.plugin.core.execution.Labels\n";
        assert!(matches!(
            kind(&format!("{labels}    labels: \"{{{{ inputs.json }}}}\"\n")),
            TaskKind::Labels { labels } if labels == "{{ inputs.json }}"
        ));
        assert_eq!(
            violations(labels),
            ["4:5: tasks[0].labels: must not be null"]
        );
        assert_eq!(
            violations(&format!(
                "{labels}    labels:\n      - key: system.x\n        value: y\n"
            )),
            [
                "7:9: tasks[0].labels: System labels can only be set by Kestra itself, offending label: system.x=y"
            ]
        );
        assert_eq!(
            violations(&format!("{labels}    labels: 3\n")),
            ["6:13: tasks[0].labels: must be a map, a list of {key, value} or a JSON string"]
        );
    }

    #[test]
    fn fetch_and_resume_keep_their_templates() {
        let fetch = kind(concat!(
            "    type: io.kestra.core.tasks.log.Fetch\n",
            "    executionId: \"{{ execution.id }}\"\n    tasksId: [a, b]\n    level: WARN\n",
        ));
        assert!(matches!(
            fetch,
            TaskKind::FetchLogs { execution_id: Some(id), task_ids: Some(ids), level: Level::Warn, namespace: None, flow_id: None }
                if id == "{{ execution.id }}" && ids == ["a", "b"]
        ));
        let resume = kind(concat!(
            "    type: io.kestra.plugin.core.execution.Resume\n",
            "    executionId: \"{{ inputs.id }}\"\n    inputs:\n      asked: yes\n",
        ));
        assert!(matches!(
            resume,
            TaskKind::Resume { execution_id: Some(id), inputs, .. }
                if id == "{{ inputs.id }}" && inputs == serde_json::json!({"asked": "yes"})
        ));
    }

    #[test]
    fn output_values_keeps_its_map_as_written() {
        let found = kind(concat!(
            "    type: io.kestra.plugin.core.output.OutputValues\n",
            "    values:\n      a: \"{{ 1 }}\"\n      n: 42\n      l: [x]\n",
        ));
        assert!(matches!(
            found,
            TaskKind::OutputValues { values } if values == serde_json::json!({"a": "{{ 1 }}", "n": 42, "l": ["x"]})
        ));
        assert_eq!(
            violations("    type: io.kestra.plugin.core.output.OutputValues\n    values: [a]\n"),
            ["6:13: tasks[0].values: must be a map"]
        );
    }
}
