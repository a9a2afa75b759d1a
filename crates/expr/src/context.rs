//! What a render sees: the variables, and the per-render state that functions reach.

use crate::Files;
use kestrel_secrets::{MaskRegistry, SecretScope};
use minijinja::State;
use minijinja::value::{Object, Value};
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The name of the [`PerRender`] temp of a render.
const PER_RENDER_KEY: &str = "kestrel:per-render";

/// More values derived from secrets than this in one render fail it (a bound on memory).
const MAX_TAINTED_VALUES: usize = 1 << 20;

/// The key of the hidden per-render state in the root context. It is not a valid Pebble
/// identifier, so no template can name it.
pub(crate) const STATE_KEY: &str = "kestrel:state";

/// The variables of one render and the secret scope `secret()` resolves through. Build it
/// once per task run and reuse it for every property: the variables are converted once, and a
/// render only clones a reference to them.
#[derive(Clone)]
pub struct Context {
    root: Value,
}

impl fmt::Debug for Context {
    // Variables may hold real output values: show their names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .root
            .try_iter()
            .map(|keys| {
                keys.map(|k| k.to_string())
                    .filter(|k| k != STATE_KEY)
                    .collect()
            })
            .unwrap_or_default();
        f.debug_struct("Context").field("vars", &names).finish()
    }
}

impl Context {
    /// A context over `vars` (a JSON object); without a scope, `secret()` fails.
    pub fn new(vars: serde_json::Value, scope: Option<Arc<SecretScope>>) -> Self {
        let vars = match vars {
            serde_json::Value::Object(map) => Value::from_serialize(&map),
            _ => Value::from_serialize(serde_json::Map::new()),
        };
        let state = RenderState {
            scope,
            files: None,
            vars,
            depth: 0,
            outer: None,
        };
        Self { root: state.root() }
    }

    /// This context, whose `read()`, `fileSize()`, `fileExists()` and `isFileEmpty()` reach the
    /// execution's internal storage through `files`.
    pub fn with_files(self, files: Arc<dyn Files>) -> Self {
        self.rebuilt(|state| state.files = Some(files))
    }

    /// This context with the entries of `extra` added to its map variable `name` (made when
    /// absent): a ForEachItem batch's `taskrun.items` and `taskrun.iteration`.
    pub fn merged(&self, name: &str, extra: serde_json::Map<String, serde_json::Value>) -> Self {
        self.clone().rebuilt(|state| {
            let base = state.vars.get_attr(name).ok().filter(|v| !v.is_undefined());
            let mut entries: Vec<(Value, Value)> = map_entries(base.as_ref());
            entries.extend(
                extra
                    .into_iter()
                    .map(|(key, value)| (Value::from(key), Value::from_serialize(&value))),
            );
            let merged: Value = entries.into_iter().collect();
            let mut vars = map_entries(Some(&state.vars));
            vars.retain(|(key, _)| key.as_str() != Some(name));
            vars.push((Value::from(name), merged));
            state.vars = vars.into_iter().collect();
        })
    }

    /// This context with its state changed by `change`.
    fn rebuilt(self, change: impl FnOnce(&mut RenderState)) -> Self {
        let Some(me) = self
            .root
            .get_attr(STATE_KEY)
            .ok()
            .and_then(|s| s.downcast_object::<RenderState>())
        else {
            return self;
        };
        let mut state = RenderState {
            scope: me.scope.clone(),
            files: me.files.clone(),
            vars: me.vars.clone(),
            depth: 0,
            outer: None,
        };
        change(&mut state);
        Self { root: state.root() }
    }

    /// The root value a template renders against: the variables plus the hidden state.
    pub(crate) fn root(&self) -> &Value {
        &self.root
    }
}

/// Per-render state for functions: the secret scope, the internal storage, the variables (for
/// `render()`), how deep `render()` has recursed, and, in a nested render, the outer render's
/// [`PerRender`]. Reached through [`RenderState::of`].
pub(crate) struct RenderState {
    pub(crate) scope: Option<Arc<SecretScope>>,
    pub(crate) files: Option<Arc<dyn Files>>,
    pub(crate) vars: Value,
    pub(crate) depth: usize,
    pub(crate) outer: Option<Arc<PerRender>>,
}

/// The entries of the map `value` (none when it is not a map).
fn map_entries(value: Option<&Value>) -> Vec<(Value, Value)> {
    let Some(value) = value else {
        return Vec::new();
    };
    value
        .try_iter()
        .into_iter()
        .flatten()
        .filter_map(|key| Some((key.clone(), value.get_item(&key).ok()?)))
        .collect()
}

