//! A flow's `inputs` and `outputs`.

use crate::context::{Ctx, IO_ID, Position, Props};
use crate::tasks::read;
use crate::yaml::{Node, printable};
use crate::{InputDef, InputRules, InputType, OutputDef};
use serde_json::Value;

const INPUT_PROPERTIES: &[&str] = &[
    "id",
    "name",
    "type",
    "required",
    "defaults",
    "description",
    "displayName",
    "dependsOn",
];
const OUTPUT_PROPERTIES: &[&str] = &["id", "type", "value"];
const OUTPUT_CLASS: &str = "io.kestra.core.models.flows.Output";

/// The ids read so far, with their positions, for the duplicate check.
type Ids = Vec<(String, Position)>;

/// `inputs`: each `{id, type, required?, defaults?, description?}`, ids unique.
pub(crate) fn read_inputs(ctx: &mut Ctx<'_>, flow: &Props<'_>) -> Vec<InputDef> {
    read_inputs_at(ctx, flow, "inputs")
}

/// Inputs declared under `key` (a Pause's `onResume`), read as the flow's are.
pub(crate) fn read_inputs_at(ctx: &mut Ctx<'_>, props: &Props<'_>, key: &str) -> Vec<InputDef> {
    read_all(ctx, props, key, "input", read_input)
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
            let props = Props::open(ctx, node, format!("{}[{index}]", flow.field(key)))?;
            read(ctx, &props, &mut ids)
        })
        .collect();
    ctx.check_unique(what, &ids);
    read
}

fn read_input(ctx: &mut Ctx<'_>, props: &Props<'_>, ids: &mut Ids) -> Option<InputDef> {
    let input_type = read_type(ctx, props);
    props.reject_unknown(
        ctx,
        input_class(input_type),
        &[INPUT_PROPERTIES, type_properties(input_type)],
    );
    let rules = input_type.map(|kind| read_rules(ctx, props, kind));
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
        rules: rules?,
    })
}

/// The input's `type`.
fn read_type(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<InputType> {
    if props.get("type").is_none() {
        props.missing(ctx, "type");
        return None;
    }
    let name = props.get("type").and_then(Node::scalar_text);
    if let (Some("FILE"), Some(at)) = (name.as_deref(), props.get("defaults")) {
        let field = props.field("defaults");
        ctx.report(
            at,
            format!("{field}: no `defaults` can be set for inputs of type 'FILE'"),
        );
    }
    let found = name.as_deref().and_then(InputType::from_name);
    if let (None, Some(name)) = (found, props.text(ctx, "type")) {
        // Kestra's words for a type it cannot resolve, then the types kestrel knows.
        let names: Vec<&str> = InputType::ALL.iter().map(|kind| kind.as_str()).collect();
        ctx.report(
            props.locate("type"),
            format!(
                "{}: Invalid type: {}, must be one of [{}]",
                props.field("type"),
                printable(&name),
                names.join(", ")
            ),
        );
    }
    found
}

/// The validation properties each type takes, besides those every input has.
fn type_properties(input_type: Option<InputType>) -> &'static [&'static str] {
    match input_type {
        Some(InputType::String) => &["validator"],
        Some(InputType::Int | InputType::Float | InputType::Duration) => &["min", "max"],
        Some(InputType::DateTime | InputType::Date | InputType::Time) => &["after", "before"],
        Some(InputType::Enum) => &["values"],
        Some(InputType::Select) => &["values", "allowCustomValue", "isRadio"],
        Some(InputType::Multiselect) => &["values", "options", "allowCustomValue", "itemType"],
        Some(InputType::Array) => &["itemType"],
        // The extension Kestra gives an upload without a name; kestrel's uploads keep theirs.
        Some(InputType::File) => &["extension"],
        _ => &[],
    }
}

