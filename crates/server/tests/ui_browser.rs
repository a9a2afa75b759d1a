//! The UI in a real headless Chromium: this test serves kestrel on a free port of loopback and
//! runs `tests/browser/ui.test.mjs` (Node's test runner, playwright-core, Debian's
//! `/usr/bin/chromium`) against it. The browser walks each flow of the UI: the first admin's
//! setup (on a second server nobody can sign in to yet), a namespace secret added in its
//! dialog, searched, versioned, restored and destroyed; a flow written in the editor with an
//! inline error marker and completion, saved, run with its live log masked and filtered,
//! restarted and replayed; every page checked by axe-core and shot in light mode, the main
//! ones in dark mode and at 390 px. Screenshots go to `target/browser-artifacts/`.
//!
//! Without Chromium or Node.js the test says so and passes, unless `KESTREL_REQUIRE_BROWSER`
//! is set (as in CI), where it fails. `scripts/browser-deps` installs both.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use common::{ADA_PASSWORD, harness_with};
use kestrel_crypto::MasterKey;
use kestrel_server::{AppState, Server, ServerOptions};
use kestrel_storage::{LocalStorage, Storage};
use kestrel_store_sqlite::{SqliteStore, StoreOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot::Sender;
use tokio::task::JoinHandle;

/// A server on a free port of loopback: its address, what it told its operator at start (the
/// first admin's setup code while nobody can sign in), how to stop it, and its end.
struct Serving {
    address: SocketAddr,
    notice: Option<String>,
    stop: Sender<()>,
    serving: JoinHandle<std::io::Result<()>>,
}

async fn serve(state: AppState) -> Serving {
    let server = Server::start(state).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let notice = server
        .first_start_notice(&format!("http://{address}"))
        .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(
        listener,
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    Serving {
        address,
        notice,
        stop,
        serving,
    }
}

/// The one-time code in a server's first-start notice.
fn setup_code(notice: &str) -> String {
    let (_, after) = notice
        .split_once("one-time code ")
        .expect("a code in the notice");
    after
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(',')
        .to_owned()
}

/// The workspace's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the screenshots go: `target/browser-artifacts` of the build's target directory.
fn artifacts() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    target.join("browser-artifacts")
}

/// The browser and Node.js, or why the test cannot run.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.is_file() {
        return Err(format!("no Chromium at {}", chromium.display()));
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|out| out.status.success()) {
        return Err("no `node` on PATH".into());
    }
    Ok((chromium, PathBuf::from("node")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_works_in_a_real_browser() {
    let (chromium, node) = match tools() {
        Ok(found) => found,
        Err(missing) if std::env::var_os("KESTREL_REQUIRE_BROWSER").is_none() => {
            // Straight to stderr: the test harness would hide `eprintln!` of a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED the browser test: {missing}. Run scripts/browser-deps to install \
                 Chromium and playwright-core (KESTREL_REQUIRE_BROWSER=1 makes this a failure)."
            );
            return;
        }
        Err(missing) => {
            panic!("KESTREL_REQUIRE_BROWSER is set but {missing}: run scripts/browser-deps")
        }
    };
    let browser_dir = root().join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in {}: run scripts/browser-deps (npm ci there)",
        browser_dir.display()
    );

    // Task files are kept, so that the execution page lists one and its preview is shot.
    let files = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(files.path(), 1 << 20));
    let h = harness_with(|options| options.storage = Some(storage)).await;
    let main = serve(h.state.clone()).await;
    // A second server, over a store nobody can sign in to yet: its first-run setup page.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh_store = SqliteStore::open(
        fresh_dir.path(),
        MasterKey::generate().unwrap(),
        StoreOptions::default(),
    )
    .unwrap();
    let fresh = AppState::new(ServerOptions::default(), Arc::new(fresh_store)).unwrap();
    let fresh = serve(fresh).await;
    let code = setup_code(fresh.notice.as_deref().expect("a first-start notice"));

    let artifacts = artifacts();
    // Only this run's screenshots: none left from an earlier one.
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut command = Command::new(node);
    command
        .args(["--test", "--test-reporter=spec", "ui.test.mjs"])
        .current_dir(&browser_dir)
        .env("KESTREL_URL", format!("http://{}", main.address))
        .env("KESTREL_USER", "ada")
        .env("KESTREL_PASSWORD", ADA_PASSWORD)
        .env("KESTREL_ARTIFACTS", &artifacts)
        .env("KESTREL_SETUP_URL", format!("http://{}", fresh.address))
        .env("KESTREL_SETUP_CODE", code)
        .env("CHROMIUM", &chromium);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));

    for server in [main, fresh] {
        let _ = server.stop.send(());
        server.serving.await.unwrap().unwrap();
    }
    assert!(
        output.status.success(),
        "the browser test failed; screenshots are in {}",
        artifacts.display()
    );
    let shots = std::fs::read_dir(&artifacts).unwrap().count();
    assert!(
        shots >= 30,
        "screenshots are kept in {}",
        artifacts.display()
    );
}
