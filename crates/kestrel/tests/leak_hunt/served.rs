//! One server for every server-side channel: secrets stored with `kestrel secrets set`, a user
//! added with `kestrel users add`, flows run through the API (with a secret as a STRING
//! input, a webhook call repeating its key, a kill), then everything read back: the API, its
//! event streams, the UI pages, the server's own log, and, once it stopped, its database.
//! It runs once per test process; each test asserts on its own part.

use super::flows;
use super::http::{Request, echo_server, form, multipart};
use super::leftovers::{Leftovers, marker};
use super::procs;
use super::scan::Collected;
use super::secrets::{Secret, catalogue, value_of};
use super::server::Server;
use super::store;
use crate::util::{Sandbox, base64};
use serde_json::Value;
use std::sync::OnceLock;
use std::time::Duration;

/// The namespace holding the secrets; the flows run in its child.
const PARENT: &str = "hunt";
const NAMESPACE: &str = "hunt.team";
const USER: &str = "ada";
const PASSWORD: &str = "leak-hunt-sign-in-9f3c";
/// How long an event stream of an ended execution is read.
const ENDED_STREAM: Duration = Duration::from_secs(3);

/// What the server-side channels showed.
pub(crate) struct Served {
    /// REST answers and their event streams.
    pub(crate) api: Collected,
    /// UI pages.
    pub(crate) ui: Collected,
    /// The server's stderr.
    pub(crate) log: Collected,
    /// The database's rows, and what `kestrel secrets` printed while storing.
    pub(crate) store: Collected,
    /// The server's process tree while a task ran.
    pub(crate) processes: Collected,
    /// Leftovers of the execution killed through the API.
    pub(crate) leftovers: Leftovers,
    /// API requests that did not answer as they should (a flow not created, say): a
    /// channel not driven is not a channel checked.
    pub(crate) api_gaps: Vec<String>,
    /// The same for UI pages.
    pub(crate) ui_gaps: Vec<String>,
}

/// The server-side hunt, run by whichever test asks first.
pub(crate) fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(hunt)
}

/// State shared by the steps of the hunt.
struct Hunt {
    server: Server,
    auth: String,
    served: Served,
    executions: Vec<String>,
}

fn hunt() -> Served {
    let sandbox = Sandbox::new();
    let secrets = catalogue();
    let mut hunt = Hunt::start(&sandbox, &secrets);
    let (tmp, marks) = (sandbox.path("tmp"), sandbox.path("marks"));
    let marker = marker("api-kill");
    hunt.create_flows(&marks, &marker);
    hunt.run_everything(value_of(&secrets, "WORD"));
    hunt.run_waiting_for_the_end("calls");
    hunt.run_waiting_for_the_end("failing");
    hunt.call_webhook(value_of(&secrets, "HOOK"));
    hunt.kill_through_api(&marks);
    let data = sandbox.path("data");
    let ended = "a kill through the API";
    hunt.served.leftovers.check(ended, &tmp, &data, &marker);
    hunt.read_api(value_of(&secrets, "BANK"));
    hunt.read_ui();
    let Hunt {
        server, mut served, ..
    } = hunt;
    served.log.plain("server stderr", server.stop().join("\n"));
    served.store.extend(store::rows(&data.join("kestrel.db")));
    served
}

/// `kestrel secrets set` of every secret into the parent namespace (and one into the child,
/// so that listings show own and inherited keys), and the sign-in user.
fn store_secrets(sandbox: &Sandbox, secrets: &[Secret], seen: &mut Collected) {
    let added = sandbox
        .kestrel(["users", "add", USER])
        .stdin(&format!("{PASSWORD}\n"))
        .output();
    assert_eq!(added.code, Some(0), "users add: {}", added.stderr);
    for secret in secrets {
        for namespace in [PARENT, NAMESPACE] {
            if namespace == NAMESPACE && secret.key != "WORD" {
                continue;
            }
            let set = sandbox
                .kestrel(["secrets", "set", namespace, secret.key])
                .stdin(&secret.value)
                .output();
            assert_eq!(
                set.code,
                Some(0),
                "secrets set {}: exit {:?}",
                secret.key,
                set.code
            );
            seen.plain(format!("secrets set {} stdout", secret.key), set.stdout);
            seen.plain(format!("secrets set {} stderr", secret.key), set.stderr);
        }
    }
    let listed = sandbox.kestrel(["secrets", "list", NAMESPACE]).output();
    seen.plain(
        "secrets list",
        format!("{}\n{}", listed.stdout, listed.stderr),
    );
}

