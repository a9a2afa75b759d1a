//! The deployment files hold together, checked without a container engine: docker-compose.yml
//! is valid Compose (the Compose Specification's JSON schema, tests/fixtures/compose-spec.json,
//! through python3 with jsonschema and PyYAML), names only files that exist, sets only
//! variables kestrel reads, keeps the master key in a file and the cluster behind TLS; the
//! Dockerfile builds with the README's install command and runs commands this kestrel has; the
//! configurations under deploy/ load; deploy/kestrel.service passes `systemd-analyze verify`
//! and leaves the task sandbox what it needs.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use serde_yaml_ng::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use util::Sandbox;

/// What the test script must install when python3 lacks the modules the schema check uses.
const PIP_INSTALL: &str = "python3 -m pip install jsonschema pyyaml";

/// The README's install command, which the image builds with.
const INSTALL_COMMAND: &str = "cargo install --path crates/kestrel --locked";

/// Files docker-compose.yml names that each user creates (docs/deployment.md says how): they
/// hold secrets, so they are neither in the repository nor in the image.
const CREATED_BY_THE_USER: [&str; 2] = [".env_encoded", "master.key"];

/// The example of `.env_encoded` the repository ships.
const ENV_ENCODED_EXAMPLE: &str = "deploy/.env_encoded.example";

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repository().join(path))
        .unwrap_or_else(|error| panic!("cannot read {path} in the repository: {error}"))
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

/// docker-compose.yml as Compose reads it: anchors expanded and `<<` merges applied.
fn compose() -> Value {
    let mut document: Value = serde_yaml_ng::from_str(&read("docker-compose.yml"))
        .unwrap_or_else(|error| panic!("docker-compose.yml is not YAML: {error}"));
    // A merged mapping may bring a `<<` of its own: merge until none is left.
    for _ in 0..8 {
        document.apply_merge().unwrap();
    }
    assert!(
        !serde_yaml_ng::to_string(&document).unwrap().contains("<<"),
        "docker-compose.yml nests merges deeper than this test follows"
    );
    document
}

/// One service of docker-compose.yml.
struct Service<'a> {
    name: String,
    spec: &'a Value,
}

impl Service<'_> {
    fn text(&self, key: &str) -> Option<&str> {
        self.spec.get(key).and_then(Value::as_str)
    }

    fn profiles(&self) -> Vec<String> {
        strings(self.spec.get("profiles"))
    }

    fn in_profile(&self, profile: &str) -> bool {
        self.profiles().iter().any(|p| p == profile)
    }

    /// Built from the repository's Dockerfile: a kestrel service.
    fn is_kestrel(&self) -> bool {
        self.spec.get("build").is_some()
    }

    /// The command, or the image's (the Dockerfile's CMD) for a kestrel service without one.
    fn command(&self) -> Vec<String> {
        match self.spec.get("command") {
            Some(Value::String(line)) => line.split_whitespace().map(str::to_owned).collect(),
            Some(list) => strings(Some(list)),
            None if self.is_kestrel() => dockerfile_cmd(),
            None => Vec::new(),
        }
    }

    /// `environment`, as a map or as `NAME=value` items.
    fn environment(&self) -> BTreeMap<String, String> {
        match self.spec.get("environment") {
            Some(Value::Mapping(map)) => map
                .iter()
                .map(|(name, value)| (scalar(name), scalar(value)))
                .collect(),
            Some(list) => strings(Some(list))
                .into_iter()
                .map(|item| match item.split_once('=') {
                    Some((name, value)) => (name.to_owned(), value.to_owned()),
                    None => (item, String::new()),
                })
                .collect(),
            None => BTreeMap::new(),
        }
    }

    /// The networks it joins (`default` when none is named).
    fn networks(&self) -> Vec<String> {
        match self.spec.get("networks") {
            None => vec!["default".to_owned()],
            Some(Value::Mapping(map)) => map.keys().map(scalar).collect(),
            Some(list) => strings(Some(list)),
        }
    }

    /// Each published port as (host IP, published port, container port).
    fn published(&self) -> Vec<(String, String, String)> {
        let Some(Value::Sequence(ports)) = self.spec.get("ports") else {
            return Vec::new();
        };
        ports
            .iter()
            .map(|port| match port {
                Value::Mapping(_) => (
                    port.get("host_ip").map(scalar).unwrap_or_default(),
                    port.get("published").map(scalar).unwrap_or_default(),
                    port.get("target").map(scalar).unwrap_or_default(),
                ),
                short => {
                    let short = scalar(short);
                    let parts: Vec<&str> = short.split(':').collect();
                    match parts.as_slice() {
                        [ip, host, container] => (
                            (*ip).to_owned(),
                            (*host).to_owned(),
                            (*container).to_owned(),
                        ),
                        [host, container] => {
                            (String::new(), (*host).to_owned(), (*container).to_owned())
                        }
                        _ => (String::new(), String::new(), short.clone()),
                    }
                }
            })
            .collect()
    }

    /// The repository files it mounts: (repository path, container path), from `configs`,
    /// `secrets` and bind `volumes`.
    fn mounted_files(&self, compose: &Value) -> Vec<(String, String)> {
        let mut mounted = Vec::new();
        for (kind, default_dir) in [("configs", "/"), ("secrets", "/run/secrets/")] {
            for reference in sequence(self.spec.get(kind)) {
                let (source, target) = match reference {
                    Value::String(name) => (name.clone(), None),
                    _ => (
                        reference.get("source").map(scalar).unwrap_or_default(),
                        reference.get("target").map(scalar),
                    ),
                };
                let target = match target {
                    Some(target) if target.starts_with('/') => target,
                    Some(target) => format!("{default_dir}{target}"),
                    None => format!("{default_dir}{source}"),
                };
                if let Some(file) = compose
                    .get(kind)
                    .and_then(|all| all.get(source.as_str()))
                    .and_then(|top| top.get("file"))
                {
                    mounted.push((relative(&scalar(file)), target));
                }
            }
        }
        for volume in sequence(self.spec.get("volumes")) {
            let (source, target) = match volume {
                Value::String(short) => {
                    let mut parts = short.split(':');
                    (
                        parts.next().unwrap_or_default().to_owned(),
                        parts.next().unwrap_or_default().to_owned(),
                    )
                }
                _ => (
                    volume.get("source").map(scalar).unwrap_or_default(),
                    volume.get("target").map(scalar).unwrap_or_default(),
                ),
            };
            if source.starts_with('.') || source.starts_with('/') {
                mounted.push((relative(&source), target));
            }
        }
        mounted
    }

    /// The repository file mounted at `target` in the container, if any.
    fn file_at(&self, compose: &Value, target: &str) -> Option<String> {
        self.mounted_files(compose)
            .into_iter()
            .find(|(_, at)| at == target)
            .map(|(file, _)| file)
    }
}

