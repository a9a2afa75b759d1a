//! `io.kestra.plugin.core.state.Get`, `Set` and `Delete`: a small JSON map kept from one
//! execution to the next, per flow (or per namespace), name and ForEach value.

use super::TaskType;
use crate::TaskKind;
use crate::context::{Ctx, Props};
use serde_json::Value;

pub(crate) const GET: TaskType = TaskType {
    class: "io.kestra.plugin.core.state.Get",
    aliases: &["io.kestra.core.tasks.states.Get"],
    properties: &["name", "namespace", "taskrunValue", "errorOnMissing"],
    build: build_get,
};

pub(crate) const SET: TaskType = TaskType {
    class: "io.kestra.plugin.core.state.Set",
    aliases: &["io.kestra.core.tasks.states.Set"],
    properties: &["name", "namespace", "taskrunValue", "data"],
    build: build_set,
};

pub(crate) const DELETE: TaskType = TaskType {
    class: "io.kestra.plugin.core.state.Delete",
    aliases: &["io.kestra.core.tasks.states.Delete"],
    properties: &["name", "namespace", "taskrunValue", "errorOnMissing"],
    build: build_delete,
};

/// A state task: what it does, and which state.
#[derive(Debug, Clone, PartialEq)]
pub struct StateCall {
    /// Read, merge into, or delete the state.
    pub op: StateOp,
    /// `name`, a template (default `default`).
    pub name: String,
    /// `namespace` (default false): the state is the namespace's, shared by its flows.
    pub namespace_wide: bool,
    /// `taskrunValue` (default true): inside a ForEach, each value has a state of its own.
    pub taskrun_value: bool,
}

/// What a state task does.
#[derive(Debug, Clone, PartialEq)]
pub enum StateOp {
    /// Outputs `data` (the map, empty when there is none) and `count`.
    Get {
        /// `errorOnMissing` (default false): fail when there is no state.
        error_on_missing: bool,
    },
    /// Merges `data` (rendered) into the map; outputs `count` and `key`.
    Set {
        /// `data`, a map; every text in it a template.
        data: Value,
    },
    /// Removes the state; outputs `deleted`.
    Delete {
        /// `errorOnMissing` (default false): fail when there was no state.
        error_on_missing: bool,
    },
}

fn build_get(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let error_on_missing = props.flag(ctx, "errorOnMissing").unwrap_or(false);
    call(ctx, props, StateOp::Get { error_on_missing })
}

fn build_set(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    if props.get("data").is_some() {
        props.map(ctx, "data")?;
    }
    let data = props
        .json("data")
        .unwrap_or(Value::Object(Default::default()));
    call(ctx, props, StateOp::Set { data })
}

fn build_delete(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<TaskKind> {
    let error_on_missing = props.flag(ctx, "errorOnMissing").unwrap_or(false);
    call(ctx, props, StateOp::Delete { error_on_missing })
}

fn call(ctx: &mut Ctx<'_>, props: &Props<'_>, op: StateOp) -> Option<TaskKind> {
    Some(TaskKind::State(Box::new(StateCall {
        op,
        name: props
            .text(ctx, "name")
            .unwrap_or_else(|| "default".to_owned()),
        namespace_wide: props.flag(ctx, "namespace").unwrap_or(false),
        taskrun_value: props.flag(ctx, "taskrunValue").unwrap_or(true),
    })))
}

#[cfg(test)]
mod tests {
    use super::{StateCall, StateOp};
    use crate::{TaskKind, parse_flow};
    use serde_json::json;

    fn state(properties: &str) -> StateCall {
        let source = format!("id: f\nnamespace: dev\ntasks:\n  - id: t\n{properties}");
        match parse_flow(&source).unwrap().tasks.remove(0).kind {
            TaskKind::State(call) => *call,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn get_set_and_delete_under_both_names_with_kestras_defaults() {
        for prefix in ["io.kestra.plugin.core.state", "io.kestra.core.tasks.states"] {
            let get = state(&format!("    type: {prefix}.Get\n"));
            assert_eq!(
                get,
                StateCall {
                    op: StateOp::Get {
                        error_on_missing: false
                    },
                    name: "default".into(),
                    namespace_wide: false,
                    taskrun_value: true,
                }
            );
            let set = state(&format!(
                "    type: {prefix}.Set\n    name: \"{{{{ inputs.s }}}}\"\n    namespace: true\n    taskrunValue: false\n    data:\n      value: 1\n"
            ));
            assert_eq!(
                set.op,
                StateOp::Set {
                    data: json!({"value": 1})
                }
            );
            assert_eq!(set.name, "{{ inputs.s }}");
            assert!(set.namespace_wide && !set.taskrun_value);
            let delete = state(&format!(
                "    type: {prefix}.Delete\n    errorOnMissing: true\n"
            ));
            assert_eq!(
                delete.op,
                StateOp::Delete {
                    error_on_missing: true
                }
            );
        }
    }
}
