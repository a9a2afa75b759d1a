//! `io.kestra.plugin.core.flow.ForEachItem`: one subflow execution per batch of lines of a
//! file of the internal storage. As in Kestra, it runs as three task runs under its own:
//! `<id>_split` (stores the batches), `<id>_items` (starts one child per batch, outputs
//! `numberOfBatches` and `iterations`) and `<id>_merge` (outputs `subflowOutputs`, a file of
//! the children's outputs, one JSON line each).

use super::read::nested;
use super::subflow::read_call;
use super::{TaskType, read};
use crate::context::{Ctx, Props};
use crate::flowable::{FlowableKind, flowable};
use crate::{Task, TaskCommon, TaskKind};

pub(crate) const FOR_EACH_ITEM: TaskType = TaskType {
    class: "io.kestra.plugin.core.flow.ForEachItem",
    aliases: &["io.kestra.core.tasks.flows.ForEachItem"],
    properties: &[
        "items",
        "batch",
        "namespace",
        "flowId",
        "revision",
        "inputs",
        "labels",
        "wait",
        "transmitFailed",
        "inheritLabels",
        "scheduleDate",
        "errors",
    ],
    build,
};

/// Kestra's default batch: one line per child.
const ROWS_DEFAULT: &str = "1";

fn build(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let id = props.text(ctx, "id").unwrap_or_default();
    let items = read::non_blank(ctx, props, "items");
    let rows = batch_rows(ctx, props);
    let call = read_call(ctx, props);
    let line = props.locate("items").line;
    let step = |suffix: &str, kind: TaskKind| Task {
        id: format!("{id}_{suffix}"),
        type_name: FOR_EACH_ITEM.class.to_owned(),
        kind,
        common: TaskCommon::default(),
        line,
    };
    let mut call = call?;
    call.batches = Some(format!("{{{{ outputs['{id}_split'].splits | toJson }}}}"));
    let tasks = vec![
        step(
            "split",
            TaskKind::SplitItems {
                items: items?,
                rows: rows?,
            },
        ),
        step("items", TaskKind::Subflow(Box::new(call))),
        step(
            "merge",
            TaskKind::MergeOutputs {
                file: format!("{{{{ outputs['{id}_items'].subflowOutputs ?? '' }}}}"),
            },
        ),
    ];
    flowable(ctx, props, Some(FlowableKind::Sequential { tasks }))
}

/// `batch.rows` (a number or a template; default 1). `bytes` and `partitions` are refused:
/// kestrel splits by lines only.
fn batch_rows(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<String> {
    let Some(batch) = nested(ctx, props, "batch") else {
        return Some(ROWS_DEFAULT.to_owned());
    };
    batch.reject_unknown(
        ctx,
        "batch",
        &[&["rows", "separator", "bytes", "partitions"]],
    );
    for key in ["bytes", "partitions", "separator"] {
        if let Some(at) = batch.get(key) {
            let field = batch.field(key);
            ctx.report(
                at,
                format!("{field}: is not supported by kestrel: batches are `rows` lines"),
            );
        }
    }
    Some(
        batch
            .text(ctx, "rows")
            .unwrap_or_else(|| ROWS_DEFAULT.to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use crate::{FlowableKind, TaskKind, parse_flow};

    const EACH: &str = concat!(
        "    type: io.kestra.plugin.core.flow.ForEachItem\n",
        "    items: \"{{ inputs.file }}\"\n    namespace: dev\n    flowId: child\n",
        "    inputs:\n      items: \"{{ taskrun.items }}\"\n",
    );

    fn parsed(properties: &str) -> Result<Vec<(String, TaskKind)>, Vec<String>> {
        let source = format!("id: f\nnamespace: dev\ntasks:\n  - id: each\n{properties}");
        let mut flow = parse_flow(&source)
            .map_err(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let TaskKind::Flowable(flowable) = flow.tasks.remove(0).kind else {
            panic!("not a flowable")
        };
        let FlowableKind::Sequential { tasks } = flowable.kind else {
            panic!("not three steps")
        };
        Ok(tasks.into_iter().map(|task| (task.id, task.kind)).collect())
    }

    #[test]
    fn a_for_each_item_runs_as_kestras_three_steps() {
        let steps = parsed(&format!("{EACH}    batch:\n      rows: 4\n")).unwrap();
        let ids: Vec<&str> = steps.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["each_split", "each_items", "each_merge"]);
        assert!(matches!(
            &steps[0].1,
            TaskKind::SplitItems { items, rows } if items == "{{ inputs.file }}" && rows == "4"
        ));
        let TaskKind::Subflow(call) = &steps[1].1 else {
            panic!("not a subflow")
        };
        assert_eq!(
            call.batches.as_deref(),
            Some("{{ outputs['each_split'].splits | toJson }}")
        );
        assert_eq!(call.flow_id, "child");
        assert!(call.wait && call.transmit_failed);
    }

    #[test]
    fn batches_are_rows_of_lines_only() {
        let steps = parsed(EACH).unwrap();
        assert!(matches!(&steps[0].1, TaskKind::SplitItems { rows, .. } if rows == "1"));
        assert_eq!(
            parsed(&format!("{EACH}    batch:\n      bytes: 10KB\n")).unwrap_err(),
            ["12:14: tasks[0].batch.bytes: is not supported by kestrel: batches are `rows` lines"]
        );
    }
}
