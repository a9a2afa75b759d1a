//! The environment-variable backend: `SECRET_*` variables holding base64 values (README, "A first flow"),
//! and the plain `envs` map (docs/expressions.md).

use crate::{BackendError, Reader, SecretBackend, SecretValue};
use async_trait::async_trait;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::{DecodeError, Engine};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use zeroize::Zeroizing;

/// Which plain variables `envs` exposes.
#[derive(Debug, Clone)]
pub struct EnvOptions {
    /// Prefix of the variables `envs` exposes (`ENV_`); empty exposes all but the redacted ones.
    pub env_prefix: String,
    /// Names never exposed in `envs` (besides `KESTREL_*` and `SECRET_*`).
    pub redacted: Vec<String>,
}

impl Default for EnvOptions {
    fn default() -> Self {
        Self {
            env_prefix: "ENV_".into(),
            redacted: vec![
                "VAULT_TOKEN".into(),
                "AWS_SECRET_ACCESS_KEY".into(),
                "AWS_SESSION_TOKEN".into(),
            ],
        }
    }
}

/// What loading the environment (and an optional env file) produced.
#[derive(Debug)]
pub struct EnvLoad {
    /// The `SECRET_*` values, decoded.
    pub backend: EnvBackend,
    /// The `envs` map: key lower-cased without the prefix, raw value.
    pub envs: BTreeMap<String, String>,
    /// Messages for stderr: undecodable values (by variable name), values ending in a newline,
    /// names the file overrides. Never a value.
    pub warnings: Vec<String>,
}

/// The `SECRET_*` variables of the process and of an env file, decoded once at load.
#[derive(Debug, Default)]
pub struct EnvBackend {
    secrets: HashMap<String, SecretValue>,
}

/// The prefix that makes a variable a secret (case-sensitive, as in Kestra).
const SECRET_PREFIX: &str = "SECRET_";

/// The prefix of kestrel's own settings, never exposed in `envs`.
const KESTREL_PREFIX: &str = "KESTREL_";

