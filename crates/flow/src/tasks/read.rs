//! Readers for the property shapes several task types share: texts, lists of texts, maps of
//! texts and durations. Like [`Props`]' own readers, each records its violation and gives
//! `None`, so that one pass reports every problem; absent properties give `None` too.

use crate::context::{Ctx, Props};
use crate::duration::parse_iso8601;
use crate::yaml::{Yaml, printable};
use std::time::Duration;

/// A list of texts (`commands`), or a single text taken as a list of one. Numbers and
/// booleans are taken as written.
pub(crate) fn texts(ctx: &mut Ctx<'_>, props: &Props<'_>, key: &str) -> Option<Vec<String>> {
    let node = props.get(key)?;
    let field = props.field(key);
    let Yaml::Seq(items) = &node.value else {
        let text = node.scalar_text();
        if text.is_none() {
            ctx.report(
                node,
                format!("{field}: must be a string or a list of strings"),
            );
        }
        return text.map(|text| vec![text]);
    };
    let mut texts = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match (&item.value, item.scalar_text()) {
            (_, Some(text)) => texts.push(text),
            (Yaml::Null, None) => ctx.report(item, format!("{field}[{index}]: must not be null")),
            (_, None) => ctx.report(item, format!("{field}[{index}]: must be a string")),
        }
    }
    (texts.len() == items.len()).then_some(texts)
}

/// A list of texts (`values` of a choice input): `<field>: must be a list` otherwise.
pub(crate) fn texts_only(ctx: &mut Ctx<'_>, props: &Props<'_>, key: &str) -> Option<Vec<String>> {
    props.list(ctx, key)?;
    texts(ctx, props, key)
}

/// A map of texts (`env`, `headers`), in source order; numbers and booleans as written.
pub(crate) fn text_map(
    ctx: &mut Ctx<'_>,
    props: &Props<'_>,
    key: &str,
) -> Option<Vec<(String, String)>> {
    let entries = props.map(ctx, key)?;
    let field = props.field(key);
    let mut map = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        let name = name.key_text();
        match value.scalar_text() {
            Some(text) => map.push((name, text)),
            None => ctx.report(
                value,
                format!("{field}.{}: must be a string", printable(&name)),
            ),
        }
    }
    (map.len() == entries.len()).then_some(map)
}

/// A required text that is not only blanks (Kestra's `@NotBlank`).
pub(crate) fn non_blank(ctx: &mut Ctx<'_>, props: &Props<'_>, key: &str) -> Option<String> {
    let text = props.required_text(ctx, key)?;
    if text.trim().is_empty() {
        let field = props.field(key);
        ctx.report(props.locate(key), format!("{field}: must not be blank"));
        return None;
    }
    Some(text)
}

/// An ISO-8601 duration (`PT30S`).
pub(crate) fn duration(ctx: &mut Ctx<'_>, props: &Props<'_>, key: &str) -> Option<Duration> {
    let text = props.text(ctx, key)?;
    let duration = parse_iso8601(&text);
    if let (None, Some(at)) = (duration, props.get(key)) {
        let field = props.field(key);
        ctx.report(
            at,
            format!("{field}: must be an ISO-8601 duration such as PT30S"),
        );
    }
    duration
}

/// A nested mapping (`options`, `options.auth`), opened for its own properties; `None` when
/// absent or not a map.
pub(crate) fn nested<'n>(ctx: &mut Ctx<'_>, props: &Props<'n>, key: &str) -> Option<Props<'n>> {
    let node = props.get(key)?;
    Props::open(ctx, node, props.field(key))
}
