//! The per-execution registry of secret values and the masker built from it (docs/masking.md).

use crate::encoded::{EncodedForms, encoded_forms};
use crate::matcher::Matcher;
use std::borrow::{Borrow, Cow};
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use zeroize::{Zeroize, Zeroizing};

/// The fixed mask: it does not reveal a value's length.
pub const MASK: &str = "******";

/// The name warnings give to a value derived from a secret (it has no key of its own).
const DERIVED_KEY: &str = "derived value";

/// Every value an execution must never show, with its lines, JSON leaves and encoded forms,
/// and an Aho-Corasick matcher over all of them. Shared by the execution's tasks; cheap to
/// query, rebuilt lazily after a registration.
///
/// Overlapping occurrences are masked as the union of their ranges, so two patterns that
/// overlap never leave a fragment of either visible. If the matcher cannot be built, masking
/// fails closed: the whole text becomes [`MASK`].
pub struct MaskRegistry {
    min_length: usize,
    forms: EncodedForms,
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    /// The registered values themselves (with their lines, JSON leaves and derived values),
    /// long enough to mask: what [`MaskRegistry::is_registered`] answers from.
    values: HashSet<Pattern>,
    /// `values` and their encoded forms: what the matcher looks for.
    patterns: HashSet<Pattern>,
    /// Keys already warned about, so each warning is given once.
    warned: HashSet<String>,
    warnings: Vec<String>,
    matcher: MatcherState,
    /// Patterns were added since `matcher` was built.
    dirty: bool,
}

#[derive(Clone, Default)]
enum MatcherState {
    /// Nothing registered: every text is returned as is.
    #[default]
    Empty,
    Ready(Arc<Matcher>),
    /// The automaton could not be built: every text is withheld.
    Failed,
}

/// What one registration adds: its values and the patterns the matcher looks for.
#[derive(Default)]
struct Registered {
    values: Vec<Zeroizing<String>>,
    patterns: Vec<Zeroizing<String>>,
}

/// A registered string, zeroized on drop, looked up by `&str`.
struct Pattern(Zeroizing<String>);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern {}

impl Hash for Pattern {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_str().hash(state);
    }
}

impl Borrow<str> for Pattern {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for MaskRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.read();
        f.debug_struct("MaskRegistry")
            .field("min_length", &self.min_length)
            .field("patterns", &state.patterns.len())
            .finish_non_exhaustive()
    }
}

impl Default for MaskRegistry {
    /// A registry with the default minimum length (`secret.mask-min-length`: 4).
    fn default() -> Self {
        Self::new(4)
    }
}

impl MaskRegistry {
    /// A registry that ignores values shorter than `min_length` Unicode scalar values.
    pub fn new(min_length: usize) -> Self {
        Self::with_forms(min_length, EncodedForms::All)
    }

    /// A registry that looks for the encoded forms in `forms` only (the benchmark's baseline).
    #[doc(hidden)]
    pub fn with_forms(min_length: usize, forms: EncodedForms) -> Self {
        Self {
            min_length,
            forms,
            state: RwLock::new(State::default()),
        }
    }

    /// Registers a secret's value (from `secret()`, a SECRET input, a metadata value): the value,
    /// its lines, its JSON string and number leaves (never the key names), and their encoded
    /// forms. `key` names it in warnings.
    pub fn register(&self, key: &str, value: &str) {
        if !self.long_enough(key, value) {
            return;
        }
        let mut strings = vec![Zeroizing::new(value.to_owned())];
        json_leaves(value, &mut strings);
        let mut registered = Registered::default();
        for string in &strings {
            self.collect(string, &mut registered);
        }
        self.insert(registered);
    }

    /// Registers a value derived from a secret by a filter or function, with its encoded forms.
    pub fn register_derived(&self, value: &str) {
        if !self.long_enough(DERIVED_KEY, value) {
            return;
        }
        let mut registered = Registered::default();
        self.collect(value, &mut registered);
        self.insert(registered);
    }

