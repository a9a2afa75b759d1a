//! The per-execution registry of secret values and the masker built from it (spec §6).

use std::borrow::Cow;

/// The fixed mask: it does not reveal a value's length.
pub const MASK: &str = "******";

/// Every value an execution must never show, with its lines, JSON leaves and encoded forms,
/// and an Aho-Corasick matcher over all of them. Shared by the execution's tasks; cheap to
/// query, rebuilt lazily after a registration.
#[derive(Debug)]
pub struct MaskRegistry {
    min_length: usize,
}

impl MaskRegistry {
    /// A registry that ignores values shorter than `min_length` Unicode scalar values.
    pub fn new(min_length: usize) -> Self {
        Self { min_length }
    }

    /// Registers a secret's value (from `secret()`, a SECRET input, a metadata value): the value,
    /// its lines, its JSON string leaves, and their encoded forms. `key` names it in warnings.
    pub fn register(&self, key: &str, value: &str) {
        todo!("{key}{value}{}", self.min_length)
    }

    /// Registers a value derived from a secret by a filter or function, with its encoded forms.
    pub fn register_derived(&self, value: &str) {
        todo!("{value}")
    }

    /// Whether `text` contains any registered value or form (the taint test for derivation).
    pub fn contains_secret(&self, text: &str) -> bool {
        todo!("{text}")
    }

    /// `text` with every registered value or form replaced by [`MASK`].
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        todo!("{text}")
    }

    /// Masks every string (and object key) inside a JSON value, in place.
    pub fn mask_json(&self, value: &mut serde_json::Value) {
        todo!("{value}")
    }

    /// Warnings not yet taken (values too short to mask, named by key).
    pub fn take_warnings(&self) -> Vec<String> {
        todo!()
    }
}