impl EnvBackend {
    /// Loads `process` variables and the env file's `file_text` (the file wins on a clash).
    /// `render` renders expression values of the file (pure filters only). Fails only on an
    /// env-file syntax error, whose message names the line.
    pub fn load(
        process: impl IntoIterator<Item = (String, String)>,
        file_text: Option<&str>,
        options: &EnvOptions,
        render: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<EnvLoad, crate::DotenvError> {
        // A reload over no secrets: there is no previous value to keep.
        EnvBackend::default().reload(process, file_text, options, render)
    }

    /// Loads again, as [`EnvBackend::load`] does, for a hot reload: a secret whose new value
    /// cannot be decoded (or rendered) keeps its value from `self`, and the warning says so.
    /// On an error the caller keeps `self` whole.
    pub fn reload(
        &self,
        process: impl IntoIterator<Item = (String, String)>,
        file_text: Option<&str>,
        options: &EnvOptions,
        render: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<EnvLoad, crate::DotenvError> {
        Loader {
            options,
            render,
            previous: self,
        }
        .load(process, file_text)
    }

    /// The decoded value for `key` (upper-cased before lookup).
    pub fn lookup(&self, key: &str) -> Option<SecretValue> {
        self.secrets.get(&key.to_uppercase()).cloned()
    }

    /// How many secrets were loaded.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether no secret was loaded.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

/// One load of the environment: its options and the previous secrets (none on a first load).
struct Loader<'a> {
    options: &'a EnvOptions,
    render: &'a dyn Fn(&str) -> Result<String, String>,
    previous: &'a EnvBackend,
}

/// A variable's value, or `None` when its env-file expression could not be rendered.
type Variables = BTreeMap<String, Option<Zeroizing<String>>>;

impl Loader<'_> {
    fn load(
        &self,
        process: impl IntoIterator<Item = (String, String)>,
        file_text: Option<&str>,
    ) -> Result<EnvLoad, crate::DotenvError> {
        let mut warnings = Vec::new();
        let mut variables = match file_text {
            Some(text) => self.file_variables(text, &mut warnings)?,
            None => Variables::new(),
        };
        let mut overridden = Vec::new();
        for (name, value) in process {
            match variables.entry(name) {
                Entry::Occupied(file) => overridden.push(file.key().clone()),
                Entry::Vacant(slot) => {
                    slot.insert(Some(Zeroizing::new(value)));
                }
            }
        }
        overridden.sort();
        let mut notes: Vec<String> = overridden
            .iter()
            .map(|name| {
                format!("'{name}' is set both in the env file and in the process environment; the env file's value is used.")
            })
            .collect();
        notes.append(&mut warnings);
        let mut load = EnvLoad {
            backend: EnvBackend::default(),
            envs: BTreeMap::new(),
            warnings: notes,
        };
        for (name, value) in &variables {
            if let Some(suffix) = name.strip_prefix(SECRET_PREFIX) {
                self.add_secret(name, suffix, value.as_deref(), &mut load);
            } else if let (Some(key), Some(value)) = (self.envs_key(name), value) {
                load.envs.insert(key, value.to_string());
            }
        }
        Ok(load)
    }

    /// The env file's variables, expression values rendered (the last entry of a name wins).
    fn file_variables(
        &self,
        text: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Variables, crate::DotenvError> {
        let mut variables = Variables::new();
        for entry in crate::parse_dotenv(text)? {
            let value = if entry.value.contains("{{") || entry.value.contains("{%") {
                self.render_value(&entry, warnings)
            } else {
                Some(entry.value)
            };
            variables.insert(entry.name, value);
        }
        Ok(variables)
    }

    fn render_value(
        &self,
        entry: &crate::DotenvEntry,
        warnings: &mut Vec<String>,
    ) -> Option<Zeroizing<String>> {
        match (self.render)(&entry.value) {
            Ok(rendered) => Some(Zeroizing::new(rendered)),
            Err(reason) => {
                // A secret's template holds the secret, and a rendering error may quote it.
                let detail = if entry.name.starts_with(SECRET_PREFIX) {
                    String::new()
                } else {
                    format!(": {reason}")
                };
                warnings.push(format!(
                    "Could not render the value of '{}' (env file line {}); it is skipped{detail}",
                    entry.name, entry.line
                ));
                None
            }
        }
    }

    /// Decodes one `SECRET_*` variable into `load`, or warns (and keeps a previous value).
    fn add_secret(&self, name: &str, suffix: &str, value: Option<&String>, load: &mut EnvLoad) {
        let key = suffix.to_uppercase();
        if key.is_empty() {
            return;
        }
        if load.backend.secrets.contains_key(&key) {
            load.warnings.push(format!(
                "'{name}' names the secret '{key}' that an earlier variable already holds; it is ignored."
            ));
            return;
        }
        let decoded = match value {
            Some(raw) => decode_secret_value(raw).map_err(|reason| {
                Some(format!(
                    "Could not decode secret '{name}', make sure it is Base64-encoded: {reason}"
                ))
            }),
            // The rendering failure was reported when the file was read.
            None => Err(None),
        };
        match decoded {
            Ok(secret) => {
                if secret.expose_secret().ends_with('\n') {
                    load.warnings.push(format!(
                        "Secret '{name}' ends with a newline (was it encoded with 'echo' without '-n'?); it is used as is."
                    ));
                }
                load.backend.secrets.insert(key, secret);
            }
            Err(warning) => {
                load.warnings.extend(warning);
                if let Some(previous) = self.previous.secrets.get(&key) {
                    load.backend.secrets.insert(key, previous.clone());
                    load.warnings
                        .push(format!("The previous value of '{name}' is kept."));
                }
            }
        }
    }

    /// The `envs` key of a plain variable, if `envs` exposes it.
    fn envs_key(&self, name: &str) -> Option<String> {
        if name.starts_with(KESTREL_PREFIX)
            || name.starts_with(SECRET_PREFIX)
            || self
                .options
                .redacted
                .iter()
                .any(|redacted| redacted == name)
        {
            return None;
        }
        let key = name.strip_prefix(self.options.env_prefix.as_str())?;
        (!key.is_empty()).then(|| key.to_lowercase())
    }
}

#[async_trait]
impl SecretBackend for EnvBackend {
    fn name(&self) -> &str {
        "environment"
    }

    async fn get(
        &self,
        _reader: &Reader,
        _tenant: &str,
        _namespace: &str,
        key: &str,
    ) -> Result<Option<SecretValue>, BackendError> {
        Ok(self.lookup(key))
    }

    async fn list(&self, _tenant: &str, _namespace: &str) -> Result<Vec<String>, BackendError> {
        let mut keys: Vec<String> = self.secrets.keys().cloned().collect();
        keys.sort();
        Ok(keys)
    }
}

/// The engine for `SECRET_*` values: the standard alphabet, padding optional. Non-zero
/// trailing bits are refused: no encoder writes them, so they mean a damaged value.
const DECODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes one `SECRET_*` value: line breaks removed, standard base64 with optional padding,
/// UTF-8. The error is the reason only, never the value.
pub fn decode_secret_value(raw: &str) -> Result<SecretValue, String> {
    let mut joined = Zeroizing::new(String::with_capacity(raw.len()));
    joined.extend(raw.chars().filter(|&c| c != '\n' && c != '\r'));
    let bytes = Zeroizing::new(DECODER.decode(joined.as_bytes()).map_err(|e| reason(&e))?);
    let text = std::str::from_utf8(&bytes).map_err(|_| "not valid UTF-8".to_owned())?;
    Ok(SecretValue::new(text.to_owned()))
}

/// The base64 crate's messages quote the offending byte: these give its offset only.
fn reason(error: &DecodeError) -> String {
    match error {
        DecodeError::InvalidByte(offset, b'=') => format!("invalid padding at offset {offset}"),
        DecodeError::InvalidByte(offset, _) => format!("invalid character at offset {offset}"),
        DecodeError::InvalidLength(_) => "invalid length".to_owned(),
        DecodeError::InvalidLastSymbol(offset, _) => {
            format!("invalid last character at offset {offset}")
        }
        DecodeError::InvalidPadding => "invalid padding".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::block_on;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    fn decoded(raw: &str) -> String {
        decode_secret_value(raw).unwrap().expose_secret().to_owned()
    }

    #[test]
    fn decodes_with_or_without_padding() {
        assert_eq!(decoded("cGFzc3dvcmQ="), "password");
        assert_eq!(decoded("cGFzc3dvcmQ"), "password");
        assert_eq!(decoded("bXlwYXQ="), "mypat");
        assert_eq!(decoded(""), "");
    }

    #[test]
    fn line_breaks_are_removed_before_decoding() {
        let value = "x".repeat(200);
        let wrapped: Vec<String> = STANDARD
            .encode(&value)
            .as_bytes()
            .chunks(76)
            .map(|line| String::from_utf8(line.to_vec()).unwrap())
            .collect();
        assert_eq!(decoded(&wrapped.join("\r\n")), value);
        assert_eq!(decoded(&wrapped.join("\n")), value);
        assert_eq!(decoded(&format!("{}\r", wrapped.join("\r"))), value);
    }

    #[test]
    fn a_trailing_newline_is_kept() {
        // `echo password | base64`
        assert_eq!(decoded("cGFzc3dvcmQK"), "password\n");
    }

    #[test]
    fn large_and_unicode_values() {
        let large = "é".repeat(32 * 1024);
        assert_eq!(decoded(&STANDARD.encode(&large)), large);
        let unicode = "pässwörd 🔑 \u{0}";
        assert_eq!(decoded(&STANDARD.encode(unicode)), unicode);
    }

    #[test]
    fn undecodable_values_give_a_reason_without_the_value() {
        // The base64 crate's own messages quote the byte ("Invalid symbol 45, offset 4.").
        let cases = [
            ("cGFz c3dv", "invalid character at offset 4"),
            ("cGFz\tc3dv", "invalid character at offset 4"),
            ("cGFz-3dv", "invalid character at offset 4"),
            ("cGFz_3dv", "invalid character at offset 4"),
            ("cGFzc3dvcmQ===", "invalid padding at offset 11"),
            ("cG=zc3dv", "invalid padding at offset 2"),
            ("cGFzc", "invalid length"),
            ("cGFzc3dvcmR=", "invalid last character at offset 10"),
            ("//5B", "not valid UTF-8"),
            ("some secret value", "invalid character at offset 4"),
        ];
        for (raw, expected) in cases {
            assert_eq!(decode_secret_value(raw).unwrap_err(), expected, "{raw:?}");
        }
    }

    fn no_render(_: &str) -> Result<String, String> {
        Err("no expressions here".into())
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load(pairs: &[(&str, &str)], file: Option<&str>) -> EnvLoad {
        EnvBackend::load(vars(pairs), file, &EnvOptions::default(), &no_render).unwrap()
    }

    fn value(load: &EnvLoad, key: &str) -> Option<String> {
        load.backend
            .lookup(key)
            .map(|v| v.expose_secret().to_owned())
    }

    #[test]
    fn only_exact_secret_prefix_names_are_secrets() {
        let load = load(
            &[
                ("SECRET_MY_SECRET", "cGFzc3dvcmQ="),
                ("secret_lower", "cGFzc3dvcmQ="),
                ("Secret_Mixed", "cGFzc3dvcmQ="),
                ("MYPASSWORD", "cGFzc3dvcmQ="),
            ],
            None,
        );
        assert_eq!(value(&load, "my_secret").as_deref(), Some("password"));
        assert_eq!(value(&load, "MY_SECRET").as_deref(), Some("password"));
        assert_eq!(value(&load, "LOWER"), None);
        assert_eq!(value(&load, "MIXED"), None);
        assert_eq!(value(&load, "MYPASSWORD"), None);
        assert_eq!(load.backend.len(), 1);
        assert!(load.warnings.is_empty(), "{:?}", load.warnings);
    }

    #[test]
    fn the_key_is_the_rest_of_the_name_upper_cased() {
        let load = load(&[("SECRET_my_Key", "cGFzc3dvcmQ=")], None);
        assert_eq!(value(&load, "MY_KEY").as_deref(), Some("password"));
        let keys = block_on(load.backend.list("main", "any")).unwrap();
        assert_eq!(keys, ["MY_KEY"]);
    }

    #[test]
    fn undecodable_values_are_skipped_and_named_without_their_value() {
        let load = load(
            &[
                ("SECRET_BAD", "some secret value"),
                ("SECRET_GOOD", "bXlwYXQ="),
            ],
            None,
        );
        assert_eq!(value(&load, "BAD"), None);
        assert_eq!(value(&load, "GOOD").as_deref(), Some("mypat"));
        assert_eq!(
            load.warnings,
            [
                "Could not decode secret 'SECRET_BAD', make sure it is Base64-encoded: invalid character at offset 4"
            ]
        );
    }

    #[test]
    fn a_value_ending_in_a_newline_is_kept_with_a_warning() {
        let load = load(&[("SECRET_X", "cGFzc3dvcmQK")], None);
        assert_eq!(value(&load, "X").as_deref(), Some("password\n"));
        assert_eq!(load.warnings.len(), 1);
        assert!(load.warnings[0].contains("'SECRET_X' ends with a newline"));
        assert!(!load.warnings[0].contains("password"));
    }

    #[test]
    fn the_env_file_wins_with_a_note_naming_the_variable() {
        let load = load(
            &[("SECRET_A", "b2xk"), ("ENV_X", "process")],
            Some("SECRET_A=bmV3\nENV_X=file\n"),
        );
        assert_eq!(value(&load, "A").as_deref(), Some("new"));
        assert_eq!(load.envs["x"], "file");
        assert_eq!(
            load.warnings,
            [
                "'ENV_X' is set both in the env file and in the process environment; the env file's value is used.",
                "'SECRET_A' is set both in the env file and in the process environment; the env file's value is used.",
            ]
        );
    }

    #[test]
    fn env_file_syntax_errors_fail_the_load() {
        let options = EnvOptions::default();
        let error = EnvBackend::load(vars(&[]), Some("A=1\nB"), &options, &no_render).unwrap_err();
        assert_eq!(error.line, 2);
    }

    #[test]
    fn env_file_expressions_are_rendered_before_decoding() {
        let render = |template: &str| -> Result<String, String> {
            match template {
                r#"{{ "password" | base64encode }}"# => Ok("cGFzc3dvcmQ=".into()),
                "{% if true %}on{% endif %}" => Ok("on".into()),
                _ => Err(format!("cannot render {template}")),
            }
        };
        let file = "SECRET_MYPASSWORD={{ \"password\" | base64encode }}\nENV_FLAG={% if true %}on{% endif %}\n";
        let load =
            EnvBackend::load(vars(&[]), Some(file), &EnvOptions::default(), &render).unwrap();
        assert_eq!(value(&load, "MYPASSWORD").as_deref(), Some("password"));
        assert_eq!(load.envs["flag"], "on");
        assert!(load.warnings.is_empty(), "{:?}", load.warnings);
    }

    #[test]
    fn a_render_error_skips_the_value_and_names_the_variable() {
        let render = |template: &str| -> Result<String, String> { Err(format!("bad {template}")) };
        let file = "SECRET_X={{ 'hunter2' | nope }}\nENV_Y={{ oops }}\n";
        let load = EnvBackend::load(
            vars(&[("SECRET_X", "cGFzc3dvcmQ=")]),
            Some(file),
            &EnvOptions::default(),
            &render,
        )
        .unwrap();
        assert_eq!(value(&load, "X"), None);
        assert!(!load.envs.contains_key("y"));
        let warnings = load.warnings.join("\n");
        assert!(
            warnings.contains("'SECRET_X' (env file line 1)"),
            "{warnings}"
        );
        assert!(
            warnings.contains("'ENV_Y' (env file line 2); it is skipped: bad {{ oops }}"),
            "{warnings}"
        );
        assert!(!warnings.contains("hunter2"), "{warnings}");
    }

    #[test]
    fn envs_takes_the_prefix_off_and_lower_cases() {
        let load = load(
            &[
                ("ENV_MY_VAR", "hello"),
                ("ENV_", "empty key"),
                ("OTHER", "x"),
                ("env_lower", "y"),
            ],
            None,
        );
        assert_eq!(load.envs.len(), 1);
        assert_eq!(load.envs["my_var"], "hello");
    }

    #[test]
    fn envs_never_holds_kestrel_secret_or_redacted_names() {
        let options = EnvOptions {
            env_prefix: String::new(),
            ..EnvOptions::default()
        };
        let process = vars(&[
            ("HOME", "/home/me"),
            ("KESTREL_MASTER_KEY", "k"),
            ("SECRET_X", "cGFzc3dvcmQ="),
            ("VAULT_TOKEN", "t"),
            ("AWS_SECRET_ACCESS_KEY", "a"),
            ("AWS_SESSION_TOKEN", "s"),
        ]);
        let load = EnvBackend::load(process, None, &options, &no_render).unwrap();
        assert_eq!(load.envs.keys().collect::<Vec<_>>(), ["home"]);
        let options = EnvOptions {
            env_prefix: "APP_".into(),
            redacted: vec!["APP_TOKEN".into()],
        };
        let process = vars(&[("APP_NAME", "n"), ("APP_TOKEN", "t"), ("ENV_X", "x")]);
        let load = EnvBackend::load(process, None, &options, &no_render).unwrap();
        assert_eq!(load.envs.keys().collect::<Vec<_>>(), ["name"]);
    }

    #[test]
    fn two_names_for_one_key_keep_the_first_and_say_so() {
        let load = load(&[("SECRET_a", "YQ=="), ("SECRET_A", "QQ==")], None);
        assert_eq!(value(&load, "A").as_deref(), Some("A"));
        assert_eq!(load.warnings.len(), 1);
        assert!(load.warnings[0].starts_with("'SECRET_a' names the secret 'A'"));
    }

    #[test]
    fn reload_keeps_the_previous_value_of_an_undecodable_secret() {
        let first = load(&[("SECRET_A", "b2xk"), ("SECRET_B", "Ynk=")], None);
        let options = EnvOptions::default();
        let process = vars(&[("SECRET_A", "not base64!")]);
        let second = first
            .backend
            .reload(process, None, &options, &no_render)
            .unwrap();
        assert_eq!(value(&second, "A").as_deref(), Some("old"));
        assert_eq!(value(&second, "B"), None, "a removed variable is gone");
        assert_eq!(second.warnings.len(), 2);
        assert_eq!(
            second.warnings[1],
            "The previous value of 'SECRET_A' is kept."
        );
    }

    #[test]
    fn the_backend_answers_for_every_namespace() {
        let load = load(&[("SECRET_K", "dmFsdWU=")], None);
        let backend: &dyn SecretBackend = &load.backend;
        assert_eq!(backend.name(), "environment");
        let found = block_on(backend.get(&crate::Reader::Operator("t".into()), "main", "a.b", "k"))
            .unwrap();
        assert_eq!(found.unwrap().expose_secret(), "value");
        assert!(
            block_on(backend.get(&crate::Reader::Operator("t".into()), "main", "a", "missing"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn debug_of_a_load_shows_no_value() {
        let load = load(&[("SECRET_K", "aHVudGVyMg==")], None);
        let debug = format!("{load:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("aHVudGVyMg"),
            "{debug}"
        );
    }

    proptest! {
        #[test]
        fn decoding_never_panics(raw in any::<String>()) {
            let _ = decode_secret_value(&raw);
        }

        #[test]
        fn decoding_inverts_encoding(value in any::<String>()) {
            let encoded = STANDARD.encode(&value);
            prop_assert_eq!(decoded(&encoded), value);
        }
    }
}