fn services(compose: &Value) -> Vec<Service<'_>> {
    let services = compose
        .get("services")
        .and_then(Value::as_mapping)
        .expect("docker-compose.yml has services");
    services
        .iter()
        .map(|(name, spec)| Service {
            name: scalar(name),
            spec,
        })
        .collect()
}

fn service<'a>(compose: &'a Value, name: &str) -> Service<'a> {
    services(compose)
        .into_iter()
        .find(|service| service.name == name)
        .unwrap_or_else(|| panic!("docker-compose.yml has no service {name}"))
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Null => String::new(),
        other => serde_yaml_ng::to_string(other).unwrap(),
    }
}

fn sequence(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(single) => vec![single],
        None => Vec::new(),
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    sequence(value).into_iter().map(scalar).collect()
}

/// A path relative to docker-compose.yml, as a repository path (`./deploy/x` -> `deploy/x`).
fn relative(path: &str) -> String {
    let path = path.strip_prefix("./").unwrap_or(path);
    if path.is_empty() {
        ".".into()
    } else {
        path.into()
    }
}

/// `${NAME}`, `${NAME:-default}`, `${NAME:?error}`... : the variables a text interpolates.
fn interpolated(text: &str) -> BTreeSet<String> {
    text.split("${")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// The host of a URL (`postgres://u:p@host:5432/db` -> `host`).
fn url_host(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port.split(':').next().unwrap_or_default().to_owned()
}

const SCHEMA_CHECK: &str = r#"
import json, sys
try:
    import jsonschema, yaml
except ImportError as error:
    print(error.name, file=sys.stderr)
    sys.exit(3)
with open(sys.argv[1]) as file:
    schema = json.load(file)
with open(sys.argv[2]) as file:
    document = yaml.safe_load(file)
errors = jsonschema.Draft7Validator(schema).iter_errors(document)
failed = False
for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
    failed = True
    print("/".join(str(p) for p in error.absolute_path) or "(top level)", ":", error.message)
sys.exit(1 if failed else 0)
"#;

#[test]
fn docker_compose_yml_is_valid_compose() {
    let schema = repository().join("crates/kestrel/tests/fixtures/compose-spec.json");
    let compose = repository().join("docker-compose.yml");
    let checked = Command::new("python3")
        .arg("-c")
        .arg(SCHEMA_CHECK)
        .arg(&schema)
        .arg(&compose)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "python3 validates docker-compose.yml against the Compose schema, and it does \
                 not run ({error}): install python3, then `{PIP_INSTALL}`"
            )
        });
    let stdout = String::from_utf8_lossy(&checked.stdout);
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(
        checked.status.code() != Some(3),
        "python3 lacks the module {}: run `{PIP_INSTALL}`",
        stderr.trim()
    );
    assert!(
        checked.status.success(),
        "docker-compose.yml does not follow the Compose specification \
         (crates/kestrel/tests/fixtures/compose-spec.json):\n{stdout}{stderr}"
    );
}

