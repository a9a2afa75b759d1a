//! `kestrel run` of flows with `io.kestra.plugin.jdbc.postgresql.Query` against the PostgreSQL
//! server `KESTREL_TEST_POSTGRES` names (skipped, saying so, without one unless
//! `KESTREL_REQUIRE_POSTGRES=1`): each test gets a fresh database and a role of its own that
//! logs in with a password, read from a secret.

mod util;

use std::str::FromStr;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio_postgres::{Client, Config, NoTls};
use util::{Sandbox, base64};

/// A database of its own, a role owning it, and how a flow reaches it.
struct Database {
    runtime: Runtime,
    /// Connected as the test server's user, to the fresh database.
    admin: Client,
    /// `jdbc:postgresql://host:port/database`.
    jdbc: String,
    role: String,
    password: String,
}

impl Database {
    /// A fresh database with its own role; `None` when the test is skipped.
    fn new() -> Option<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let url = runtime.block_on(kestrel_store_postgres::testing::fresh_database())?;
        let config = Config::from_str(&url).expect("the test URL");
        let name = config.get_dbname().expect("a database").to_owned();
        let admin = runtime.block_on(connect(&config));
        let role = format!("{name}_user");
        let password = format!("pw-{}", &name[name.len() - 12..]);
        runtime.block_on(async {
            let sql = format!(
                "CREATE ROLE {role} LOGIN PASSWORD '{password}'; GRANT ALL ON SCHEMA public TO {role}; GRANT CREATE ON DATABASE {name} TO {role}"
            );
            admin.batch_execute(&sql).await.expect("create the role");
        });
        let tokio_postgres::config::Host::Tcp(host) = &config.get_hosts()[0] else {
            panic!("the test server must be reached over TCP");
        };
        let jdbc = format!("jdbc:postgresql://{host}:{}/{name}", config.get_ports()[0]);
        Some(Self {
            runtime,
            admin,
            jdbc,
            role,
            password,
        })
    }

    /// A Query task `id` (YAML list item) logging in with the secret `PG_PASSWORD`.
    fn task(&self, id: &str, properties: &str) -> String {
        format!(
            "  - id: {id}\n    type: io.kestra.plugin.jdbc.postgresql.Query\n    url: {}\n    username: {}\n    password: \"{{{{ secret('PG_PASSWORD') }}}}\"\n{properties}",
            self.jdbc, self.role
        )
    }

    /// The invocation of `kestrel run` of a flow of `tasks`, with `password` as the secret.
    fn run(&self, sandbox: &Sandbox, tasks: &str, password: &str) -> util::Invocation {
        sandbox.write(
            "flow.yml",
            &format!("id: pg\nnamespace: dev\ntasks:\n{tasks}"),
        );
        sandbox
            .kestrel(["run", "flow.yml", "--output", "json"])
            .env("SECRET_PG_PASSWORD", base64(password))
    }

    /// The rows of `sql`, each as its JSON text, on the admin connection.
    fn texts(&self, sql: &str) -> Vec<String> {
        self.runtime.block_on(async {
            let rows = self.admin.query(sql, &[]).await.expect("the query");
            rows.iter().map(|row| row.get::<_, String>(0)).collect()
        })
    }
}