impl fmt::Debug for RenderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderState")
            .field("secrets", &self.scope.is_some())
            .field("files", &self.files.is_some())
            .field("depth", &self.depth)
            .finish()
    }
}

impl Object for RenderState {}

impl RenderState {
    /// The root context of a render in this state: its variables and the state itself.
    pub(crate) fn root(self) -> Value {
        let vars = self.vars.clone();
        let state = Value::from_object(self);
        let entries = vars.try_iter().into_iter().flatten().filter_map(|key| {
            let value = vars.get_item(&key).ok()?;
            Some((key, value))
        });
        entries
            .chain(std::iter::once((Value::from(STATE_KEY), state)))
            .collect()
    }

    /// The state of the render `state` belongs to.
    pub(crate) fn of(state: &State<'_, '_>) -> Option<Arc<RenderState>> {
        state.lookup(STATE_KEY)?.downcast_object::<RenderState>()
    }

    /// The mask registry of the render, if it has a secret scope.
    pub(crate) fn registry(&self) -> Option<Arc<MaskRegistry>> {
        self.scope.as_ref().map(|s| Arc::clone(s.registry()))
    }

    /// The [`PerRender`] of the render `state` (of this state), if one was created: none was
    /// before a value was first marked, and creating one costs more than this look-up.
    pub(crate) fn existing_per_render(&self, state: &State<'_, '_>) -> Option<Arc<PerRender>> {
        match &self.outer {
            Some(outer) => Some(Arc::clone(outer)),
            None => state.get_temp(PER_RENDER_KEY)?.downcast_object(),
        }
    }
}

/// What one render shares with the renders `render()` nests in it: the values derived from
/// secrets so far, and the fuel the nested renders spent. Created on first use.
pub(crate) struct PerRender {
    /// Hashes of the exact text of every tainted string and number, however short: what
    /// the registry cannot hold (fragments under the minimum length) stays tainted here.
    tainted: Mutex<HashSet<u64>>,
    hasher: RandomState,
    nested_fuel: AtomicU64,
}

impl fmt::Debug for PerRender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerRender").finish_non_exhaustive()
    }
}

impl Object for PerRender {}

impl PerRender {
    pub(crate) fn new() -> Self {
        Self {
            tainted: Mutex::new(HashSet::new()),
            hasher: RandomState::new(),
            nested_fuel: AtomicU64::new(0),
        }
    }

    /// The state of the render `state` belongs to (the outermost one, for a nested render).
    pub(crate) fn of(state: &State<'_, '_>) -> Arc<PerRender> {
        match RenderState::of(state).and_then(|me| me.outer.clone()) {
            Some(outer) => outer,
            None => state.get_or_set_temp_object(PER_RENDER_KEY, PerRender::new),
        }
    }

    /// Whether `text` is exactly a value marked tainted in this render.
    pub(crate) fn is_tainted(&self, text: &str) -> bool {
        let hash = self.hasher.hash_one(text);
        self.set().contains(&hash)
    }

    /// Marks `text` tainted; fails past [`MAX_TAINTED_VALUES`].
    pub(crate) fn taint(&self, text: &str) -> Result<(), minijinja::Error> {
        let hash = self.hasher.hash_one(text);
        let mut set = self.set();
        if set.len() >= MAX_TAINTED_VALUES && !set.contains(&hash) {
            return Err(crate::limits::limit_error(format!(
                "The expression derived more than {MAX_TAINTED_VALUES} values from secrets."
            )));
        }
        set.insert(hash);
        Ok(())
    }

    /// Adds the fuel a nested render spent; the total nested renders spent so far.
    pub(crate) fn spend_nested_fuel(&self, fuel: u64) -> u64 {
        self.nested_fuel
            .fetch_add(fuel, Ordering::Relaxed)
            .saturating_add(fuel)
    }

    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        // Hashes are only ever added, so a poisoned lock holds no torn state.
        self.tainted.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_variable_names_not_values() {
        let ctx = Context::new(serde_json::json!({"outputs": {"token": "hunter22"}}), None);
        let shown = format!("{ctx:?}");
        assert!(shown.contains("outputs"), "{shown}");
        assert!(!shown.contains("hunter22"), "{shown}");
    }

    #[test]
    fn non_object_vars_give_an_empty_context() {
        let ctx = Context::new(serde_json::json!([1, 2]), None);
        assert_eq!(ctx.root().len(), Some(1));
    }
}
