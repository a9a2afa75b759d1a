//! Taint: which values hold a secret, and marking what is derived from them (docs/masking.md, derived values).
//!
//! A string is tainted when it contains a registered value or is exactly a value this render
//! marked tainted ([`PerRender`], which also remembers fragments too short to register); a
//! number when its decimal text is registered or marked. Lists and maps are tainted through
//! their items at any depth, map keys only when a key itself is tainted. Walks use an explicit
//! stack, so no nesting depth can overflow the thread's.

use super::to_text;
use crate::context::{PerRender, RenderState};
use kestrel_secrets::MaskRegistry;
use minijinja::value::{Value, ValueKind};
use minijinja::{Error, State};
use std::ops::ControlFlow;
use std::sync::Arc;

/// The taint of one render: its registry and what it marked so far.
pub(super) struct Taint {
    registry: Arc<MaskRegistry>,
    marked: Option<Arc<PerRender>>,
}

impl Taint {
    /// The render's taint, or `None` when nothing can be tainted (no secret scope, or nothing
    /// registered yet).
    pub(super) fn of(state: &State<'_, '_>) -> Option<Self> {
        let me = RenderState::of(state)?;
        let registry = me.registry()?;
        if registry.pattern_count() == 0 {
            return None;
        }
        Some(Self {
            registry,
            marked: me.existing_per_render(state),
        })
    }

    /// Whether `v` holds a tainted value at any depth.
    pub(super) fn holds(&self, v: &Value) -> bool {
        let found = leaves(v, &|_| true, &mut |leaf| {
            if self.is_tainted_leaf(leaf) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        found.is_break()
    }

    /// Whether a key of the map `v` is tainted (what `keys` and a map's iteration yield).
    pub(super) fn holds_in_keys(&self, v: &Value) -> bool {
        v.try_iter()
            .into_iter()
            .flatten()
            .any(|key| self.holds(&key))
    }

    /// Marks every string and number inside `v` tainted in `per_render` (the render's, see
    /// [`PerRender::of`]) and registers it as derived; a map key only when it is tainted itself
    /// (the key names of a JSON secret are not secrets).
    pub(super) fn spread(&self, per_render: &PerRender, v: &Value) -> Result<(), Error> {
        let spread = leaves(v, &|key| self.holds(key), &mut |leaf| {
            if matches!(leaf.kind(), ValueKind::String | ValueKind::Number) {
                let text = to_text(leaf);
                if let Err(e) = per_render.taint(&text) {
                    return ControlFlow::Break(e);
                }
                // Registering computes every encoded form: skip a value registered already.
                if !self.registry.is_registered(&text) {
                    self.registry.register_derived(&text);
                }
            }
            ControlFlow::Continue(())
        });
        match spread {
            ControlFlow::Break(e) => Err(e),
            ControlFlow::Continue(()) => Ok(()),
        }
    }

    fn is_marked(&self, text: &str) -> bool {
        self.marked.as_ref().is_some_and(|m| m.is_tainted(text))
    }

    fn is_tainted_leaf(&self, v: &Value) -> bool {
        match v.kind() {
            ValueKind::String => v
                .as_str()
                .is_some_and(|s| self.is_marked(s) || self.registry.contains_secret(s)),
            ValueKind::Number => {
                let text = to_text(v);
                self.is_marked(&text) || self.registry.is_registered(&text)
            }
            _ => false,
        }
    }
}

/// Visits every leaf of `v` (anything but a list or map), and the keys of its maps that
/// `keep_key` accepts, until `visit` breaks. An explicit stack: no depth overflows.
fn leaves<B>(
    v: &Value,
    keep_key: &dyn Fn(&Value) -> bool,
    visit: &mut dyn FnMut(&Value) -> ControlFlow<B>,
) -> ControlFlow<B> {
    if !matches!(
        v.kind(),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable
    ) {
        return visit(v);
    }
    let mut stack = vec![v.clone()];
    while let Some(v) = stack.pop() {
        match v.kind() {
            ValueKind::Seq | ValueKind::Iterable => {
                stack.extend(v.try_iter().into_iter().flatten());
            }
            ValueKind::Map => {
                for key in v.try_iter().into_iter().flatten() {
                    stack.push(v.get_item(&key).unwrap_or_default());
                    if keep_key(&key) {
                        stack.push(key);
                    }
                }
            }
            _ => visit(&v)?,
        }
    }
    ControlFlow::Continue(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint() -> (Taint, Arc<PerRender>) {
        let registry = Arc::new(MaskRegistry::new(4));
        registry.register("T", "s3cr3t-value");
        let per_render = Arc::new(PerRender::new());
        let marked = Some(Arc::clone(&per_render));
        (Taint { registry, marked }, per_render)
    }

    fn nested(depth: usize, leaf: &str) -> Value {
        let mut v = Value::from(leaf);
        for _ in 0..depth {
            v = Value::from(vec![v]);
        }
        v
    }

    #[test]
    fn leak_8_taint_is_found_and_spread_at_any_depth_without_overflowing_the_stack() {
        let (taint, per_render) = taint();
        let values = [
            nested(10_000, "s3cr3t-value"),
            nested(10_000, "x"),
            nested(10_000, "clean"),
        ];
        assert!(taint.holds(&values[0]));
        taint.spread(&per_render, &values[1]).unwrap();
        assert!(per_render.is_tainted("x"));
        assert!(taint.holds(&values[1]));
        assert!(!taint.holds(&values[2]));
        // Dropping a value this deep recurses in minijinja, not in kestrel: keep it alive.
        std::mem::forget(values);
    }

    #[test]
    fn a_map_key_is_tainted_only_when_it_holds_a_tainted_value_itself() {
        let (taint, per_render) = taint();
        let doc = Value::from_serialize(serde_json::json!({"port": 5432, "pw": "s3cr3t-value"}));
        assert!(taint.holds(&doc));
        assert!(!taint.holds_in_keys(&doc));
        taint.spread(&per_render, &doc).unwrap();
        assert!(per_render.is_tainted("5432"));
        assert!(!per_render.is_tainted("port"));
        assert!(taint.registry.is_registered("5432"));
        let keyed = Value::from_serialize(serde_json::json!({"s3cr3t-value!": 1}));
        assert!(taint.holds_in_keys(&keyed));
    }
}