#[test]
fn every_image_pulled_from_a_registry_names_its_version() {
    let compose = compose();
    for service in services(&compose) {
        let Some(image) = service.text("image").filter(|_| !service.is_kestrel()) else {
            continue;
        };
        let tag = image.rsplit_once(':').map(|(_, tag)| tag);
        assert!(
            tag.is_some_and(|tag| tag != "latest" && tag.starts_with(|c: char| c.is_ascii_digit())),
            "service {} pulls {image}, whose contents change under the same name: name a version",
            service.name
        );
    }
}

#[test]
fn every_file_docker_compose_yml_names_exists() {
    let compose = compose();
    let in_context = |context: &str, file: &str| match context {
        "." => file.to_owned(),
        _ => format!("{context}/{file}"),
    };
    let mut named: BTreeSet<String> = BTreeSet::new();
    for service in services(&compose) {
        match service.spec.get("build") {
            Some(Value::String(context)) => {
                named.insert(relative(context));
                named.insert(in_context(&relative(context), "Dockerfile"));
            }
            Some(build) => {
                let context = relative(&build.get("context").map(scalar).unwrap_or_default());
                let dockerfile = build
                    .get("dockerfile")
                    .map_or_else(|| "Dockerfile".to_owned(), scalar);
                named.insert(in_context(&context, &dockerfile));
                named.insert(context);
            }
            None => {}
        }
        for env_file in sequence(service.spec.get("env_file")) {
            let path = env_file.get("path").unwrap_or(env_file);
            named.insert(relative(&scalar(path)));
        }
        named.extend(service.mounted_files(&compose).into_iter().map(|(f, _)| f));
    }
    for kind in ["secrets", "configs"] {
        for (_, top) in compose
            .get(kind)
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
        {
            named.extend(top.get("file").map(|file| relative(&scalar(file))));
        }
    }
    let missing: Vec<&String> = named
        .iter()
        .filter(|path| !CREATED_BY_THE_USER.contains(&path.as_str()))
        .filter(|path| !repository().join(path).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "docker-compose.yml names files the repository lacks: {missing:?}"
    );
    for path in CREATED_BY_THE_USER {
        assert!(
            named.contains(path),
            "{path} is listed as created by the user, but docker-compose.yml does not name it"
        );
    }
    // The scan saw the build, the configurations and the proxy's file.
    for path in [
        "Dockerfile",
        "deploy/kestrel-cluster.yml",
        "deploy/Caddyfile",
    ] {
        assert!(named.contains(path), "{path} not found among {named:?}");
    }
}

#[test]
fn the_files_you_create_are_documented_and_kept_out_of_the_image() {
    let guide = read("docs/deployment.md");
    let ignored = read(".dockerignore");
    for path in CREATED_BY_THE_USER {
        assert!(
            guide.contains(path),
            "docs/deployment.md does not say how to create {path}"
        );
        assert!(
            ignored.lines().any(|line| line.trim() == path),
            "{path} holds secrets, and .dockerignore does not keep it out of the image"
        );
    }
    assert!(
        guide.contains(ENV_ENCODED_EXAMPLE),
        "docs/deployment.md does not point at {ENV_ENCODED_EXAMPLE}"
    );
    // The example is what compose's env_file reads: SECRET_<KEY>=<base64> lines.
    use base64::Engine as _;
    let example = read(ENV_ENCODED_EXAMPLE);
    let mut keys = 0;
    for line in example.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{ENV_ENCODED_EXAMPLE}: not NAME=value: {line}"));
        assert!(
            name.starts_with("SECRET_"),
            "{ENV_ENCODED_EXAMPLE}: {name} is not a SECRET_ variable"
        );
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .unwrap_or_else(|error| panic!("{ENV_ENCODED_EXAMPLE}: {name} is not base64: {error}"));
        keys += 1;
    }
    assert!(keys > 0, "{ENV_ENCODED_EXAMPLE} holds no secret");
}