async fn connect(config: &Config) -> Client {
    let (client, connection) = config.connect(NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

#[test]
fn every_fetch_type_and_named_parameters() {
    let Some(db) = Database::new() else { return };
    let tasks = [
        db.task("make", "    sql: CREATE TABLE items (id int, name text, price numeric(8,2), tags jsonb)\n"),
        db.task(
            "add",
            concat!(
                "    sql: INSERT INTO items VALUES (:id, :name, 2.50, :tags), (:id + 1, 'b', 1, null)\n",
                "    parameters:\n      id: 1\n      name: \"it's {{ flow.id }}; DROP TABLE items\"\n      tags: [x]\n",
            ),
        ),
        db.task("all", "    sql: SELECT * FROM items ORDER BY id\n    fetchType: FETCH\n"),
        db.task(
            "one",
            "    sql: SELECT name FROM items WHERE id > :min ORDER BY id\n    fetchType: FETCH_ONE\n    parameters:\n      min: 1\n",
        ),
        db.task("keep", "    sql: SELECT id FROM items ORDER BY id\n    fetchType: STORE\n"),
        "  - id: show\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ read(outputs.keep.uri) }}\"\n".to_owned(),
    ];
    let out = db
        .run(&Sandbox::new(), &tasks.concat(), &db.password)
        .output();
    out.assert_code(0);
    let json = out.json();
    let runs = &json["taskRuns"];
    assert_eq!(
        runs[0]["outputs"],
        serde_json::json!({}),
        "NONE gives nothing"
    );
    assert_eq!(runs[2]["outputs"]["size"], 2);
    assert_eq!(
        runs[2]["outputs"]["rows"][0],
        serde_json::json!({"id": 1, "name": "it's pg; DROP TABLE items", "price": 2.5, "tags": ["x"]})
    );
    assert_eq!(runs[3]["outputs"]["size"], 1);
    assert_eq!(runs[3]["outputs"]["row"], serde_json::json!({"name": "b"}));
    assert_eq!(runs[4]["outputs"]["size"], 2);
    assert!(
        runs[4]["outputs"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("kestra://")
    );
    assert_eq!(out.messages(), ["{\"id\":1}\n{\"id\":2}\n"]);
}

#[test]
fn a_wrong_password_fails_without_showing_any_credentials() {
    let Some(db) = Database::new() else { return };
    let url_password = "url-pa55word";
    let task = db
        .task("q", "    sql: SELECT 1\n")
        .replace("//", &format!("//{}:{url_password}@", db.role));
    let wrong = "wr0ng-pa55word";
    let out = db.run(&Sandbox::new(), &task, wrong).output();
    if out.code == Some(0) {
        eprintln!(
            "skipped the failure: the test server trusts every password (trust authentication)"
        );
    } else {
        out.assert_code(1);
        let error = out.json()["taskRuns"][0]["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(error.contains("password authentication failed"), "{error}");
    }
    out.assert_hides(wrong)
        .assert_hides(url_password)
        .assert_hides(&db.password);
    assert!(!out.stdout.contains(&format!("{}:", db.role)), "{out:#?}");
}

#[test]
fn pg_stat_activity_never_shows_the_password() {
    let Some(db) = Database::new() else { return };
    let task = db.task(
        "wait",
        "    sql: SELECT pg_sleep(:seconds)\n    parameters:\n      seconds: 3\n",
    );
    let sandbox = Sandbox::new();
    let invocation = db.run(&sandbox, &task, &db.password);
    let running = std::thread::spawn(move || invocation.output());
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let rows = db.texts(
            "SELECT row_to_json(a)::text FROM pg_stat_activity a WHERE application_name = 'kestrel' AND datname = current_database()",
        );
        if rows.iter().any(|row| row.contains("pg_sleep")) || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = running.join().unwrap();
    out.assert_code(0);
    let activity = seen.concat();
    assert!(activity.contains("SELECT pg_sleep($1)"), "{activity}");
    assert!(!activity.contains(&db.password), "{activity}");
}

#[test]
fn a_query_past_its_timeout_is_cancelled_on_the_server() {
    let Some(db) = Database::new() else { return };
    let task = db.task("wait", "    sql: SELECT pg_sleep(60)\n    timeout: PT1S\n");
    let out = db.run(&Sandbox::new(), &task, &db.password).output();
    out.assert_code(1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !db.texts(SLEEPING).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the query still runs on the server"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The statements of kestrel's connections still sleeping.
const SLEEPING: &str = "SELECT query FROM pg_stat_activity WHERE application_name = 'kestrel' AND datname = current_database() AND query LIKE '%pg_sleep%' AND state = 'active'";
