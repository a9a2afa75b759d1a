//! A flow's `inputs` and `outputs`.

use crate::context::{Ctx, IO_ID, Position, Props};
use crate::yaml::Node;
use crate::{InputDef, InputType, OutputDef};

const INPUT_PROPERTIES: &[&str] = &["id", "name", "type", "required", "defaults", "description"];
const OUTPUT_PROPERTIES: &[&str] = &["id", "type", "value"];
const OUTPUT_CLASS: &str = "io.kestra.core.models.flows.Output";

/// The ids read so far, with their positions, for the duplicate check.
type Ids = Vec<(String, Position)>;

/// `inputs`: each `{id, type, required?, defaults?, description?}`, ids unique.
pub(crate) fn read_inputs(ctx: &mut Ctx<'_>, flow: &Props<'_>) -> Vec<InputDef> {
    read_all(ctx, flow, "inputs", "input", read_input)
}

/// `outputs`: each `{id, type?, value}`, ids unique.
pub(crate) fn read_outputs(ctx: &mut Ctx<'_>, flow: &Props<'_>) -> Vec<OutputDef> {
    read_all(ctx, flow, "outputs", "output", read_output)
}

/// Reads each item of the list under `key` with `read`, then checks their ids are unique.
fn read_all<T>(
    ctx: &mut Ctx<'_>,
    flow: &Props<'_>,
    key: &str,
    what: &str,
    read: fn(&mut Ctx<'_>, &Props<'_>, &mut Ids) -> Option<T>,
) -> Vec<T> {
    let Some(items) = flow.list(ctx, key) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    let read = items
        .iter()
        .enumerate()
        .filter_map(|(index, node)| {
            let props = Props::open(ctx, node, format!("{key}[{index}]"))?;
            read(ctx, &props, &mut ids)
        })
        .collect();
    ctx.check_unique(what, &ids);
    read
}

fn read_input(ctx: &mut Ctx<'_>, props: &Props<'_>, ids: &mut Ids) -> Option<InputDef> {
    let input_type = props.choice(ctx, "type", &InputType::ALL, InputType::as_str);
    if props.get("type").is_none() {
        props.missing(ctx, "type");
    }
    props.reject_unknown(ctx, input_class(input_type), &[INPUT_PROPERTIES]);
    // `name` is Kestra's old spelling of `id`.
    let key = match (props.get("id"), props.get("name")) {
        (None, Some(_)) => "name",
        _ => "id",
    };
    let id = remember(ids, props.id(ctx, key, &IO_ID));
    Some(InputDef {
        id: id?,
        input_type: input_type?,
        required: props.flag(ctx, "required").unwrap_or(true),
        defaults: props.json("defaults"),
        description: props.text(ctx, "description"),
    })
}

fn read_output(ctx: &mut Ctx<'_>, props: &Props<'_>, ids: &mut Ids) -> Option<OutputDef> {
    props.reject_unknown(ctx, OUTPUT_CLASS, &[OUTPUT_PROPERTIES]);
    let id = remember(ids, props.id(ctx, "id", &IO_ID));
    let value = props.json("value");
    if value.is_none() {
        props.missing(ctx, "value");
    }
    Some(OutputDef {
        id: id?,
        value: value?,
        output_type: props.text(ctx, "type"),
    })
}

/// Keeps an id and its position for the duplicate check.
fn remember(ids: &mut Ids, id: Option<(String, &Node)>) -> Option<String> {
    let (id, at) = id?;
    ids.push((id.clone(), at.position()));
    Some(id)
}

/// The class Kestra deserializes an input of that type into, for "Unrecognized field" messages.
fn input_class(input_type: Option<InputType>) -> &'static str {
    match input_type {
        Some(InputType::String) => "io.kestra.core.models.flows.input.StringInput",
        Some(InputType::Int) => "io.kestra.core.models.flows.input.IntInput",
        Some(InputType::Float) => "io.kestra.core.models.flows.input.FloatInput",
        Some(InputType::Boolean) => "io.kestra.core.models.flows.input.BooleanInput",
        Some(InputType::Json) => "io.kestra.core.models.flows.input.JsonInput",
        Some(InputType::Secret) => "io.kestra.core.models.flows.input.SecretInput",
        None => "io.kestra.core.models.flows.Input",
    }
}