/// Every environment variable name kestrel reads, from its sources: the `"KESTREL_..."`
/// literals (clap's `env =`, the master key's variables) and the names read from the process
/// environment (`env.text("VAULT_TOKEN")`...).
fn variables_kestrel_reads() -> BTreeSet<String> {
    fn walk(dir: &Path, sources: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, sources);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let source = std::fs::read_to_string(&path).unwrap();
                // Unit tests set variables of their own.
                let code = source.split("\n#[cfg(test)]").next().unwrap_or_default();
                sources.push(code.to_owned());
            }
        }
    }
    /// The names written as a string literal right after each occurrence of `before`.
    fn names_after(source: &str, before: &str) -> Vec<String> {
        source
            .match_indices(before)
            // `env!("KESTREL_...")` is read when kestrel is built, not when it runs.
            .filter(|(at, _)| !source[..*at].ends_with("env!("))
            .filter_map(|(at, _)| {
                let rest = &source[at + before.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                rest[name.len()..]
                    .starts_with('"')
                    .then_some(name)
                    .filter(|name| !name.is_empty())
            })
            .collect()
    }
    let mut sources = Vec::new();
    walk(&repository().join("crates/kestrel/src"), &mut sources);
    let mut names = BTreeSet::new();
    for source in &sources {
        names.extend(
            names_after(source, "\"KESTREL_")
                .into_iter()
                .map(|rest| format!("KESTREL_{rest}")),
        );
        for read in [".text(\"", ".os(\"", ".non_empty_os(\"", ".is_set(\""] {
            names.extend(names_after(source, read));
        }
    }
    for expected in [
        "KESTREL_CONFIG",
        "KESTREL_DATA_DIR",
        "KESTREL_DATABASE",
        "KESTREL_MASTER_KEY_FILE",
        "VAULT_TOKEN",
    ] {
        assert!(
            names.contains(expected),
            "the scan of crates/kestrel/src missed {expected}: it found {names:?}"
        );
    }
    names
}

