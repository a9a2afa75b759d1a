//! A flow's `triggers`: `io.kestra.plugin.core.trigger.Schedule` (cron, time zone, inputs),
//! `io.kestra.plugin.core.trigger.Webhook` (a key) and `io.kestra.plugin.core.trigger.Flow`
//! (another flow's execution ended), the trigger types kestrel runs, each with the
//! `conditions` it can evaluate.

use crate::condition::{self, Condition, Multiple};
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

/// A `Webhook` trigger: starts an execution of its flow when its URL is called with `key`.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// `id`, unique among the flow's triggers.
    pub id: String,
    /// The type as written (old or new class name).
    pub type_name: String,
    /// `description`.
    pub description: Option<String>,
    /// `disabled`: a disabled webhook starts nothing.
    pub disabled: bool,
    /// `key`, as written: a template (`{{ secret('WEBHOOK_KEY') }}`) is rendered by the
    /// caller when the webhook is called, so no secret is held here.
    pub key: String,
    /// `inputs` of the executions it starts, as written.
    pub inputs: Map<String, Value>,
    /// `conditions` (`Expression` only): a call starts an execution when they all hold.
    pub conditions: Vec<Condition>,
}

/// A `Flow` trigger: starts an execution of its flow when an execution of another flow ends
/// in one of `states` and its conditions hold.
#[derive(Debug, Clone)]
pub struct FlowTrigger {
    /// `id`, unique among the flow's triggers.
    pub id: String,
    /// The type as written (old or new class name).
    pub type_name: String,
    /// `description`.
    pub description: Option<String>,
    /// `disabled`: a disabled trigger never fires.
    pub disabled: bool,
    /// `inputs` of the executions it starts, as written: templates rendered in the context
    /// of the execution that ended.
    pub inputs: Map<String, Value>,
    /// `states`: those of the ending execution it reacts to; the final states when absent.
    pub states: Vec<String>,
    /// `conditions` other than `MultipleCondition`: each must hold for the ending execution.
    pub conditions: Vec<Condition>,
    /// The `MultipleCondition`s and `preconditions`: each must have all its conditions met
    /// within its window.
    pub multiples: Vec<Multiple>,
}

/// The typed triggers of a flow, by type, each in source order.
#[derive(Default)]
pub(crate) struct Triggers {
    pub(crate) schedules: Vec<Schedule>,
    pub(crate) webhooks: Vec<Webhook>,
    pub(crate) flows: Vec<FlowTrigger>,
}

/// The trigger types kestrel knows, with their new class name, old names and properties.
#[derive(Clone, Copy)]
enum Kind {
    Schedule,
    Webhook,
    Flow,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Schedule, Kind::Webhook, Kind::Flow];

    fn class(self) -> &'static str {
        match self {
            Kind::Schedule => "io.kestra.plugin.core.trigger.Schedule",
            Kind::Webhook => "io.kestra.plugin.core.trigger.Webhook",
            Kind::Flow => "io.kestra.plugin.core.trigger.Flow",
        }
    }

    fn old_class(self) -> &'static str {
        match self {
            Kind::Schedule => "io.kestra.core.models.triggers.types.Schedule",
            Kind::Webhook => "io.kestra.core.models.triggers.types.Webhook",
            Kind::Flow => "io.kestra.core.models.triggers.types.Flow",
        }
    }

    fn properties(self) -> &'static [&'static str] {
        match self {
            Kind::Schedule => &["cron", "timezone", "inputs"],
            Kind::Webhook => &["key", "inputs"],
            Kind::Flow => &["inputs", "states", "preconditions"],
        }
    }

    /// The conditions the trigger can evaluate: a Schedule none yet (Kestra's are calendar
    /// conditions kestrel does not have), a Webhook an `Expression` over its request, a Flow
    /// trigger every execution condition.
    fn conditions(self) -> &'static [condition::Kind] {
        match self {
            Kind::Schedule => &[],
            Kind::Webhook => &[condition::Kind::Expression],
            Kind::Flow => &[
                condition::Kind::ExecutionStatus,
                condition::Kind::ExecutionFlow,
                condition::Kind::ExecutionNamespace,
                condition::Kind::Expression,
                condition::Kind::Multiple,
            ],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Schedule => "Schedule",
            Kind::Webhook => "Webhook",
            Kind::Flow => "Flow",
        }
    }

    fn named(name: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.class() == name || kind.old_class() == name)
    }
}

/// Properties every trigger has.
const COMMON_PROPERTIES: &[&str] = &["id", "type", "description", "disabled", "conditions"];

/// `triggers`: each a Schedule or a Webhook with its id, type and properties checked; ids
/// unique.
pub(crate) fn read_triggers(ctx: &mut Ctx<'_>, flow: &Props<'_>) -> Triggers {
    let mut triggers = Triggers::default();
    let Some(items) = flow.list(ctx, "triggers") else {
        return triggers;
    };
    let mut ids: Vec<(String, Position)> = Vec::new();
    for (index, node) in items.iter().enumerate() {
        let Some(props) = Props::open(ctx, node, format!("triggers[{index}]")) else {
            continue;
        };
        read_trigger(ctx, &props, &mut ids, &mut triggers);
    }
    ctx.check_unique("trigger id", &ids);
    triggers
}

