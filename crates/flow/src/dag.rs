//! `io.kestra.plugin.core.flow.Dag`: tasks that run once the tasks they depend on ended well.
//! A dependency on an unknown task, or a cycle, is refused when the flow is validated.

use crate::context::{Ctx, Props};
use crate::flowable::{count, flowable};
use crate::tasks::{TaskType, read, read_task};
use crate::{FlowableKind, Task, TaskKind};

pub(crate) const DAG: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.Dag",
    aliases: &["io.kestra.core.tasks.flows.Dag"],
    properties: &["tasks", "concurrent", "errors"],
    build,
};

const DAG_TASK_CLASS: &str = "io.kestra.plugin.core.flow.Dag$DagTask";

fn build(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let concurrent = count(ctx, props, "concurrent", 0);
    let entries = entries(ctx, props);
    let kind = match (entries, concurrent) {
        (Some(entries), Some(concurrent)) => {
            dependencies(ctx, props, &entries).map(|depends_on| FlowableKind::Dag {
                tasks: entries.into_iter().map(|(task, _)| task).collect(),
                depends_on,
                concurrent,
            })
        }
        _ => None,
    };
    flowable(ctx, props, kind)
}

/// Each `{task, dependsOn}` of `tasks` (non-empty), read.
fn entries(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Vec<(Task, Vec<String>)>> {
    let Some(items) = props.list(ctx, "tasks").filter(|items| !items.is_empty()) else {
        let field = props.field("tasks");
        ctx.report(props.locate("tasks"), format!("{field}: must not be empty"));
        return None;
    };
    let mut entries = Vec::with_capacity(items.len());
    let mut clean = true;
    for (index, node) in items.iter().enumerate() {
        let Some(entry) = Props::open(ctx, node, format!("{}[{index}]", props.field("tasks")))
        else {
            clean = false;
            continue;
        };
        entry.reject_unknown(ctx, DAG_TASK_CLASS, &[&["task", "dependsOn"]]);
        let task = match entry.get("task") {
            Some(task) => read_task(ctx, task, entry.field("task")),
            None => {
                entry.missing(ctx, "task");
                None
            }
        };
        let depends_on = match entry.get("dependsOn") {
            Some(_) => read::texts_only(ctx, &entry, "dependsOn"),
            None => Some(Vec::new()),
        };
        match (task, depends_on) {
            (Some(task), Some(depends_on)) => entries.push((task, depends_on)),
            _ => clean = false,
        }
    }
    clean.then_some(entries)
}

/// Each task's dependencies as indexes; Kestra's message for an unknown one or a cycle.
fn dependencies(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    entries: &[(Task, Vec<String>)],
) -> Option<Vec<Vec<usize>>> {
    let id = props
        .get("id")
        .and_then(|node| node.scalar_text())
        .unwrap_or_default();
    let index_of = |name: &str| entries.iter().position(|(task, _)| task.id == name);
    let unknown: Vec<&str> = entries
        .iter()
        .flat_map(|(_, depends_on)| depends_on)
        .filter(|name| index_of(name).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let message = format!(
            "{id}: Not existing task id in dependency: {}",
            unknown.join(", ")
        );
        ctx.report(props.locate("tasks"), message);
        return None;
    }
    let graph: Vec<Vec<usize>> = entries
        .iter()
        .map(|(_, depends_on)| depends_on.iter().filter_map(|d| index_of(d)).collect())
        .collect();
    let cyclic: Vec<&str> = (0..graph.len())
        .filter(|&start| reaches_itself(&graph, start))
        .map(|index| entries[index].0.id.as_str())
        .collect();
    if !cyclic.is_empty() {
        let message = format!("{id}: Cyclic dependency detected: {}", cyclic.join(", "));
        ctx.report(props.locate("tasks"), message);
        return None;
    }
    Some(graph)
}

/// Whether following dependencies from `start` leads back to it; each task visited once.
fn reaches_itself(graph: &[Vec<usize>], start: usize) -> bool {
    let mut seen = vec![false; graph.len()];
    let mut pending: Vec<usize> = graph[start].clone();
    while let Some(next) = pending.pop() {
        if next == start {
            return true;
        }
        if !std::mem::replace(&mut seen[next], true) {
            pending.extend(&graph[next]);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use crate::{FlowableKind, TaskKind, parse_flow};

    fn dag(entries: &str) -> Result<FlowableKind, Vec<String>> {
        let source = format!(
            "id: f\nnamespace: dev\ntasks:\n  - id: dag\n    type: io.kestra.plugin.core.flow.Dag\n    tasks:\n{entries}"
        );
        match parse_flow(&source) {
            Ok(mut flow) => match flow.tasks.remove(0).kind {
                TaskKind::Flowable(flowable) => Ok(flowable.kind),
                other => panic!("not a flowable: {other:?}"),
            },
            Err(found) => Err(found.iter().map(ToString::to_string).collect()),
        }
    }

    fn entry(id: &str, depends_on: &[&str]) -> String {
        format!(
            "      - task:\n          id: {id}\n          type: io.kestra.plugin.core.log.Log\n          message: hi\n        dependsOn: [{}]\n",
            depends_on.join(", ")
        )
    }

    #[test]
    fn dag_keeps_its_dependencies_as_indexes() {
        let found = dag(&format!(
            "{}{}{}",
            entry("a", &[]),
            entry("b", &["a"]),
            entry("c", &["a", "b"])
        ))
        .unwrap();
        let FlowableKind::Dag {
            tasks,
            depends_on,
            concurrent,
        } = found
        else {
            panic!("not a Dag");
        };
        assert_eq!(tasks.len(), 3);
        assert_eq!(depends_on, [vec![], vec![0], vec![0, 1]]);
        assert_eq!(concurrent, 0);
    }

    /// DagTest: dagCyclicDependencies, dagNotExistTask (Kestra's invalid flows).
    #[test]
    fn dag_refuses_unknown_dependencies_and_cycles() {
        let cyclic = format!(
            "{}{}{}",
            entry("task1", &["task2"]),
            entry("task2", &["task1"]),
            entry("task3", &["task2"])
        );
        assert_eq!(
            dag(&cyclic).unwrap_err(),
            ["7:7: dag: Cyclic dependency detected: task1, task2"]
        );
        let unknown = format!("{}{}", entry("task1", &[]), entry("task2", &["taskX"]));
        assert_eq!(
            dag(&unknown).unwrap_err(),
            ["7:7: dag: Not existing task id in dependency: taskX"]
        );
    }
}