#[test]
fn kestrel_services_set_only_variables_kestrel_reads() {
    let compose = compose();
    let known = variables_kestrel_reads();
    let mut checked = 0;
    for service in services(&compose).iter().filter(|s| s.is_kestrel()) {
        let environment = service.environment();
        // A configuration file may name more: `${NAME}` is read when it loads.
        let mut readable = known.clone();
        if let Some(target) = environment.get("KESTREL_CONFIG") {
            let file = service.file_at(&compose, target).unwrap_or_else(|| {
                panic!(
                    "service {}: KESTREL_CONFIG names {target}, which no repository file is \
                     mounted at",
                    service.name
                )
            });
            readable.extend(interpolated(&read(&file)));
        }
        for name in environment.keys() {
            assert!(
                readable.contains(name),
                "service {} sets {name}, which kestrel never reads (a typo?); kestrel reads \
                 {readable:?}",
                service.name
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no kestrel service sets a variable");
}

#[test]
fn the_master_key_is_a_mounted_file_never_an_environment_value() {
    let compose = compose();
    let kestrel_services: Vec<Service<'_>> = services(&compose)
        .into_iter()
        .filter(Service::is_kestrel)
        .collect();
    assert!(kestrel_services.len() >= 6, "too few kestrel services");
    for service in &kestrel_services {
        let name = &service.name;
        let environment = service.environment();
        assert!(
            !environment.contains_key("KESTREL_MASTER_KEY"),
            "service {name} puts the master key in its environment: mount it as a file and set \
             KESTREL_MASTER_KEY_FILE"
        );
        for variable in environment.keys() {
            assert!(
                !variable.starts_with("SECRET_"),
                "service {name} writes the secret {variable} in docker-compose.yml: secrets \
                 belong in .env_encoded"
            );
        }
        let key_file = environment.get("KESTREL_MASTER_KEY_FILE").unwrap_or_else(|| {
            panic!("service {name} does not set KESTREL_MASTER_KEY_FILE: it would make a key of its own")
        });
        let mounted = service.file_at(&compose, key_file).unwrap_or_else(|| {
            panic!(
                "service {name}: KESTREL_MASTER_KEY_FILE is {key_file}, where nothing is mounted"
            )
        });
        assert_eq!(
            mounted, "master.key",
            "service {name} mounts {mounted} as its master key"
        );
        assert!(
            sequence(service.spec.get("env_file"))
                .iter()
                .any(|file| scalar(file.get("path").unwrap_or(file)) == ".env_encoded"),
            "service {name} does not read .env_encoded, as Kestra's Secret concept page does"
        );
        assert_eq!(
            service.text("image"),
            Some("kestrel:local"),
            "service {name} is built from the Dockerfile under another image name"
        );
    }
}

/// The kestrel services of `among` that run `command`.
fn running<'s, 'c>(among: &'s [Service<'c>], command: &[&str]) -> Vec<&'s Service<'c>> {
    among
        .iter()
        .filter(|s| s.is_kestrel() && s.command() == command)
        .collect()
}

#[test]
fn the_profiles_run_the_services_the_guide_describes() {
    let compose = compose();
    let default = service(&compose, "kestrel");
    assert!(default.is_kestrel() && default.profiles().is_empty());
    assert!(
        default.spec.get("volumes").is_some(),
        "the default service keeps its data in no volume"
    );

    let cluster: Vec<Service<'_>> = services(&compose)
        .into_iter()
        .filter(|s| s.in_profile("cluster"))
        .collect();
    let servers = running(
        &cluster,
        &["kestrel", "server", "--bind", "0.0.0.0:8080", "--no-worker"],
    );
    let workers = running(&cluster, &["kestrel", "worker"]);
    assert_eq!(servers.len(), 2, "the cluster has not two API servers");
    assert_eq!(workers.len(), 2, "the cluster has not two workers");
    let postgres = cluster
        .iter()
        .find(|s| s.text("image") == Some("postgres:16"))
        .expect("the cluster runs postgres:16");
    let database = postgres.environment();
    for node in servers.iter().chain(&workers) {
        let url = node
            .environment()
            .get("KESTREL_DATABASE")
            .cloned()
            .unwrap_or_else(|| panic!("{} sets no KESTREL_DATABASE", node.name));
        assert!(url.starts_with("postgres://"), "{}: {url}", node.name);
        assert_eq!(
            url_host(&url),
            postgres.name,
            "{} does not use the cluster's PostgreSQL",
            node.name
        );
        let (credentials, rest) = url["postgres://".len()..].split_once('@').unwrap();
        let (user, password) = credentials.split_once(':').unwrap();
        assert_eq!(
            Some(user),
            database.get("POSTGRES_USER").map(String::as_str)
        );
        assert_eq!(
            Some(password),
            database.get("POSTGRES_PASSWORD").map(String::as_str),
            "{} and PostgreSQL do not take the password from the same place",
            node.name
        );
        let name = rest.split(['/']).nth(1).unwrap().split('?').next().unwrap();
        assert_eq!(Some(name), database.get("POSTGRES_DB").map(String::as_str));
    }

    let openbao: Vec<Service<'_>> = services(&compose)
        .into_iter()
        .filter(|s| s.in_profile("openbao"))
        .collect();
    let bao = openbao
        .iter()
        .find(|s| {
            s.text("image")
                .is_some_and(|i| i.starts_with("openbao/openbao"))
        })
        .expect("the openbao profile runs the openbao/openbao image");
    let client = openbao
        .iter()
        .find(|s| s.is_kestrel())
        .expect("the openbao profile runs a kestrel");
    let target = client.environment()["KESTREL_CONFIG"].clone();
    let config: Value = serde_yaml_ng::from_str(&read(
        &client
            .file_at(&compose, &target)
            .expect("its configuration"),
    ))
    .unwrap();
    assert_eq!(config["secret"]["type"].as_str(), Some("vault"));
    let address = config["secret"]["vault"]["address"].as_str().unwrap();
    assert_eq!(
        url_host(address),
        bao.name,
        "{}'s configuration does not point at OpenBao",
        client.name
    );
    assert_eq!(
        client.environment().get("VAULT_TOKEN"),
        bao.environment().get("BAO_DEV_ROOT_TOKEN_ID"),
        "{} does not use OpenBao's root token",
        client.name
    );
}

#[test]
fn plain_http_is_published_on_the_loopback_only_and_the_cluster_through_tls() {
    let compose = compose();
    let internal = |network: &str| {
        compose
            .get("networks")
            .and_then(|n| n.get(network))
            .and_then(|n| n.get("internal"))
            .and_then(Value::as_bool)
            == Some(true)
    };
    let mut proxy = None;
    for service in services(&compose) {
        let published = service.published();
        if service.in_profile("cluster") {
            if !published.is_empty() {
                assert!(
                    proxy.is_none(),
                    "{} publishes a port besides the TLS proxy",
                    service.name
                );
                proxy = Some(service);
            }
        } else {
            for (ip, host, _) in published {
                assert_eq!(
                    ip, "127.0.0.1",
                    "{} publishes plain HTTP on port {host} beyond this machine",
                    service.name
                );
            }
        }
    }
    let proxy = proxy.expect("the cluster publishes its TLS proxy");
    let caddyfile = read(
        &proxy
            .file_at(&compose, "/etc/caddy/Caddyfile")
            .expect("the proxy mounts a Caddyfile from the repository"),
    );
    let lines: Vec<&str> = caddyfile
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .collect();
    assert!(
        lines.iter().any(|line| line.starts_with("tls ")),
        "the Caddyfile serves no TLS"
    );
    let site = lines
        .iter()
        .find(|line| line.ends_with('{') && line.contains(':'))
        .expect("a site address with a port");
    let site_port = site
        .trim_end_matches('{')
        .trim()
        .rsplit(':')
        .next()
        .unwrap();
    assert!(
        proxy
            .published()
            .iter()
            .any(|(_, _, container)| container == site_port),
        "the proxy serves port {site_port} but publishes {:?}",
        proxy.published()
    );
    let upstreams: BTreeSet<&str> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("reverse_proxy "))
        .flat_map(|line| line.split_whitespace().filter(|word| *word != "{"))
        .collect();
    let servers: Vec<Service<'_>> = services(&compose)
        .into_iter()
        .filter(|s| s.in_profile("cluster") && s.command().iter().any(|w| w == "server"))
        .collect();
    let expected: BTreeSet<String> = servers.iter().map(|s| format!("{}:8080", s.name)).collect();
    assert_eq!(
        upstreams,
        expected
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<&str>>(),
        "the proxy does not forward to the cluster's API servers"
    );
    for service in services(&compose)
        .iter()
        .filter(|s| s.in_profile("cluster"))
    {
        let name = &service.name;
        let plain_only = service
            .text("image")
            .is_some_and(|i| i.starts_with("postgres"))
            || servers.iter().any(|s| &s.name == name);
        if plain_only {
            for network in service.networks() {
                assert!(
                    internal(&network),
                    "{name} speaks plain TCP on {network}, which is not internal: true"
                );
            }
        }
    }
}

#[test]
fn the_configurations_kestrel_services_load_are_valid() {
    let compose = compose();
    // Each configuration file, with the services that load it.
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for service in services(&compose).iter().filter(|s| s.is_kestrel()) {
        if let Some(target) = service.environment().get("KESTREL_CONFIG") {
            let file = service.file_at(&compose, target).unwrap();
            files.entry(file).or_default().push(service.name.clone());
        }
    }
    assert!(files.len() >= 2, "too few configuration files: {files:?}");
    for (file, loaded_by) in files {
        let sandbox = Sandbox::new();
        let mut invocation = sandbox.kestrel([
            "--config".to_owned(),
            repository().join(&file).display().to_string(),
            "config".to_owned(),
        ]);
        for variable in interpolated(&read(&file)) {
            invocation = invocation.env(&variable, "placeholder-for-the-test");
        }
        let out = invocation.output();
        assert_eq!(
            out.code,
            Some(0),
            "kestrel refuses {file}, which {loaded_by:?} load: {out:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

/// The Dockerfile's instructions, continuation lines joined, comments left out: one
/// (INSTRUCTION, arguments) per stage, stages split at FROM.
fn dockerfile_stages() -> Vec<Vec<(String, String)>> {
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    let mut pending = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                pending.push_str(part);
                pending.push(' ');
                continue;
            }
            None => pending.push_str(trimmed),
        }
        let instruction = std::mem::take(&mut pending);
        let (keyword, arguments) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((&instruction, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("the Dockerfile starts with FROM")
            .push((keyword, arguments.trim().to_owned()));
    }
    stages
}

fn instructions<'a>(stage: &'a [(String, String)], keyword: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, arguments)| arguments.as_str())
        .collect()
}

