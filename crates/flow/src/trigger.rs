//! A flow's `triggers`: `io.kestra.plugin.core.trigger.Schedule` (cron, time zone, inputs),
//! the one trigger type kestrel runs.

use crate::context::{Ctx, Position, Props, TASK_ID};
use crate::cron::Cron;
use crate::yaml::{self, printable};
use chrono_tz::Tz;
use serde_json::{Map, Value};

/// A `Schedule` trigger: starts an execution of its flow each time `cron` fires in
/// `timezone`, with `inputs`.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// `id`, unique among the flow's triggers.
    pub id: String,
    /// The type as written (old or new class name).
    pub type_name: String,
    /// `description`.
    pub description: Option<String>,
    /// `disabled`: a disabled trigger never fires.
    pub disabled: bool,
    /// `cron`, parsed.
    pub cron: Cron,
    /// `timezone`, an IANA name; UTC when absent.
    pub timezone: Tz,
    /// `inputs` of the executions it starts, as written.
    pub inputs: Map<String, Value>,
}

const SCHEDULE: &str = "io.kestra.plugin.core.trigger.Schedule";
const SCHEDULE_ALIASES: &[&str] = &["io.kestra.core.models.triggers.types.Schedule"];
const SCHEDULE_PROPERTIES: &[&str] = &[
    "id",
    "type",
    "description",
    "disabled",
    "cron",
    "timezone",
    "inputs",
];

/// `triggers`: each a Schedule with its id, type and properties checked; ids unique.
pub(crate) fn read_triggers(ctx: &mut Ctx<'_>, flow: &Props<'_>) -> Vec<Schedule> {
    let Some(items) = flow.list(ctx, "triggers") else {
        return Vec::new();
    };
    let mut ids: Vec<(String, Position)> = Vec::new();
    let schedules = items
        .iter()
        .enumerate()
        .filter_map(|(index, node)| {
            let props = Props::open(ctx, node, format!("triggers[{index}]"))?;
            read_schedule(ctx, &props, &mut ids)
        })
        .collect();
    ctx.check_unique("trigger id", &ids);
    schedules
}

fn read_schedule(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    ids: &mut Vec<(String, Position)>,
) -> Option<Schedule> {
    let id = props.id(ctx, "id", &TASK_ID).map(|(id, at)| {
        ids.push((id.clone(), at.position()));
        id
    });
    let type_name = props.required_text(ctx, "type");
    let known = type_name
        .as_deref()
        .is_some_and(|name| name == SCHEDULE || SCHEDULE_ALIASES.contains(&name));
    if let (false, Some(name), Some(at)) = (known, &type_name, props.get("type")) {
        ctx.report(at, format!("Invalid type: {}", printable(name)));
        return None;
    }
    props.reject_unknown(ctx, SCHEDULE, &[SCHEDULE_PROPERTIES]);
    let cron = read_cron(ctx, props);
    let timezone = read_timezone(ctx, props);
    let inputs = props.map(ctx, "inputs").map(yaml::object);
    Some(Schedule {
        id: id?,
        type_name: type_name?,
        description: props.text(ctx, "description"),
        disabled: props.flag(ctx, "disabled").unwrap_or(false),
        cron: cron?,
        timezone: timezone?,
        inputs: inputs.unwrap_or_default(),
    })
}

fn read_cron(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Cron> {
    let text = props.required_text(ctx, "cron")?;
    match Cron::parse(&text) {
        Ok(cron) => Some(cron),
        Err(problem) => {
            let field = props.field("cron");
            let at = props.locate("cron");
            ctx.report(
                at,
                format!(
                    "{field}: invalid cron expression '{}': {problem}",
                    printable(&text)
                ),
            );
            None
        }
    }
}

fn read_timezone(ctx: &mut Ctx<'_>, props: &Props<'_>) -> Option<Tz> {
    let Some(text) = props.text(ctx, "timezone") else {
        return Some(Tz::UTC);
    };
    let zone = text.parse::<Tz>().ok();
    if zone.is_none() {
        let field = props.field("timezone");
        ctx.report(
            props.locate("timezone"),
            format!("{field}: unknown time zone '{}'", printable(&text)),
        );
    }
    zone
}

#[cfg(test)]
mod tests {
    use crate::parse_flow;

    fn flow(triggers: &str) -> String {
        format!(
            "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: x\ntriggers:\n{triggers}"
        )
    }

    fn violations(triggers: &str) -> Vec<String> {
        let found = parse_flow(&flow(triggers)).unwrap_err();
        found.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_schedule_is_read_with_its_zone_and_inputs() {
        let parsed = parse_flow(&flow(concat!(
            "  - id: nightly\n    type: io.kestra.plugin.core.trigger.Schedule\n",
            "    cron: \"0 2 * * *\"\n    timezone: Europe/Paris\n    inputs:\n      who: night\n",
            "  - id: old\n    type: io.kestra.core.models.triggers.types.Schedule\n    cron: '@hourly'\n    disabled: true\n",
        )))
        .unwrap();
        assert_eq!(parsed.triggers.len(), 2);
        let [nightly, old] = &parsed.schedules[..] else {
            panic!("two schedules: {:?}", parsed.schedules);
        };
        assert_eq!(nightly.cron.as_str(), "0 2 * * *");
        assert_eq!(nightly.timezone, chrono_tz::Europe::Paris);
        assert_eq!(nightly.inputs["who"], "night");
        assert!(!nightly.disabled);
        assert_eq!(old.timezone, chrono_tz::UTC);
        assert!(old.disabled);
    }

    #[test]
    fn unknown_trigger_types_are_invalid() {
        assert_eq!(
            violations(
                "  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: abc\n"
            ),
            ["9:11: Invalid type: io.kestra.plugin.core.trigger.Webhook"]
        );
    }

    #[test]
    fn bad_schedules_are_reported() {
        assert_eq!(
            violations(concat!(
                "  - id: a\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"61 * * * *\"\n",
                "    timezone: Mars/Olympus\n    backfill: {}\n",
                "  - id: a\n    type: io.kestra.plugin.core.trigger.Schedule\n",
            )),
            [
                "10:11: triggers[0].cron: invalid cron expression '61 * * * *': minute field '61': '61' is not a value from 0 to 59",
                "11:15: triggers[0].timezone: unknown time zone 'Mars/Olympus'",
                "12:5: Unrecognized field \"backfill\" (class io.kestra.plugin.core.trigger.Schedule), not marked as ignorable",
                "13:5: triggers[1].cron: must not be null",
                "13:9: Duplicate trigger id with name [a]",
            ]
        );
    }
}