impl Hunt {
    /// Stores the secrets and the user, then starts the server with `TMPDIR` the sandbox's
    /// `tmp`.
    fn start(sandbox: &Sandbox, secrets: &[Secret]) -> Self {
        let mut store_cli = Collected::default();
        store_secrets(sandbox, secrets, &mut store_cli);
        let tmp = sandbox.path("tmp");
        for dir in [&tmp, &sandbox.path("marks")] {
            std::fs::create_dir_all(dir).expect("a directory");
        }
        sandbox.write("kestrel.yml", "worker:\n  threads: 2\n");
        Hunt {
            server: Server::start(sandbox, &tmp, &["--config", "kestrel.yml"]),
            auth: format!("Basic {}", base64(&format!("{USER}:{PASSWORD}"))),
            served: Served {
                api: Collected::default(),
                ui: Collected::default(),
                log: Collected::default(),
                store: store_cli,
                processes: Collected::default(),
                leftovers: Leftovers::default(),
                api_gaps: Vec::new(),
                ui_gaps: Vec::new(),
            },
            executions: Vec::new(),
        }
    }

    /// Every flow of the hunt; the waiting one (`slow`) marks under `marks`.
    fn create_flows(&mut self, marks: &std::path::Path, marker: &str) {
        let marks = marks.display().to_string();
        for flow in [
            flows::everything(NAMESPACE),
            flows::calls(NAMESPACE, &echo_server()),
            flows::failing(NAMESPACE),
            flows::hooked(NAMESPACE),
            flows::waiting(NAMESPACE, "slow", &marks, marker, ""),
        ] {
            let yaml = Some(("application/x-yaml", flow.into_bytes()));
            self.api("create a flow", "POST", "/api/v1/main/flows", yaml);
        }
    }

