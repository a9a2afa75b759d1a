//! What the Commands and Request tasks cost beyond the work itself.
//!
//! - `shell/task_true` runs a flow of one Commands task `true`; `shell/bare_sh_script` runs
//!   `/bin/sh <script>` on the same script, written once, reading its output. The difference
//!   is the task's overhead: working directory, script file, rendering, process group, output
//!   streaming, cleanup, and the execution around it. `shell/workdir_create_remove` is the
//!   part the file system under `TMPDIR` charges (a directory and a script file made and
//!   removed); run with `TMPDIR=/dev/shm` too to see the rest apart.
//! - `http/task_get` runs a flow of one Request task against a server on 127.0.0.1;
//!   `http/bare_reqwest` sends the same GET with a reqwest client and reads the body.
//! - `engine/return_task` is the execution alone (one Return task), to tell the task's share
//!   from the engine's; `engine/log_secret` is one Log task rendering `{{ secret('X') }}`, its
//!   render on a blocking thread under `expression.render-timeout`.
//!
//! Run: `cargo bench -p kestrel-engine --bench tasks -- --warm-up-time 1 --measurement-time 3`
//! (and with `TMPDIR=/dev/shm` before it).

// criterion_group! and criterion_main! generate undocumented public functions.
#![allow(missing_docs)]

#[path = "../tests/common/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

use criterion::{Criterion, criterion_group, criterion_main};
use kestrel_engine::{
    CancelToken, Engine, EngineConfig, Inputs, NoListener, Origin, Sources, State,
};
use kestrel_flow::Flow;
use std::process::{Command, Stdio};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn engine() -> Engine {
    {
        let (sources, _) =
            Sources::environment(&EngineConfig::default(), Vec::new(), None).expect("an engine");
        Engine::with_sources(EngineConfig::default(), sources)
    }
}

fn one_task(task: &str) -> Flow {
    kestrel_flow::parse_flow(&format!(
        "id: bench\nnamespace: dev\ntasks:\n  - id: t\n{task}"
    ))
    .expect("a valid flow")
}

/// Runs `flow` once and checks it succeeded.
fn run(runtime: &Runtime, engine: &Engine, flow: &Flow) {
    let inputs = Inputs::parse(&flow.inputs, Vec::new()).expect("no inputs");
    let execution = runtime.block_on(engine.run(
        flow,
        inputs,
        Origin::by("bench"),
        &NoListener,
        &CancelToken::new(),
    ));
    assert_eq!(execution.state, State::Success, "{execution:?}");
}

fn shell(c: &mut Criterion) {
    let runtime = runtime();
    let engine = engine();
    let flow =
        one_task("    type: io.kestra.plugin.scripts.shell.Commands\n    commands: [\"true\"]\n");
    let mut group = c.benchmark_group("shell");
    group.bench_function("task_true", |b| b.iter(|| run(&runtime, &engine, &flow)));
    let dir = tempfile::tempdir().expect("a directory");
    let script = dir.path().join("script");
    std::fs::write(&script, "set -e\ntrue\n").expect("write the script");
    group.bench_function("bare_sh_script", |b| {
        b.iter(|| {
            let output = Command::new("/bin/sh")
                .arg(&script)
                .stdin(Stdio::null())
                .output()
                .expect("sh runs");
            assert!(output.status.success());
        })
    });
    // What the file system charges for a working directory with a script in it.
    group.bench_function("workdir_create_remove", |b| {
        b.iter(|| {
            let dir = tempfile::Builder::new()
                .prefix("kestrel-")
                .tempdir()
                .expect("a directory");
            std::fs::write(dir.path().join(".kestrel-script"), "set -e\ntrue\n")
                .expect("write the script");
        })
    });
    group.finish();
}

fn http(c: &mut Criterion) {
    let runtime = runtime();
    let engine = engine();
    let server = server::Server::start();
    let url = server.url("/json");
    let flow = one_task(&format!(
        "    type: io.kestra.plugin.core.http.Request\n    uri: {url}\n"
    ));
    let mut group = c.benchmark_group("http");
    group.bench_function("task_get", |b| b.iter(|| run(&runtime, &engine, &flow)));
    let client = reqwest::Client::new();
    group.bench_function("bare_reqwest", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = client.get(&url).send().await.expect("a response");
                assert_eq!(response.status(), 200);
                response.bytes().await.expect("a body")
            })
        })
    });
    group.finish();
}

fn execution(c: &mut Criterion) {
    let runtime = runtime();
    let engine = engine();
    let flow = one_task("    type: io.kestra.plugin.core.debug.Return\n    format: x\n");
    c.bench_function("engine/return_task", |b| {
        b.iter(|| run(&runtime, &engine, &flow))
    });
    // A render with markup runs on a blocking thread under `expression.render-timeout`.
    let engine = {
        let (sources, _) =
            Sources::environment(&EngineConfig::default(), secret_x(), None).expect("an engine");
        Engine::with_sources(EngineConfig::default(), sources)
    };
    let flow =
        one_task("    type: io.kestra.plugin.core.log.Log\n    message: \"{{ secret('X') }}\"\n");
    c.bench_function("engine/log_secret", |b| {
        b.iter(|| run(&runtime, &engine, &flow))
    });
}

/// `SECRET_X`, as the environment holds it (base64).
fn secret_x() -> Vec<(String, String)> {
    vec![("SECRET_X".to_owned(), "c2VjcmV0LXZhbHVl".to_owned())]
}

criterion_group!(benches, execution, shell, http);
criterion_main!(benches);
