//! A flow's revisions and what changed between two of them: a line diff (the longest common
//! subsequence of their lines), bounded so that two huge sources cannot make a page slow.

use super::Ui;
use super::namespaces::checked;
use super::page::{self, UiError, when};
use super::session::Current;
use crate::extract::Path;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::{Value, context};
use serde::Deserialize;

/// The most line pairs a diff compares (their product); past it the page says so.
const MAX_CELLS: usize = 4_000_000;

/// How a line fares from one revision to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Kept,
    Removed,
    Added,
}

impl Change {
    fn class(self) -> &'static str {
        match self {
            Change::Kept => "kept",
            Change::Removed => "removed",
            Change::Added => "added",
        }
    }
}

/// The lines of `before` and `after` in order, each kept, removed or added; `None` when they
/// are too long to compare.
fn diff_lines<'a>(before: &'a str, after: &'a str) -> Option<Vec<(Change, &'a str)>> {
    let (old, new): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    if old.len().saturating_mul(new.len()) > MAX_CELLS {
        return None;
    }
    // common[i][j]: the longest common subsequence of old[i..] and new[j..].
    let width = new.len() + 1;
    let mut common = vec![0_u32; (old.len() + 1) * width];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            common[i * width + j] = if old[i] == new[j] {
                common[(i + 1) * width + j + 1] + 1
            } else {
                common[(i + 1) * width + j].max(common[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j, mut lines) = (0, 0, Vec::new());
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            lines.push((Change::Kept, old[i]));
            (i, j) = (i + 1, j + 1);
        } else if j < new.len()
            && (i == old.len() || common[i * width + j + 1] > common[(i + 1) * width + j])
        {
            lines.push((Change::Added, new[j]));
            j += 1;
        } else {
            lines.push((Change::Removed, old[i]));
            i += 1;
        }
    }
    Some(lines)
}

#[derive(Debug, Deserialize)]
pub(super) struct Compared {
    from: Option<u64>,
    to: Option<u64>,
}

/// The revisions of a flow, and the diff of two of them (by default the last two).
pub(super) async fn page(
    State(ui): State<Ui>,
    current: Current,
    Path((namespace, id)): Path<(String, String)>,
    Query(compared): Query<Compared>,
) -> Result<Response, UiError> {
    checked(&current, &namespace)?;
    let tenant = &ui.app.options().tenant;
    let store = ui.app.store();
    let missing = || UiError::new(StatusCode::NOT_FOUND, format!("No flow {namespace}.{id}."));
    let latest = store
        .get_flow(tenant, &namespace, &id, None)
        .await?
        .ok_or_else(missing)?;
    let to = compared
        .to
        .unwrap_or(latest.revision)
        .clamp(1, latest.revision);
    let from = compared
        .from
        .unwrap_or(to.saturating_sub(1).max(1))
        .clamp(1, to);
    let source = async |revision| {
        store
            .get_flow(tenant, &namespace, &id, Some(revision))
            .await
            .map(|found| found.map(|flow| (flow.source, when(flow.updated_at))))
    };
    let (before, before_saved) = source(from).await?.ok_or_else(missing)?;
    let (after, after_saved) = source(to).await?.ok_or_else(missing)?;
    let lines: Option<Vec<Value>> = diff_lines(&before, &after).map(|lines| {
        lines
            .into_iter()
            .map(|(change, text)| context! { class => change.class(), text })
            .collect()
    });
    let values = context! {
        title => format!("{namespace}.{id} · revisions"),
        nav => "namespaces",
        namespace,
        id,
        revisions => (1..=latest.revision).rev().collect::<Vec<_>>(),
        from,
        to,
        before_saved,
        after_saved,
        lines,
    };
    Ok(page::render(&current, "revisions.html", values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_keeps_removes_and_adds_lines_in_order() {
        let lines = diff_lines("a\nb\nc\nd\n", "a\nc\nx\nd\n").unwrap();
        assert_eq!(
            lines,
            [
                (Change::Kept, "a"),
                (Change::Removed, "b"),
                (Change::Kept, "c"),
                (Change::Added, "x"),
                (Change::Kept, "d"),
            ]
        );
        assert_eq!(diff_lines("", "new").unwrap(), [(Change::Added, "new")]);
        assert_eq!(
            diff_lines("x: 1\n", "x: 2\n").unwrap(),
            [(Change::Removed, "x: 1"), (Change::Added, "x: 2")],
            "a changed line reads as the old one removed, then the new one added"
        );
    }

    #[test]
    fn sources_too_long_to_compare_are_said_so() {
        let long = "line\n".repeat(3000);
        assert!(diff_lines(&long, &long).is_none());
    }
}