    /// Sends an API request as the user; keeps the answer; its body as JSON when it is.
    fn api(
        &mut self,
        what: &str,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Value {
        let mut request = Request::new(method, path).header("Authorization", self.auth.clone());
        if let Some((content_type, bytes)) = body {
            request = request.body(content_type, bytes);
        }
        let answer = self.server.send(&request);
        if answer.status >= 300 {
            self.served.api_gaps.push(format!(
                "{what}: {method} {path} answered {}",
                answer.status
            ));
        }
        self.served
            .api
            .json(format!("API {what} ({method} {path})"), answer.body.clone());
        serde_json::from_str(&answer.body).unwrap_or(Value::Null)
    }

    /// Keeps the id of an execution the API answered.
    fn started(&mut self, execution: &Value) -> String {
        let id = execution["id"].as_str().unwrap_or_default().to_owned();
        if !id.is_empty() {
            self.executions.push(id.clone());
        }
        id
    }

    /// The flow that does everything, given a secret's value as its STRING input.
    fn run_everything(&mut self, word: &str) {
        let (content_type, body) = multipart(&[("note", word)]);
        let path = format!("/api/v1/main/executions/{NAMESPACE}/hunt?wait=true");
        let execution = self.api("run everything", "POST", &path, Some((&content_type, body)));
        self.started(&execution);
    }

    fn run_waiting_for_the_end(&mut self, flow: &str) {
        let path = format!("/api/v1/main/executions/{NAMESPACE}/{flow}?wait=true");
        let execution = self.api(&format!("run {flow}"), "POST", &path, None);
        self.started(&execution);
    }

    /// Calls the webhook with its key, and sends the key again in a header, the query and the
    /// body, as a caller may.
    fn call_webhook(&mut self, key: &str) {
        let query = String::from_utf8_lossy(&form(&[("again", key)])).into_owned();
        let path = format!("/api/v1/main/executions/webhook/{NAMESPACE}/hooked/{key}?{query}");
        let request = Request::new("POST", &path)
            .header("X-Again", key)
            .body("application/json", format!("{{\"again\":\"{key}\"}}"));
        let answer = self.server.send(&request);
        if answer.status >= 300 {
            self.served
                .api_gaps
                .push(format!("webhook answered {}", answer.status));
        }
        self.served
            .api
            .json("API webhook call", answer.body.clone());
        let execution: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let id = self.started(&execution);
        self.ended(&id);
    }

    /// Starts the waiting flow, follows its logs while it runs, kills it through the API.
    fn kill_through_api(&mut self, marks: &std::path::Path) {
        let path = format!("/api/v1/main/executions/{NAMESPACE}/slow");
        let execution = self.api("run slow", "POST", &path, None);
        let id = self.started(&execution);
        if !procs::wait_for_file(&marks.join("started"), Duration::from_secs(60)) {
            self.served
                .api_gaps
                .push("the slow task never started".into());
        }
        let pid = self.server.pid();
        procs::read_tree(pid, "kestrel server", &mut self.served.processes);
        let address = self.server.address.clone();
        let follow = format!("/api/v1/main/logs/{id}/follow");
        let auth = self.auth.clone();
        let following = std::thread::spawn(move || {
            let request = Request::new("GET", &follow).header("Authorization", auth);
            request.send(&address, Some(Duration::from_secs(20)))
        });
        let kill = format!("/api/v1/main/executions/{id}/kill");
        self.api("kill", "DELETE", &kill, None);
        self.ended(&id);
        if let Ok(answer) = following.join() {
            self.served
                .api
                .events("API logs followed while running", answer.body);
        }
    }

    /// Polls the execution until it ended (bounded).
    fn ended(&mut self, id: &str) {
        let path = format!("/api/v1/main/executions/{id}");
        for _ in 0..600 {
            let answer = self
                .server
                .send(&Request::new("GET", &path).header("Authorization", self.auth.clone()));
            let execution: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
            let state = execution["state"]["current"].as_str().unwrap_or("");
            if !["", "CREATED", "RUNNING"].contains(&state) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.served
            .api_gaps
            .push(format!("execution {id} did not end"));
    }

    /// Every API read of what the hunt produced, and the secrets API given a JSON secret's
    /// number leaf as a non-string value.
    fn read_api(&mut self, bank: &str) {
        for id in self.executions.clone() {
            self.api(
                "execution",
                "GET",
                &format!("/api/v1/main/executions/{id}"),
                None,
            );
            self.api("logs", "GET", &format!("/api/v1/main/logs/{id}"), None);
            let path = format!("/api/v1/main/logs/{id}/follow");
            let follow = Request::new("GET", &path).header("Authorization", self.auth.clone());
            let events = self.server.stream(&follow, ENDED_STREAM);
            self.served
                .api
                .events(format!("API logs follow of {id}"), events.body);
        }
        for path in [
            format!("/api/v1/main/flows/{NAMESPACE}/hunt"),
            format!("/api/v1/main/flows/search?namespace={NAMESPACE}"),
            format!("/api/v1/main/executions/search?namespace={NAMESPACE}&size=50"),
            "/api/v1/main/namespaces/search".to_owned(),
            format!("/api/v1/main/namespaces/{NAMESPACE}"),
            format!("/api/v1/main/namespaces/{PARENT}/secrets"),
            format!("/api/v1/main/namespaces/{NAMESPACE}/secrets"),
            format!("/api/v1/main/namespaces/{NAMESPACE}/inherited-secrets"),
            format!("/api/v1/main/secrets?filters%5Bnamespace%5D%5BEQUALS%5D={PARENT}"),
        ] {
            self.api("read", "GET", &path, None);
        }
        let pin = serde_json::from_str::<Value>(bank).expect("BANK is JSON")["pin"].clone();
        let body = serde_json::json!({"key": "NUMERIC", "value": pin});
        let path = format!("/api/v1/main/namespaces/{NAMESPACE}/secrets");
        let answer = self.server.send(
            &Request::new("PUT", &path)
                .header("Authorization", self.auth.clone())
                .body("application/json", body.to_string()),
        );
        self.served
            .api
            .json("API secrets PUT of a number", answer.body);
        let health = self.server.send(&Request::new("GET", "/health"));
        self.served.api.json("health", health.body);
    }

    /// Signs in through the login form, then reads every page.
    fn read_ui(&mut self) {
        let Some(cookie) = self.sign_in() else {
            self.served.ui_gaps.push("the UI sign-in failed".into());
            return;
        };
        let mut pages = vec![
            "/ui/namespaces".to_owned(),
            format!("/ui/namespaces/{NAMESPACE}/flows"),
            format!("/ui/namespaces/{NAMESPACE}/executions"),
            format!("/ui/namespaces/{PARENT}/secrets"),
            format!("/ui/namespaces/{NAMESPACE}/secrets"),
            format!("/ui/namespaces/{PARENT}/secrets/WORD"),
            format!("/ui/flows/{NAMESPACE}/hunt"),
            "/ui/audit".to_owned(),
        ];
        pages.extend(
            self.executions
                .iter()
                .map(|id| format!("/ui/executions/{id}")),
        );
        for page in pages {
            let answer = self
                .server
                .send(&Request::new("GET", &page).header("Cookie", cookie.clone()));
            if answer.status != 200 {
                self.served
                    .ui_gaps
                    .push(format!("UI {page} answered {}", answer.status));
            }
            self.served.ui.html(format!("UI {page}"), answer.body);
        }
        for id in self.executions.clone() {
            let follow = format!("/ui/executions/{id}/follow");
            let request = Request::new("GET", &follow).header("Cookie", cookie.clone());
            let events = self.server.stream(&request, ENDED_STREAM);
            self.served.ui.events(format!("UI {follow}"), events.body);
        }
    }

    /// The session cookie after signing in with the login form and its CSRF token.
    fn sign_in(&mut self) -> Option<String> {
        let shown = self.server.send(&Request::new("GET", "/ui/login"));
        self.served.ui.html("UI /ui/login", shown.body.clone());
        let marker = "name=\"csrf\" value=\"";
        let start = shown.body.find(marker)? + marker.len();
        let csrf = &shown.body[start..start + shown.body[start..].find('"')?];
        let fields = [
            ("username", USER),
            ("password", PASSWORD),
            ("csrf", csrf),
            ("next", "/ui/namespaces"),
        ];
        let posted = self.server.send(
            &Request::new("POST", "/ui/login")
                .header("Cookie", shown.cookies().join("; "))
                .body("application/x-www-form-urlencoded", form(&fields)),
        );
        self.served
            .ui
            .html("UI sign-in answer", posted.body.clone());
        let session: Vec<String> = posted
            .cookies()
            .into_iter()
            .filter(|cookie| cookie.starts_with("kestrel_session="))
            .collect();
        session.first().cloned()
    }
}
