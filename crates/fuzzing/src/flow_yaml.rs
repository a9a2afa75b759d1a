//! `flow_yaml`: the flow loader every save and `kestrel validate` run.

use kestrel_flow::{Flow, Violation};

/// Loads the input (lossy UTF-8) as a flow's YAML with `kestrel_engine::check_flow` (the model
/// and every template's syntax), and with `kestrel_flow::parse_flow` (the model alone).
///
/// Panics when either panics; when a refusal has no violation, or a violation has an empty
/// message or a line or column of 0; when a flow that loads has an id or a namespace that
/// breaks the rules `Flow` documents (`^[a-zA-Z0-9][a-zA-Z0-9._-]*`, at most 100 characters;
/// dot-separated `[a-z0-9][a-z0-9_-]*` segments, at most 150) or no task; or when the two
/// loaders disagree (a flow whose templates all compile is a flow of the model, and the same
/// one).
pub fn flow_yaml(data: &[u8]) {
    let source = String::from_utf8_lossy(data);
    let checked = kestrel_engine::check_flow(&source);
    let modelled = kestrel_flow::parse_flow(&source);
    for result in [&checked, &modelled] {
        match result {
            Ok(flow) => check_flow_fields(flow),
            Err(violations) => check_violations(violations),
        }
    }
    match (&checked, &modelled) {
        (Ok(checked), Ok(modelled)) => {
            assert_eq!(
                (&checked.id, &checked.namespace, checked.tasks.len()),
                (&modelled.id, &modelled.namespace, modelled.tasks.len()),
                "check_flow and parse_flow read different flows"
            );
        }
        (Ok(flow), Err(violations)) => panic!(
            "check_flow accepts {}.{}, parse_flow refuses it: {}",
            flow.namespace,
            flow.id,
            shown(violations)
        ),
        (Err(_), _) => {}
    }
}

fn check_flow_fields(flow: &Flow) {
    let id = &flow.id;
    assert!(!id.is_empty(), "a flow with an empty id");
    assert!(id.chars().count() <= 100, "an id longer than 100: {id:?}");
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    assert!(first_ok && rest_ok, "an invalid flow id: {id:?}");

    let namespace = &flow.namespace;
    assert!(!namespace.is_empty(), "a flow with an empty namespace");
    assert!(
        namespace.chars().count() <= 150,
        "a namespace longer than 150: {namespace:?}"
    );
    let segment_ok = |segment: &str| {
        let mut chars = segment.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
    };
    assert!(
        namespace.split('.').all(segment_ok),
        "an invalid namespace: {namespace:?}"
    );
    assert!(!flow.tasks.is_empty(), "a flow without tasks");
}

fn check_violations(violations: &[Violation]) {
    assert!(!violations.is_empty(), "a refusal without a violation");
    for violation in violations {
        assert!(
            !violation.message.trim().is_empty(),
            "a violation without a message: {violation:?}"
        );
        assert_ne!(
            violation.line,
            Some(0),
            "a violation at line 0: {violation:?}"
        );
        assert_ne!(
            violation.column,
            Some(0),
            "a violation at column 0: {violation:?}"
        );
    }
}

fn shown(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
