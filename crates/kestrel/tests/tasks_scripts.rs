//! `kestrel run` of Kestra's script tasks beyond shell Commands: `shell.Script`,
//! `python.Script`, `python.Commands`, `node.Script` and `node.Commands`, run by the host's
//! interpreters. Node's tests are skipped, saying why, where `node` is not on `PATH`.

mod util;

use util::{MASK, Sandbox, base64};

const TOKEN: &str = "scr1pt-s3cret-v4lue";

/// A flow `scripts` in namespace `dev` with a task `run` of `class` (after
/// `io.kestra.plugin.scripts.`) and the YAML `properties`, then the YAML `more` tasks.
fn flow(class: &str, properties: &str, more: &str) -> String {
    format!(
        "id: scripts\nnamespace: dev\ntasks:\n  - id: run\n    type: io.kestra.plugin.scripts.{class}\n{properties}{more}"
    )
}

/// A Log task `show` reading the output file `name` of task `run`.
fn show_file(name: &str) -> String {
    format!(
        "  - id: show\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{{{ read(outputs.run.outputFiles['{name}']) }}}}\"\n"
    )
}

/// Runs `flow` with the secret `API_TOKEN` set to [`TOKEN`]; its JSON output, checked to hide
/// the secret.
fn run_with_secret(flow: &str) -> util::Output {
    let secret = base64(TOKEN);
    let out = Sandbox::new().run_json(flow, &[("SECRET_API_TOKEN", &secret)]);
    out.assert_hides(TOKEN).assert_hides(&secret);
    out
}

/// Runs a flow of one task of `class` with the YAML `properties`, checked to succeed.
fn run_ok(class: &str, properties: &str) -> util::Output {
    let out = Sandbox::new().run_json(&flow(class, properties, ""), &[]);
    out.assert_code(0);
    out
}

/// Whether `node` is on `PATH`; says why a test is skipped when it is not.
fn has_node(test: &str) -> bool {
    let found = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        eprintln!("skipped {test}: node is not on PATH");
    }
    found
}

/// Python that prints `argv clean` when no process it can see holds the secret in its
/// arguments, `argv LEAK` otherwise.
const PYTHON_ARGV_CHECK: &str = r#"      import os
      token = os.environ["TOKEN"]
      leak = False
      for pid in filter(str.isdigit, os.listdir("/proc")):
          try:
              leak |= token.encode() in open(f"/proc/{pid}/cmdline", "rb").read()
          except OSError:
              pass
      print("argv LEAK" if leak else "argv clean")
"#;

#[test]
fn a_python_script_sets_outputs_metrics_and_logs_through_the_kestra_module() {
    let script = concat!(
        "    script: |\n",
        "      from kestra import Kestra\n",
        "      print('::{\"outputs\": {\"a\": 1}}::')\n",
        "      Kestra.outputs({'b': [1, 2]})\n",
        "      Kestra.counter('rows', 5, {'table': 't'})\n",
        "      Kestra.timer('took', lambda: None)\n",
        "      Kestra.logger().warning('careful')\n",
        "      print('plain')\n",
    );
    let out = run_ok("python.Script", script);
    let json = out.json();
    let run = &json["taskRuns"][0];
    assert_eq!(run["outputs"]["vars"]["a"], 1);
    assert_eq!(run["outputs"]["vars"]["b"][1], 2);
    // `kestrel run` shows no metrics; an unreadable one would be a WARN entry of its own.
    assert_eq!(out.messages(), ["careful", "plain"]);
}

#[test]
fn a_secret_reaches_a_python_script_masked_and_never_in_arguments() {
    let properties = format!(
        "    env:\n      TOKEN: \"{{{{ secret('API_TOKEN') }}}}\"\n    script: |\n      print(\"{{{{ secret('API_TOKEN') }}}}\")\n{PYTHON_ARGV_CHECK}"
    );
    let out = run_with_secret(&flow("python.Script", &properties, ""));
    out.assert_code(0);
    assert_eq!(out.messages(), [MASK, "argv clean"]);
}

#[test]
fn python_commands_run_before_commands_input_files_and_store_output_files() {
    let properties = concat!(
        "    env:\n      GREETING: hello\n",
        "    beforeCommands:\n      - printf before > before.txt\n",
        "    inputFiles:\n      main.py: |\n",
        "        import os\n",
        "        from kestra import Kestra\n",
        "        before = open('before.txt').read()\n",
        "        open('out.txt', 'w').write(before + ' ' + os.environ['GREETING'])\n",
        "        Kestra.outputs({'done': True})\n",
        "    commands:\n      - python3 main.py\n",
        "    outputFiles: [\"**/*.txt\", \"**/*.py\"]\n",
    );
    let out = Sandbox::new().run_json(
        &flow("python.Commands", properties, &show_file("out.txt")),
        &[],
    );
    out.assert_code(0);
    let json = out.json();
    let outputs = &json["taskRuns"][0]["outputs"];
    assert_eq!(outputs["vars"]["done"], true);
    let files = outputs["outputFiles"].as_object().unwrap();
    let names: Vec<&String> = files.keys().collect();
    assert_eq!(
        names,
        ["before.txt", "main.py", "out.txt"],
        "kestrel's module is none"
    );
    assert!(files["out.txt"].as_str().unwrap().starts_with("kestra://"));
    assert_eq!(out.messages(), ["before hello"]);
}