/// The rules of an input of `kind`, each checked to be well formed: a validator that
/// compiles, bounds of the input's own type, the values a choice needs.
fn read_rules(ctx: &mut Ctx<'_>, props: &Props<'_>, kind: InputType) -> InputRules {
    let validator = props.text(ctx, "validator");
    if let (Some(pattern), Some(at)) = (&validator, props.get("validator"))
        && let Err(error) = crate::typed::whole_match(pattern)
    {
        ctx.report(at, format!("{}: {error}", props.field("validator")));
    }
    let bound_type = match kind {
        InputType::Int | InputType::Float | InputType::Duration => Some(kind),
        _ => None,
    };
    let min = bound(ctx, props, "min", bound_type);
    let max = bound(ctx, props, "max", bound_type);
    let after = dated(ctx, props, "after", kind);
    let before = dated(ctx, props, "before", kind);
    let values = match (read::texts_only(ctx, props, "values"), kind) {
        (None, InputType::Multiselect) => read::texts_only(ctx, props, "options"),
        (values, _) => values,
    };
    if values.is_none()
        && matches!(
            kind,
            InputType::Enum | InputType::Select | InputType::Multiselect
        )
    {
        props.missing(ctx, "values");
    }
    let item_type = props.choice(ctx, "itemType", &InputType::ALL, InputType::as_str);
    if item_type == Some(InputType::Secret) {
        ctx.report(
            props.locate("itemType"),
            format!(
                "{}: SECRET items would not be masked: declare one SECRET input per value",
                props.field("itemType")
            ),
        );
    }
    if item_type == Some(InputType::Array) {
        ctx.report(
            props.locate("itemType"),
            format!("{}: `itemType` cannot be `ARRAY`", props.field("itemType")),
        );
    }
    if item_type.is_none() && kind == InputType::Array && props.get("itemType").is_none() {
        props.missing(ctx, "itemType");
    }
    InputRules {
        validator,
        min,
        max,
        after,
        before,
        values,
        allow_custom_value: props.flag(ctx, "allowCustomValue").unwrap_or(false),
        item_type,
    }
}

/// `min` or `max`, read as the input's own type.
fn bound(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    key: &str,
    kind: Option<InputType>,
) -> Option<Value> {
    let node = props.get(key)?;
    let kind = kind?;
    let text = node.scalar_text();
    let read = text
        .as_deref()
        .map(|text| crate::typed::read_value(kind, &InputRules::default(), text));
    match read {
        Some(Ok(value)) => Some(value),
        _ => {
            ctx.report(
                node,
                format!("{}: must be a value of type {kind}", props.field(key)),
            );
            None
        }
    }
}

/// `after` or `before`, a DATETIME, DATE or TIME as the input's type.
fn dated(ctx: &mut Ctx<'_>, props: &Props<'_>, key: &str, kind: InputType) -> Option<String> {
    let text = props.text(ctx, key)?;
    match crate::typed::read_value(kind, &InputRules::default(), &text) {
        Ok(Value::String(normal)) => Some(normal),
        _ => {
            ctx.report(
                props.locate(key),
                format!("{}: must be a value of type {kind}", props.field(key)),
            );
            None
        }
    }
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
        Some(InputType::Enum) => "io.kestra.core.models.flows.input.EnumInput",
        Some(InputType::Select) => "io.kestra.core.models.flows.input.SelectInput",
        Some(InputType::Int) => "io.kestra.core.models.flows.input.IntInput",
        Some(InputType::Float) => "io.kestra.core.models.flows.input.FloatInput",
        Some(InputType::Boolean) => "io.kestra.core.models.flows.input.BooleanInput",
        Some(InputType::DateTime) => "io.kestra.core.models.flows.input.DateTimeInput",
        Some(InputType::Date) => "io.kestra.core.models.flows.input.DateInput",
        Some(InputType::Time) => "io.kestra.core.models.flows.input.TimeInput",
        Some(InputType::Duration) => "io.kestra.core.models.flows.input.DurationInput",
        Some(InputType::File) => "io.kestra.core.models.flows.input.FileInput",
        Some(InputType::Json) => "io.kestra.core.models.flows.input.JsonInput",
        Some(InputType::Uri) => "io.kestra.core.models.flows.input.URIInput",
        Some(InputType::Secret) => "io.kestra.core.models.flows.input.SecretInput",
        Some(InputType::Array) => "io.kestra.core.models.flows.input.ArrayInput",
        Some(InputType::Multiselect) => "io.kestra.core.models.flows.input.MultiselectInput",
        Some(InputType::Yaml) => "io.kestra.core.models.flows.input.YamlInput",
        Some(InputType::Email) => "io.kestra.core.models.flows.input.EmailInput",
        None => "io.kestra.core.models.flows.Input",
    }
}
