//! A moto server on 127.0.0.1 standing in for AWS in tests (the `testing` feature): this
//! crate's tests use it, and so can other crates' (`kestrel-store-aws = { features =
//! ["testing"] }` in their dev-dependencies).
//!
//! By default moto checks no signature (the signing test compares with botocore instead);
//! [`DevAws::start_checking_signatures`] turns its IAM checks on. It forgets everything when
//! it stops. `scripts/services/moto-install` installs it.

use crate::AwsSettings;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How long moto may take to answer after it starts.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// How often readiness is polled.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Each server gets its own prefix, so servers of one test run never share names.
static SERVERS: AtomicU32 = AtomicU32::new(0);

/// The variable that turns a missing `moto_server` into a failure.
pub const REQUIRE_VARIABLE: &str = "KESTREL_REQUIRE_MOTO";

/// A moto server for `test`, or `None` after printing why there is none (no `moto_server`),
/// unless [`REQUIRE_VARIABLE`] is set: then a missing `moto_server` panics. A server that
/// is installed but does not start always panics.
pub fn dev_aws_or_skip(test: &str) -> Option<DevAws> {
    if let Err(missing) = moto_server() {
        if std::env::var_os(REQUIRE_VARIABLE).is_some() {
            panic!("{REQUIRE_VARIABLE} is set but {missing}");
        }
        // Straight to stderr: the harness hides `eprintln!` of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: {missing} ({REQUIRE_VARIABLE}=1 makes this a failure)"
        );
        return None;
    }
    match DevAws::start() {
        Ok(dev) => Some(dev),
        Err(why) => panic!("{test}: {why}"),
    }
}

/// A running `moto_server`, killed on drop.
#[derive(Debug)]
pub struct DevAws {
    program: PathBuf,
    port: u16,
    prefix: String,
    log: tempfile::NamedTempFile,
    child: Option<Child>,
    /// With signature checks: the keys of the IAM user made for kestrel.
    keys: Option<(String, Zeroizing<String>)>,
}

/// Makes, through the first unauthenticated calls moto allows, an IAM user allowed every
/// Secrets Manager action, and prints its access key id and secret key as JSON.
const MAKE_USER: &str = r#"
import json, sys, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="kestrel")
iam.put_user_policy(UserName="kestrel", PolicyName="secrets", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="kestrel")["AccessKey"]
print(json.dumps([key["AccessKeyId"], key["SecretAccessKey"]]))
"#;

/// The unauthenticated calls [`MAKE_USER`] makes.
const USER_CALLS: &str = "3";

impl DevAws {
    /// Starts `moto_server` from `PATH` on a free port and waits until it answers; `Err`
    /// says why not (not installed, exited, not ready within 20 s).
    pub fn start() -> Result<Self, String> {
        Self::launch(false)
    }

    /// A server that, as AWS does, refuses requests whose signature or key is wrong (moto's
    /// IAM checks); [`DevAws::settings`] then holds the keys of a user it knows. Needs
    /// python3 with boto3 (moto brings it).
    pub fn start_checking_signatures() -> Result<Self, String> {
        Self::launch(true)
    }

    fn launch(check_signatures: bool) -> Result<Self, String> {
        let program = moto_server()?;
        let port = free_port()?;
        let log = tempfile::NamedTempFile::new().map_err(|e| format!("moto's log file: {e}"))?;
        let serial = SERVERS.fetch_add(1, Ordering::Relaxed);
        let mut dev = Self {
            program,
            port,
            prefix: format!("kestrel-test-{}-{serial}", std::process::id()),
            log,
            child: None,
            // Replaced by the user's keys once the server answers.
            keys: check_signatures.then(|| (String::new(), Zeroizing::new(String::new()))),
        };
        dev.start_again()?;
        Ok(dev)
    }

    /// The URL to send requests to.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Settings for this server: its endpoint, fixed test keys, this server's own prefix.
    pub fn settings(&self) -> AwsSettings {
        AwsSettings {
            endpoint_override: Some(self.endpoint()),
            access_key_id: Some(self.keys.as_ref().map_or("AKIDTESTING", |k| &k.0).into()),
            secret_access_key: Some(match &self.keys {
                Some((_, secret)) => secret.clone(),
                None => Zeroizing::new("testing-secret-key".into()),
            }),
            session_token: None,
            prefix: self.prefix.clone(),
            ..AwsSettings::default()
        }
    }

    /// Stops the server (its state is lost); [`DevAws::start_again`] starts it on the same
    /// port.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already exited is fine: either way it no longer runs.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty, and waits until it answers.
    pub fn start_again(&mut self) -> Result<(), String> {
        self.stop();
        let output = self
            .log
            .reopen()
            .map_err(|e| format!("moto's log file: {e}"))?;
        let errors = output
            .try_clone()
            .map_err(|e| format!("moto's log file: {e}"))?;
        let mut command = Command::new(&self.program);
        if self.keys.is_some() {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", USER_CALLS);
        }
        let child = command
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.program.display()))?;
        self.child = Some(child);
        self.wait_until_ready()?;
        if self.keys.is_some() {
            self.keys = Some(self.make_user()?);
        }
        Ok(())
    }

    /// The keys of a new IAM user (moto forgot the previous one if it restarted).
    fn make_user(&self) -> Result<(String, Zeroizing<String>), String> {
        let output = Command::new("python3")
            .args(["-c", MAKE_USER, &self.endpoint()])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("python3 cannot run: {e}"))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!("making moto's IAM user: {}", stderr.trim()));
        }
        let stdout = Zeroizing::new(output.stdout);
        let (id, secret): (String, String) =
            serde_json::from_slice(&stdout).map_err(|e| format!("making moto's IAM user: {e}"))?;
        Ok((id, Zeroizing::new(secret)))
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&address, POLL_EVERY).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "moto_server exited ({status}): {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(POLL_EVERY);
        }
        self.stop();
        Err(format!(
            "moto_server did not answer on port {} within {} s: {}",
            self.port,
            READY_WITHIN.as_secs(),
            self.log_tail()
        ))
    }

    /// The end of moto's output, for messages.
    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = self.log.reopen() {
            let _ = file.read_to_string(&mut text);
        }
        let start = text.len().saturating_sub(2000);
        text.get(start..).unwrap_or_default().trim().to_owned()
    }
}

impl Drop for DevAws {
    fn drop(&mut self) {
        self.stop();
    }
}

fn moto_server() -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "moto_server is not on PATH: run scripts/services/moto-install \
             (pip install 'moto[server]')"
                .to_owned()
        })
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("finding a port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a port: {e}"))
}