    /// Whether `text` is exactly a registered value, line, JSON leaf or derived value (not an
    /// encoded form): the test for a number held outside JSON, such as a metric value, whose
    /// decimal text must become [`MASK`].
    pub fn is_registered(&self, text: &str) -> bool {
        self.read().values.contains(text)
    }

    /// Whether `number`'s decimal text, as serde_json prints it, is a registered value. A float
    /// with no fractional part also matches by its integer text (`48213377.0` as `48213377`).
    pub fn is_registered_number(&self, number: &serde_json::Number) -> bool {
        let state = self.read();
        number_texts(number)
            .iter()
            .any(|text| state.values.contains(text.as_str()))
    }

    /// The number of distinct strings the matcher looks for (values, lines, leaves and forms).
    pub fn pattern_count(&self) -> usize {
        self.read().patterns.len()
    }

    /// Builds the matcher now if a registration made it stale (otherwise the first `mask` or
    /// `contains_secret` after a registration builds it).
    pub fn prepare(&self) {
        self.matcher();
    }

    /// Whether `text` contains any registered value or form (the taint test for derivation).
    /// Fails closed: `true` when the matcher cannot be built.
    pub fn contains_secret(&self, text: &str) -> bool {
        match self.matcher() {
            MatcherState::Empty => false,
            MatcherState::Ready(matcher) => matcher.is_match(text).unwrap_or(true),
            MatcherState::Failed => true,
        }
    }