/// An exec-form instruction's JSON array.
fn exec_form(arguments: &str) -> Vec<String> {
    serde_json::from_str(arguments)
        .unwrap_or_else(|error| panic!("not an exec-form JSON array ({error}): {arguments}"))
}

fn final_stage() -> Vec<(String, String)> {
    dockerfile_stages().pop().unwrap()
}

/// The command a container of the image runs by default.
fn dockerfile_cmd() -> Vec<String> {
    let stage = final_stage();
    let cmd = instructions(&stage, "CMD");
    assert_eq!(cmd.len(), 1, "the final stage has one CMD: {cmd:?}");
    exec_form(cmd[0])
}

/// `kestrel ARGS --help` succeeds: ARGS name a command this kestrel has, with options it takes.
fn assert_kestrel_accepts(command: &[String], whence: &str) {
    let program = command.first().map(String::as_str).unwrap_or_default();
    assert!(
        program == "kestrel" || program.ends_with("/kestrel"),
        "{whence} runs {command:?}, not kestrel"
    );
    let mut args: Vec<String> = command[1..].to_vec();
    args.push("--help".into());
    let out = Sandbox::new().kestrel(&args).output();
    assert_eq!(
        out.code,
        Some(0),
        "{whence} runs `{}`, which this kestrel does not take: {}",
        command.join(" "),
        out.stderr
    );
}