/// One trigger, added to `triggers` when valid.
fn read_trigger(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    ids: &mut Vec<(String, Position)>,
    triggers: &mut Triggers,
) -> Option<()> {
    let id = props.id(ctx, "id", &TASK_ID).map(|(id, at)| {
        ids.push((id.clone(), at.position()));
        id
    });
    let type_name = props.required_text(ctx, "type")?;
    let Some(kind) = Kind::named(&type_name) else {
        if let Some(at) = props.get("type") {
            ctx.report(at, format!("Invalid type: {}", printable(&type_name)));
        }
        return None;
    };
    props.reject_unknown(ctx, kind.class(), &[COMMON_PROPERTIES, kind.properties()]);
    let conditions = condition::read_conditions(ctx, props, kind.conditions(), kind.name());
    let common = Common {
        id,
        type_name,
        description: props.text(ctx, "description"),
        disabled: props.flag(ctx, "disabled").unwrap_or(false),
        conditions,
    };
    match kind {
        Kind::Schedule => triggers.schedules.push(read_schedule(ctx, props, common)?),
        Kind::Webhook => triggers.webhooks.push(read_webhook(ctx, props, common)?),
        Kind::Flow => triggers.flows.push(read_flow_trigger(ctx, props, common)?),
    }
    Some(())
}

/// What every trigger has, read before its own properties.
struct Common {
    id: Option<String>,
    type_name: String,
    description: Option<String>,
    disabled: bool,
    /// `conditions`, plain and with windows; `None` when one is invalid.
    conditions: Option<(Vec<Condition>, Vec<Multiple>)>,
}

fn read_schedule(ctx: &mut Ctx<'_>, props: &Props<'_>, common: Common) -> Option<Schedule> {
    common.conditions.as_ref()?;
    let cron = read_cron(ctx, props);
    let timezone = read_timezone(ctx, props);
    let inputs = props.map(ctx, "inputs").map(yaml::object);
    Some(Schedule {
        id: common.id?,
        type_name: common.type_name,
        description: common.description,
        disabled: common.disabled,
        cron: cron?,
        timezone: timezone?,
        inputs: inputs.unwrap_or_default(),
    })
}

fn read_webhook(ctx: &mut Ctx<'_>, props: &Props<'_>, common: Common) -> Option<Webhook> {
    let key = props.required_text(ctx, "key");
    let inputs = props.map(ctx, "inputs").map(yaml::object);
    let (conditions, _) = common.conditions?;
    Some(Webhook {
        id: common.id?,
        type_name: common.type_name,
        description: common.description,
        disabled: common.disabled,
        key: key?,
        inputs: inputs.unwrap_or_default(),
        conditions,
    })
}

fn read_flow_trigger(ctx: &mut Ctx<'_>, props: &Props<'_>, common: Common) -> Option<FlowTrigger> {
    let inputs = props.map(ctx, "inputs").map(yaml::object);
    let states = condition::read_states(ctx, props, "states");
    let preconditions = condition::read_preconditions(ctx, props);
    if props.get("preconditions").is_some() && preconditions.is_none() {
        return None;
    }
    let (conditions, mut multiples) = common.conditions?;
    multiples.extend(preconditions);
    let finals = || {
        condition::FINAL_STATES
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    };
    Some(FlowTrigger {
        id: common.id?,
        type_name: common.type_name,
        description: common.description,
        disabled: common.disabled,
        inputs: inputs.unwrap_or_default(),
        states: states?.unwrap_or_else(finals),
        conditions,
        multiples,
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
pub(crate) mod tests {
    use crate::parse_flow;

    /// A flow with `triggers` (YAML list items, indented by two).
    pub(crate) fn flow(triggers: &str) -> String {
        format!(
            "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: x\ntriggers:\n{triggers}"
        )
    }

    /// The violations of [`flow`]`(triggers)`.
    pub(crate) fn violations(triggers: &str) -> Vec<String> {
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
            violations("  - id: poll\n    type: io.kestra.plugin.fs.http.Trigger\n"),
            ["9:11: Invalid type: io.kestra.plugin.fs.http.Trigger"]
        );
    }

    #[test]
    fn a_webhook_is_read_with_its_key_as_written() {
        let parsed = parse_flow(&flow(concat!(
            "  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n",
            "    key: \"{{ secret('WEBHOOK_KEY') }}\"\n    description: from CI\n",
            "    inputs:\n      who: ci\n",
            "  - id: old\n    type: io.kestra.core.models.triggers.types.Webhook\n",
            "    key: 1234\n    disabled: true\n",
        )))
        .unwrap();
        assert!(parsed.schedules.is_empty());
        let [hook, old] = &parsed.webhooks[..] else {
            panic!("two webhooks: {:?}", parsed.webhooks);
        };
        assert_eq!(hook.key, "{{ secret('WEBHOOK_KEY') }}");
        assert_eq!(hook.description.as_deref(), Some("from CI"));
        assert_eq!(hook.inputs["who"], "ci");
        assert!(!hook.disabled);
        assert_eq!(
            old.type_name,
            "io.kestra.core.models.triggers.types.Webhook"
        );
        assert_eq!(old.key, "1234");
        assert!(old.disabled);
    }

    #[test]
    fn a_webhook_needs_a_key_and_only_its_own_properties() {
        assert_eq!(
            violations(concat!(
                "  - id: a\n    type: io.kestra.plugin.core.trigger.Webhook\n",
                "  - id: b\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\n    cron: '@daily'\n",
            )),
            [
                "8:5: triggers[0].key: must not be null",
                "13:5: Unrecognized field \"cron\" (class io.kestra.plugin.core.trigger.Webhook), not marked as ignorable",
            ]
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