    /// `text` with every registered value or form replaced by [`MASK`].
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let matcher = match self.matcher() {
            MatcherState::Empty => return Cow::Borrowed(text),
            MatcherState::Ready(matcher) => matcher,
            MatcherState::Failed => return Cow::Owned(MASK.to_owned()),
        };
        match matcher.ranges(text) {
            Ok(ranges) if ranges.is_empty() => Cow::Borrowed(text),
            Ok(ranges) => Cow::Owned(splice(text, &ranges)),
            Err(_) => Cow::Owned(MASK.to_owned()),
        }
    }

    /// `bytes` (a file's content) masked, when it holds a registered value or form; `None`
    /// when there is nothing to mask. Content that is not UTF-8 is read lossily first: a
    /// secret is text, so its bytes survive the reading, and the file is shown as text then.
    pub fn mask_bytes(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let text = String::from_utf8_lossy(bytes);
        match self.mask(&text) {
            Cow::Borrowed(_) => None,
            Cow::Owned(masked) => Some(masked.into_bytes()),
        }
    }

    /// Masks every string (and object key) inside a JSON value, in place, and replaces by the
    /// string [`MASK`] every number whose decimal text is a registered value
    /// ([`MaskRegistry::is_registered_number`]). Numbers are masked only in what users and tasks
    /// produce (docs/masking.md, numbers): never pass it the engine's own fields (timestamps,
    /// durations, attempt numbers, ids), or a secret `2024` would break a date.
    pub fn mask_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::Number(number) => {
                if self.is_registered_number(number) {
                    *value = Value::String(MASK.to_owned());
                }
            }
            Value::String(text) => {
                if let Cow::Owned(masked) = self.mask(text) {
                    std::mem::replace(text, masked).zeroize();
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.mask_json(item)),
            Value::Object(map) => {
                if map.keys().any(|key| self.contains_secret(key)) {
                    let entries = std::mem::take(map);
                    for (key, item) in entries {
                        map.insert(self.mask(&key).into_owned(), item);
                    }
                }
                map.values_mut().for_each(|item| self.mask_json(item));
            }
            Value::Null | Value::Bool(_) => {}
        }
    }

    /// Warnings not yet taken (values too short to mask, named by key).
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.write().warnings)
    }

    /// Whether `value` is long enough to mask; warns once per key when it is not.
    fn long_enough(&self, key: &str, value: &str) -> bool {
        if value.is_empty() {
            return false;
        }
        if value.chars().count() >= self.min_length {
            return true;
        }
        let mut state = self.write();
        if state.warned.insert(key.to_owned()) {
            let warning = format!(
                "Secret '{key}' is shorter than {} characters and is not masked",
                self.min_length
            );
            state.warnings.push(warning);
        }
        false
    }

    /// Adds `value` and each of its lines to `registered.values`, and those with their encoded
    /// forms to `registered.patterns`, when long enough to mask.
    fn collect(&self, value: &str, registered: &mut Registered) {
        let mut strings = vec![Zeroizing::new(value.to_owned())];
        if value.contains(['\n', '\r']) {
            // A CRLF yields an empty line between its two characters; empty lines are dropped.
            let lines = value.split(['\n', '\r']);
            strings.extend(lines.map(|line| Zeroizing::new(line.to_owned())));
        }
        strings.retain(|string| self.maskable(string));
        for string in &strings {
            registered
                .patterns
                .extend(encoded_forms(string, self.forms, self.min_length));
        }
        registered.patterns.retain(|pattern| self.maskable(pattern));
        registered.patterns.extend(strings.iter().cloned());
        registered.values.extend(strings);
    }

    /// Whether `text` reaches the minimum length (in Unicode scalar values).
    fn maskable(&self, text: &str) -> bool {
        !text.is_empty() && text.chars().count() >= self.min_length
    }

    fn insert(&self, registered: Registered) {
        let mut state = self.write();
        for value in registered.values {
            if !state.values.contains(value.as_str()) {
                state.values.insert(Pattern(value));
            }
        }
        for pattern in registered.patterns {
            if !state.patterns.contains(pattern.as_str()) {
                state.patterns.insert(Pattern(pattern));
                state.dirty = true;
            }
        }
    }

    /// The current matcher, rebuilt first if a registration made it stale.
    fn matcher(&self) -> MatcherState {
        {
            let state = self.read();
            if !state.dirty {
                return state.matcher.clone();
            }
        }
        let mut state = self.write();
        if state.dirty {
            state.matcher = build_matcher(&state.patterns);
            state.dirty = false;
        }
        state.matcher.clone()
    }

    // A panic while a lock is held cannot leave `State` half-updated in a way that unmasks
    // anything (patterns are only ever added), so a poisoned lock is used as is.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The matcher over every pattern; [`MatcherState::Failed`] when it cannot be built.
fn build_matcher(patterns: &HashSet<Pattern>) -> MatcherState {
    if patterns.is_empty() {
        return MatcherState::Empty;
    }
    Matcher::build(patterns.iter().map(|pattern| pattern.0.as_bytes()))
        .map_or(MatcherState::Failed, |matcher| {
            MatcherState::Ready(Arc::new(matcher))
        })
}

/// `text` with each of the sorted, disjoint `ranges` replaced by [`MASK`]. A pattern is valid
/// UTF-8, so each range lies on character boundaries; if one did not, the text is withheld.
fn splice(text: &str, ranges: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut kept_from = 0;
    for range in ranges {
        let Some(kept) = text.get(kept_from..range.start) else {
            return MASK.to_owned();
        };
        out.push_str(kept);
        out.push_str(MASK);
        kept_from = range.end;
    }
    match text.get(kept_from..) {
        Some(rest) => out.push_str(rest),
        None => return MASK.to_owned(),
    }
    out
}