#[test]
fn the_image_builds_with_the_readme_install_command() {
    assert!(
        read("README.md").contains(INSTALL_COMMAND),
        "README.md does not show the install command `{INSTALL_COMMAND}` the image builds with"
    );
    let stages = dockerfile_stages();
    assert!(stages.len() >= 2, "the Dockerfile is not multi-stage");
    let builder = &stages[0];
    let from = instructions(builder, "FROM")[0];
    assert!(
        from.starts_with("rust:1-bookworm "),
        "the builder is not the official rust:1-bookworm image: FROM {from}"
    );
    assert!(
        instructions(builder, "RUN")
            .iter()
            .any(|run| run.contains(INSTALL_COMMAND)),
        "the builder does not run `{INSTALL_COMMAND}`"
    );
    let runtime = stages.last().unwrap();
    assert_eq!(instructions(runtime, "FROM"), ["debian:bookworm-slim"]);
    for run in instructions(runtime, "RUN") {
        for compiler in ["gcc", "build-essential", "cargo", "rustc", "clang"] {
            assert!(
                !run.split_whitespace().any(|word| word == compiler),
                "the final stage installs {compiler}: {run}"
            );
        }
    }
    assert!(
        instructions(runtime, "COPY")
            .iter()
            .any(|copy| copy.starts_with("--from=") && copy.ends_with(" /usr/local/bin/kestrel")),
        "the final stage does not copy the built kestrel to /usr/local/bin/kestrel"
    );
    let ignored = read(".dockerignore");
    for path in ["target/", ".git/"] {
        assert!(
            ignored.lines().any(|line| line.trim() == path),
            ".dockerignore does not leave {path} out of the build context"
        );
    }
}

#[test]
fn the_image_runs_kestrel_as_a_dedicated_user_with_its_data_in_a_volume() {
    let stage = final_stage();
    let user = instructions(&stage, "USER");
    let user = user.last().expect("the final stage sets a USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid != "root" && uid.parse::<u32>().is_ok_and(|uid| uid >= 1000),
        "the image runs as {user}, not a dedicated non-root uid"
    );
    let data_dir = instructions(&stage, "ENV")
        .iter()
        .find_map(|env| env.strip_prefix("KESTREL_DATA_DIR="))
        .expect("the image sets KESTREL_DATA_DIR")
        .to_owned();
    let volumes: Vec<String> = instructions(&stage, "VOLUME")
        .iter()
        .flat_map(|volume| exec_form(volume))
        .collect();
    assert!(
        volumes.contains(&data_dir),
        "the data directory {data_dir} is not a VOLUME ({volumes:?})"
    );
    assert!(
        instructions(&stage, "EXPOSE").contains(&"8080"),
        "the image does not EXPOSE 8080"
    );
    let cmd = dockerfile_cmd();
    assert_eq!(cmd, ["kestrel", "server", "--bind", "0.0.0.0:8080"]);
    assert_kestrel_accepts(&cmd, "the image's CMD");
    for entrypoint in instructions(&stage, "ENTRYPOINT") {
        let entrypoint = exec_form(entrypoint);
        let program = entrypoint[0].rsplit('/').next().unwrap().to_owned();
        assert!(
            instructions(&stage, "RUN")
                .iter()
                .any(|run| run.split_whitespace().any(|word| word == program)),
            "the ENTRYPOINT {entrypoint:?} is not installed in the image"
        );
    }
}

#[test]
fn the_image_checks_its_health_with_kestrel_health() {
    let stage = final_stage();
    let healthcheck = instructions(&stage, "HEALTHCHECK");
    assert_eq!(healthcheck.len(), 1, "the final stage has no HEALTHCHECK");
    let (options, command) = healthcheck[0]
        .split_once("CMD ")
        .expect("HEALTHCHECK [OPTIONS] CMD [...]");
    let command = exec_form(command.trim());
    assert_eq!(
        command.get(..2),
        Some(&["kestrel".to_owned(), "health".to_owned()][..]),
        "the HEALTHCHECK does not call `kestrel health`"
    );
    assert_kestrel_accepts(&command, "the image's HEALTHCHECK");
    // `kestrel health` waits 2 s for an answer: the check must give it longer.
    if let Some(timeout) = options
        .split_whitespace()
        .find_map(|option| option.strip_prefix("--timeout="))
    {
        let seconds: u32 = timeout.trim_end_matches('s').parse().unwrap();
        assert!(
            seconds > 2,
            "HEALTHCHECK --timeout={timeout} cuts kestrel health short"
        );
    }
}

#[test]
fn every_kestrel_command_docker_compose_yml_runs_exists() {
    let compose = compose();
    for service in services(&compose).iter().filter(|s| s.is_kestrel()) {
        assert_kestrel_accepts(&service.command(), &format!("service {}", service.name));
    }
}

// ---------------------------------------------------------------------------------------------
// deploy/kestrel.service

const UNIT: &str = "deploy/kestrel.service";