#[test]
fn a_python_script_imports_modules_of_the_working_directory() {
    let properties = concat!(
        "    inputFiles:\n      helper.py: \"WORD = 'sibling'\"\n",
        "    script: |\n      import helper\n      print(helper.WORD)\n",
    );
    let out = run_ok("python.Script", properties);
    assert_eq!(out.messages(), ["sibling"]);
}

#[test]
fn a_node_script_requires_packages_of_the_working_directory() {
    if !has_node("a_node_script_requires_packages_of_the_working_directory") {
        return;
    }
    let properties = concat!(
        "    inputFiles:\n      node_modules/greeting/index.js: \"module.exports = 'from a package';\"\n",
        "    script: console.log(require('greeting'))\n",
    );
    let out = run_ok("node.Script", properties);
    assert_eq!(out.messages(), ["from a package"]);
}

#[test]
fn a_missing_interpreter_fails_the_task_naming_it() {
    let properties = "    env:\n      PATH: /nonexistent\n    script: print(1)\n";
    let out = Sandbox::new().run_json(&flow("python.Script", properties, ""), &[]);
    out.assert_code(1);
    assert_eq!(
        out.json()["taskRuns"][0]["error"],
        "Cannot run the script: python3 or python not found on this host's PATH"
    );
}

#[test]
fn a_failing_python_script_fails_with_its_exit_code() {
    let out = Sandbox::new().run_json(
        &flow("python.Script", "    script: raise SystemExit(3)\n", ""),
        &[],
    );
    out.assert_code(1);
    let json = out.json();
    assert_eq!(
        json["taskRuns"][0]["error"],
        "Command failed with exit code 3"
    );
}

#[test]
fn a_shell_script_fails_fast_and_sets_outputs() {
    let properties = concat!(
        "    env:\n      TOKEN: \"{{ secret('API_TOKEN') }}\"\n",
        "    outputFiles: [out.txt]\n",
        "    script: |\n",
        "      printf '%s' \"$TOKEN\" > out.txt\n",
        "      echo '::{\"outputs\":{\"ok\":true}}::'\n",
        "      false\n",
        "      echo never\n",
    );
    let out = run_with_secret(&flow("shell.Script", properties, ""));
    out.assert_code(1);
    let json = out.json();
    assert_eq!(json["taskRuns"][0]["outputs"]["vars"]["ok"], true);
    assert_eq!(json["taskRuns"][0]["outputs"]["exitCode"], 1);
    assert_eq!(out.messages(), ["Command failed with exit code 1"]);
}

#[test]
fn a_node_script_sets_outputs_reads_a_secret_and_stores_files() {
    if !has_node("a_node_script_sets_outputs_reads_a_secret_and_stores_files") {
        return;
    }
    let properties = concat!(
        "    env:\n      TOKEN: \"{{ secret('API_TOKEN') }}\"\n",
        "    beforeCommands:\n      - printf node > name.txt\n",
        "    outputFiles: [out.txt]\n",
        "    script: |\n",
        "      const fs = require('fs');\n",
        "      const name = fs.readFileSync('name.txt', 'utf8');\n",
        "      fs.writeFileSync('out.txt', `from ${name}`);\n",
        "      console.log(process.env.TOKEN);\n",
        "      const leak = fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).some((p) => {\n",
        "        try { return fs.readFileSync(`/proc/${p}/cmdline`).includes(process.env.TOKEN); }\n",
        "        catch (e) { return false; }\n",
        "      });\n",
        "      console.log(leak ? 'argv LEAK' : 'argv clean');\n",
        "      console.log('::' + JSON.stringify({outputs: {n: 2}}) + '::');\n",
    );
    let out = run_with_secret(&flow("node.Script", properties, &show_file("out.txt")));
    out.assert_code(0);
    assert_eq!(out.json()["taskRuns"][0]["outputs"]["vars"]["n"], 2);
    assert_eq!(out.messages(), [MASK, "argv clean", "from node"]);
}

#[test]
fn node_commands_run_a_file_of_the_working_directory() {
    if !has_node("node_commands_run_a_file_of_the_working_directory") {
        return;
    }
    let properties = concat!(
        "    inputFiles:\n      main.js: |\n",
        "        console.log('::' + JSON.stringify({outputs: {sum: 1 + 2}}) + '::');\n",
        "    commands:\n      - node main.js\n",
    );
    let out = run_ok("node.Commands", properties);
    assert_eq!(out.json()["taskRuns"][0]["outputs"]["vars"]["sum"], 3);
}