/// Pushes every string and number leaf of `value` when it parses as JSON (never a key name).
/// The leaves are moved out of the parsed document, so each copy of the secret ends in a
/// zeroized buffer.
fn json_leaves(value: &str, leaves: &mut Vec<Zeroizing<String>>) {
    let starts_like_json = value
        .trim_start()
        .starts_with(|c: char| matches!(c, '{' | '[' | '"' | '-') || c.is_ascii_digit());
    if !starts_like_json {
        return;
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(value) {
        take_leaves(json, leaves);
    }
}

/// Moves every string leaf of `value`, and the decimal texts of every number leaf, into
/// `leaves`; object keys are dropped.
fn take_leaves(value: serde_json::Value, leaves: &mut Vec<Zeroizing<String>>) {
    use serde_json::Value;
    match value {
        Value::String(text) => leaves.push(Zeroizing::new(text)),
        Value::Number(number) => leaves.extend(number_texts(&number)),
        Value::Array(items) => items.into_iter().for_each(|item| take_leaves(item, leaves)),
        Value::Object(map) => map
            .into_iter()
            .for_each(|(_key, item)| take_leaves(item, leaves)),
        Value::Null | Value::Bool(_) => {}
    }
}

/// The decimal texts of `number`: as serde_json prints it, and, for a float with no fractional
/// part, as an integer (`48213377.0` and `48213377`).
fn number_texts(number: &serde_json::Number) -> Vec<Zeroizing<String>> {
    let mut texts = vec![Zeroizing::new(number.to_string())];
    let whole_float = number
        .as_f64()
        .filter(|float| number.is_f64() && float.is_finite() && float.fract() == 0.0);
    if let Some(float) = whole_float {
        texts.push(Zeroizing::new(format!("{float:.0}")));
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    fn registry(values: &[&str]) -> MaskRegistry {
        let registry = MaskRegistry::new(4);
        for (i, value) in values.iter().enumerate() {
            registry.register(&format!("KEY{i}"), value);
        }
        registry
    }

    /// The text left visible once the masks are taken out.
    fn visible(masked: &str) -> String {
        masked.replace(MASK, "")
    }

    #[test]
    fn masks_every_occurrence_with_the_fixed_mask() {
        let registry = registry(&["hunter22"]);
        assert_eq!(
            registry.mask("a hunter22 b hunter22hunter22"),
            "a ****** b ******"
        );
    }

    #[test]
    fn untouched_text_is_borrowed() {
        assert!(matches!(
            registry(&[]).mask("plain"),
            Cow::Borrowed("plain")
        ));
        assert!(matches!(
            registry(&["hunter22"]).mask("plain"),
            Cow::Borrowed("plain")
        ));
    }

    #[test]
    fn overlapping_values_are_masked_as_their_union() {
        let registry = registry(&["abcdefgh", "efghijkl", "cdef"]);
        assert_eq!(registry.mask("xxabcdefghijklxx"), "xx******xx");
        // Overlapping only partly: the tail of one value starts inside the other.
        assert_eq!(registry.mask("1abcdefgh2efghijkl3"), "1******2******3");
    }

    #[test]
    fn each_line_of_a_multi_line_value_is_masked() {
        let pem = "-----BEGIN KEY-----\r\nMIIBOgIBAAJBAKj34GkxFhD9\r\n-----END KEY-----";
        let registry = registry(&[pem]);
        let log = "line 2 alone: MIIBOgIBAAJBAKj34GkxFhD9 and the end: -----END KEY-----";
        assert_eq!(
            registry.mask(log),
            "line 2 alone: ****** and the end: ******"
        );
    }

    #[test]
    fn a_value_ending_in_a_newline_is_masked_without_it() {
        let registry = registry(&["password\n"]);
        assert_eq!(registry.mask("user password here"), "user ****** here");
    }

    #[test]
    fn json_string_leaves_are_masked_alone() {
        let value = r#"{"user":"admin-user","token":{"inner":["tok-123456", 42, true]}}"#;
        let registry = registry(&[value]);
        assert_eq!(
            registry.mask("user=admin-user token=tok-123456 count=42"),
            "user=****** token=****** count=42"
        );
    }

    #[test]
    fn base64_forms_are_masked_unwrapped_and_wrapped() {
        let secret = "a fairly long secret value that wraps when it is encoded in base64!";
        let registry = registry(&[secret]);
        let encoded = STANDARD.encode(secret);
        assert_eq!(
            registry.mask(&format!("auth {encoded} end")),
            "auth ****** end"
        );
        let unpadded = encoded.trim_end_matches('=');
        assert_eq!(registry.mask(unpadded), MASK);
        for columns in [64, 76] {
            let wrapped: Vec<&str> = encoded
                .as_bytes()
                .chunks(columns)
                .map(|chunk| std::str::from_utf8(chunk).unwrap())
                .collect();
            let text = wrapped.join("\n");
            let masked = registry.mask(&text);
            assert_eq!(
                visible(&masked).trim(),
                "",
                "wrapped at {columns}: {masked}"
            );
        }
    }

    #[test]
    fn base64_inside_a_longer_encoding_is_masked_at_every_offset() {
        let secret = "s3cr3t-value-0123456789";
        let registry = registry(&[secret]);
        for prefix in 0..6 {
            for suffix in 0..4 {
                let plain = format!("{}{secret}{}", "P".repeat(prefix), "S".repeat(suffix));
                let masked = registry.mask(&STANDARD.encode(&plain)).into_owned();
                // What stays visible encodes the prefix and suffix bytes, not the secret.
                let left = visible(&masked);
                assert!(masked.contains(MASK), "prefix {prefix} suffix {suffix}");
                assert!(
                    left.len() <= 2 * (prefix + suffix) + 4,
                    "{prefix}/{suffix}: {masked}"
                );
            }
        }
    }

    #[test]
    fn percent_encodings_are_masked() {
        let registry = registry(&["p@ss w/rd+1"]);
        for form in [
            "p%40ss%20w%2Frd%2B1",
            "p%40ss%20w%2frd%2b1",
            "p%40ss+w%2Frd%2B1",
        ] {
            assert_eq!(
                registry.mask(&format!("?q={form}&x=1")),
                "?q=******&x=1",
                "{form}"
            );
        }
    }

    #[test]
    fn json_escaped_forms_are_masked() {
        let secret = "quote\" back\\slash é ✓";
        let registry = registry(&[secret]);
        let document = serde_json::json!({ "password": secret }).to_string();
        assert_eq!(registry.mask(&document), r#"{"password":"******"}"#);
        let ascii = r#"{"password":"quote\" back\\slash \u00e9 \u2713"}"#;
        assert_eq!(registry.mask(ascii), r#"{"password":"******"}"#);
        let upper = r#"{"password":"quote\" back\\slash \u00E9 \u2713"}"#;
        assert_eq!(registry.mask(upper), r#"{"password":"******"}"#);
    }

    #[test]
    fn derived_values_are_masked_with_their_forms() {
        let registry = registry(&[]);
        registry.register_derived("BEARER HUNTER22");
        assert_eq!(
            registry.mask("Authorization: BEARER HUNTER22"),
            "Authorization: ******"
        );
        let encoded = STANDARD.encode("BEARER HUNTER22");
        assert_eq!(registry.mask(&encoded), MASK);
    }

    #[test]
    fn short_values_are_not_masked_and_warned_about_once_by_key() {
        let registry = MaskRegistry::new(4);
        registry.register("PIN", "123");
        registry.register("PIN", "456");
        registry.register("OTHER", "ab");
        registry.register_derived("xy");
        registry.register_derived("zw");
        assert_eq!(registry.mask("123 456 ab"), "123 456 ab");
        assert_eq!(
            registry.take_warnings(),
            [
                "Secret 'PIN' is shorter than 4 characters and is not masked",
                "Secret 'OTHER' is shorter than 4 characters and is not masked",
                "Secret 'derived value' is shorter than 4 characters and is not masked",
            ]
        );
        assert!(registry.take_warnings().is_empty());
    }

    #[test]
    fn minimum_length_counts_characters_not_bytes() {
        let registry = MaskRegistry::new(4);
        registry.register("K", "ééé");
        assert_eq!(registry.mask("ééé"), "ééé");
        registry.register("K2", "éééé");
        assert_eq!(registry.mask("éééé"), MASK);
    }

    #[test]
    fn short_minimum_lengths_still_mask() {
        // Patterns below four bytes take the path without the prefix filter.
        let registry = MaskRegistry::new(2);
        registry.register("K", "ab");
        assert_eq!(registry.mask("xabx ab"), "x******x ******");
        assert!(registry.contains_secret("zzab"));
    }

    #[test]
    fn registering_after_masking_rebuilds_the_matcher() {
        let registry = registry(&["first-secret"]);
        assert_eq!(registry.mask("second-secret"), "second-secret");
        registry.register("B", "second-secret");
        assert_eq!(registry.mask("first-secret second-secret"), "****** ******");
    }

    #[test]
    fn contains_secret_sees_values_and_forms() {
        let registry = registry(&["password"]);
        assert!(registry.contains_secret("my password"));
        assert!(registry.contains_secret("cGFzc3dvcmQ="));
        assert!(!registry.contains_secret("nothing here"));
        assert!(!MaskRegistry::new(4).contains_secret("password"));
    }

    #[test]
    fn mask_json_masks_strings_and_keys_at_any_depth() {
        let registry = registry(&["password"]);
        let mut value = serde_json::json!({
            "password": ["x password y", {"deep": "password"}],
            "n": 1,
            "plain": "ok",
        });
        registry.mask_json(&mut value);
        assert_eq!(
            value,
            serde_json::json!({
                "******": ["x ****** y", {"deep": "******"}],
                "n": 1,
                "plain": "ok",
            })
        );
    }

    const BANK: &str = r#"{"iban":"DE44500105175407324931","pin":48213377,"rate":0.125}"#;

    #[test]
    fn leak_2_number_leaves_of_a_json_secret_are_registered() {
        let registry = registry(&[BANK]);
        assert!(registry.is_registered("48213377"));
        assert!(registry.is_registered("0.125"));
        assert_eq!(
            registry.mask("pin=48213377 rate=0.125"),
            "pin=****** rate=******"
        );
    }

    #[test]
    fn leak_2_mask_json_masks_a_number_whose_text_is_a_registered_value() {
        let registry = registry(&[BANK]);
        let mut outputs = serde_json::json!({
            "pin": 48213377,
            "as_float": 48213377.0,
            "nested": [{"rate": 0.125}],
            "count": 3,
        });
        registry.mask_json(&mut outputs);
        assert_eq!(
            outputs,
            serde_json::json!({
                "pin": MASK,
                "as_float": MASK,
                "nested": [{"rate": MASK}],
                "count": 3,
            })
        );
    }

    #[test]
    fn leak_2_a_numeric_secret_masks_the_equal_json_number_only() {
        let registry = registry(&["48213377"]);
        // serde_json prints this float as `48213377.0`.
        let float = serde_json::json!(48213377.0);
        assert_eq!(float.to_string(), "48213377.0");
        let mut value = serde_json::json!([48213377, float, 148213377, 4821337, -48213377]);
        registry.mask_json(&mut value);
        assert_eq!(
            value,
            serde_json::json!([MASK, MASK, 148213377, 4821337, -48213377])
        );
    }

    #[test]
    fn leak_2_a_derived_number_masks_the_equal_json_number() {
        let registry = registry(&[]);
        registry.register_derived("20240501");
        let mut value = serde_json::json!({"date": 20240501, "other": 20240502});
        registry.mask_json(&mut value);
        assert_eq!(value, serde_json::json!({"date": MASK, "other": 20240502}));
    }

    #[test]
    fn is_registered_matches_values_lines_leaves_and_derived_values_exactly() {
        let registry = registry(&[BANK, "first line\nsecond line"]);
        registry.register_derived("derived-1234");
        for registered in [
            "48213377",
            "DE44500105175407324931",
            "first line",
            "second line",
            "derived-1234",
        ] {
            assert!(registry.is_registered(registered), "{registered}");
        }
        // Substrings, encoded forms and values under the minimum length are not registered.
        let base64 = STANDARD.encode("48213377");
        for other in ["4821337", "482133770", base64.as_str(), "derived-1234 "] {
            assert!(!registry.is_registered(other), "{other}");
        }
        registry.register("SHORT", "123");
        assert!(!registry.is_registered("123"));
    }

    #[test]
    fn over_masking_key_names_of_a_json_secret_are_never_registered() {
        let registry = registry(&[r#"{"port":"s3cr3t-port-pw","nested":{"user":"admin-user"}}"#]);
        for key in ["port", "nested", "user"] {
            assert!(!registry.is_registered(key), "{key}");
        }
        assert_eq!(
            registry.mask("supported nested user: admin-user"),
            "supported nested user: ******"
        );
        let mut value = serde_json::json!({"port": 8080, "supported": true});
        registry.mask_json(&mut value);
        assert_eq!(value, serde_json::json!({"port": 8080, "supported": true}));
    }

    #[test]
    fn a_top_level_json_scalar_registers_its_printed_form() {
        let registry = registry(&["1.50e3", r#""quoted-secret""#]);
        assert!(registry.is_registered("1500.0"));
        assert!(registry.is_registered("quoted-secret"));
    }

    #[test]
    fn debug_shows_counts_not_values() {
        let registry = registry(&["hunter22"]);
        let debug = format!("{registry:?}");
        assert!(!debug.contains("hunter22"), "{debug}");
        assert!(debug.contains("patterns"), "{debug}");
    }

    #[test]
    fn bytes_are_masked_only_when_they_hold_a_value() {
        let registry = registry(&["hunter22"]);
        assert_eq!(registry.mask_bytes(b"nothing here"), None);
        assert_eq!(registry.mask_bytes(&[0xff, 0x00, 0x01]), None);
        assert_eq!(
            registry.mask_bytes(b"pw=hunter22\n").as_deref(),
            Some(&b"pw=******\n"[..])
        );
        let binary = [&[0xff, 0xfe][..], b"hunter22", &[0x00]].concat();
        let masked = registry.mask_bytes(&binary).expect("masked");
        assert!(!masked.windows(8).any(|w| w == b"hunter22"));
    }

    #[test]
    fn splice_withholds_text_on_a_range_off_character_boundaries() {
        assert_eq!(splice("éé", &[0..2, 3..4]), MASK);
        assert_eq!(splice("abcdef", &[1..3, 4..5]), "a******d******f");
    }

    #[test]
    fn registry_is_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MaskRegistry>();
        let registry = Arc::new(registry(&["hunter22"]));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let registry = Arc::clone(&registry);
                std::thread::spawn(move || {
                    registry.register(&format!("K{i}"), &format!("thread-secret-{i}"));
                    registry
                        .mask(&format!("hunter22 thread-secret-{i}"))
                        .into_owned()
                })
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), "****** ******");
        }
    }

    // Every form inside any text: `tests/encoded_forms.rs`.
    fn secret() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 !#$%&/:;=?@_~é€😀-]{8,40}"
    }

    proptest! {
        #[test]
        fn secret_inside_a_longer_base64_text_never_survives(
            secret in secret(),
            prefix in "[a-z]{0,20}",
            suffix in "[a-z]{0,20}",
        ) {
            let registry = registry(&[&secret]);
            let encoded = STANDARD.encode(format!("{prefix}{secret}{suffix}"));
            let masked = registry.mask(&encoded);
            let left = visible(&masked).len();
            prop_assert!(left <= 2 * (prefix.len() + suffix.len()) + 4, "{masked}");
        }
    }
}