/// The unit's settings: every `Key=value` line, in order (comments left out).
fn unit_settings() -> Vec<(String, String)> {
    read(UNIT)
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with(['#', ';', '[']) && !line.is_empty())
        .map(|line| {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{UNIT}: not Key=value: {line}"));
            (key.trim().to_owned(), value.trim().to_owned())
        })
        .collect()
}

fn unit_values(key: &str) -> Vec<String> {
    unit_settings()
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, value)| value)
        .collect()
}

#[test]
fn the_systemd_unit_runs_kestrel_server_with_its_key_as_a_credential() {
    let exec_start = unit_values("ExecStart");
    assert_eq!(exec_start.len(), 1);
    let command: Vec<String> = exec_start[0]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(command[0], "/usr/local/bin/kestrel");
    assert_eq!(command.get(1).map(String::as_str), Some("server"));
    assert_kestrel_accepts(&command, UNIT);

    let dynamic = unit_values("DynamicUser").iter().any(|v| v == "yes");
    let user = unit_values("User");
    assert!(
        dynamic || user.iter().any(|u| u != "root" && u != "0"),
        "{UNIT} does not run kestrel as a dedicated user"
    );
    assert_eq!(unit_values("StateDirectory"), ["kestrel"]);
    let environment: BTreeMap<String, String> = unit_values("Environment")
        .iter()
        .map(|assignment| {
            let (name, value) = assignment.split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    assert_eq!(
        environment.get("KESTREL_DATA_DIR").map(String::as_str),
        Some("%S/kestrel")
    );
    assert!(
        unit_values("LoadCredential")
            .iter()
            .any(|c| c == "master.key:/etc/kestrel/master.key"),
        "{UNIT} does not load the master key as a credential"
    );
    assert_eq!(
        environment
            .get("KESTREL_MASTER_KEY_FILE")
            .map(String::as_str),
        Some("%d/master.key"),
        "{UNIT} does not point kestrel at the credential"
    );
    assert!(
        !environment.contains_key("KESTREL_MASTER_KEY"),
        "{UNIT} puts the master key in an environment variable"
    );
    let known = variables_kestrel_reads();
    for name in environment.keys() {
        assert!(
            known.contains(name),
            "{UNIT} sets {name}, which kestrel never reads"
        );
    }
}

#[test]
fn the_systemd_unit_is_hardened_but_leaves_the_task_sandbox_its_namespaces() {
    let settings: BTreeMap<String, String> = unit_settings().into_iter().collect();
    let value = |key: &str| settings.get(key).map(String::as_str);
    assert_eq!(value("NoNewPrivileges"), Some("yes"));
    assert_eq!(value("ProtectSystem"), Some("strict"));
    assert!(matches!(
        value("ProtectHome"),
        Some("yes" | "read-only" | "tmpfs")
    ));
    assert_eq!(value("PrivateTmp"), Some("yes"));
    // Tasks run in new user, mount and PID namespaces with a fresh /proc (crates/sandbox).
    if let Some(namespaces) = value("RestrictNamespaces") {
        let allowed: BTreeSet<&str> = namespaces.split_whitespace().collect();
        assert!(
            ["user", "mnt", "pid"].iter().all(|ns| allowed.contains(ns)),
            "RestrictNamespaces={namespaces} forbids the task sandbox's namespaces"
        );
    }
    for key in [
        "ProtectKernelTunables",
        "ProtectKernelLogs",
        "MemoryDenyWriteExecute",
        "PrivateUsers",
    ] {
        assert_ne!(
            value(key),
            Some("yes"),
            "{key}=yes leaves tasks without their sandbox (or their interpreters without a JIT)"
        );
    }
    for filter in unit_values("SystemCallFilter") {
        assert!(
            filter.starts_with('~'),
            "SystemCallFilter={filter} allows a list: it would refuse the sandbox's unshare, \
             mount and landlock calls, and bind every task"
        );
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    // The unit names /usr/local/bin/kestrel, absent here: a copy names the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("kestrel.service");
    let text = read(UNIT).replace("/usr/local/bin/kestrel", env!("CARGO_BIN_EXE_kestrel"));
    std::fs::write(&unit, text).unwrap();
    let verified = match Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
    {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("note: no systemd-analyze on this machine: {UNIT} is not verified");
            return;
        }
        Err(error) => panic!("systemd-analyze does not run: {error}"),
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    let about_the_unit: Vec<&str> = said
        .lines()
        .filter(|line| line.contains("kestrel.service"))
        .collect();
    assert!(
        about_the_unit.is_empty(),
        "systemd-analyze verify finds fault with {UNIT}:\n{said}"
    );
    if !verified.status.success() {
        eprintln!(
            "note: systemd-analyze verify cannot check units on this machine ({}): {said}",
            verified.status
        );
    }
}
