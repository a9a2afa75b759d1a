//! The flows that push secrets into every field a reader can see. Secrets are named by key
//! only; their values never appear in a flow's source.

/// Keys whose value the flows log, encode and return. The 64 KiB value is only logged and
/// returned as it is (`BIG_TASK`): each filter of it registers another 64 KiB value, which
/// would make a debug build's run take minutes.
const LOGGED: [&str; 6] = ["SHORT", "UNICODE", "MULTI", "BANK", "URLISH", "WORD"];

/// Logs every secret plain and through the filters that transform it, loops over a split
/// and over JSON leaves, prints secrets from a script in encoded forms, fails in every way
/// that can quote a value (each `allowFailure`), and returns secrets as flow outputs. Its
/// STRING input `note` is meant to be given WORD's value: it is logged once WORD was resolved
/// (a log written before that could not know the value is a secret).
pub(crate) fn everything(namespace: &str) -> String {
    let mut yaml = format!(
        "id: hunt\nnamespace: {namespace}\ninputs:\n  - id: note\n    type: STRING\n    defaults: plain\ntasks:\n"
    );
    for key in LOGGED {
        yaml.push_str(&logged(key));
    }
    yaml.push_str(BIG_TASK);
    yaml.push_str(NOTE);
    yaml.push_str(LEAVES);
    yaml.push_str(&loops());
    yaml.push_str(SCRIPT);
    yaml.push_str(&failures());
    yaml.push_str(OUTPUTS);
    yaml
}

fn logged(key: &str) -> String {
    let lower = key.to_lowercase();
    format!(
        r#"  - id: log_{lower}
    type: io.kestra.plugin.core.log.Log
    message:
      - "{{{{ secret('{key}') }}}}"
      - "{{{{ secret('{key}') | base64encode }}}}"
      - "{{{{ secret('{key}') | urlencode }}}}"
      - "{{{{ secret('{key}') | toJson }}}}"
      - "{{{{ secret('{key}') | upper }}}}"
  - id: return_{lower}
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ secret('{key}') }}}}"
"#
    )
}

const NOTE: &str = r#"  - id: log_note
    type: io.kestra.plugin.core.log.Log
    message: "note {{ inputs.note }}"
"#;

const BIG_TASK: &str = r#"  - id: log_big
    type: io.kestra.plugin.core.log.Log
    message: "{{ secret('BIG') }}"
  - id: return_big
    type: io.kestra.plugin.core.debug.Return
    format: "{{ secret('BIG') }}"
"#;

const LEAVES: &str = r#"  - id: leaves
    type: io.kestra.plugin.core.log.Log
    message:
      - "{{ fromJson(secret('BANK')).pin }}"
      - "{{ fromJson(secret('BANK')).password }}"
      - "{{ secret('BANK') | jq('.pin') }}"
      - "{{ secret('BANK') | jq('.user') }}"
  - id: pin_plus_nothing
    type: io.kestra.plugin.core.debug.Return
    format: "{{ fromJson(secret('BANK')).pin }}"
"#;

/// Loops over a split secret and over a JSON secret's leaves, each iteration showing its
/// value in a task run's output or a log.
fn loops() -> String {
    const RETURN: &str = "io.kestra.plugin.core.debug.Return\n        format";
    const LOG: &str = "io.kestra.plugin.core.log.Log\n        message";
    [
        ("each_split", "secret('URLISH') | split(',')", RETURN, ""),
        ("each_line", "secret('WORD') | split(',')", LOG, "item "),
        ("each_leaf", "fromJson(secret('BANK')) | values", LOG, "leaf "),
    ]
    .iter()
    .map(|(id, values, child, prefix)| {
        format!(
            "  - id: {id}\n    type: io.kestra.plugin.core.flow.ForEach\n    values: \"{{{{ {values} }}}}\"\n    tasks:\n      - id: {id}_value\n        type: {child}: \"{prefix}{{{{ taskrun.value }}}}\"\n"
        )
    })
    .collect()
}

/// A script given secrets through its environment only, printing them as tools do.
const SCRIPT: &str = r#"  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    allowFailure: true
    env:
      SHORT: "{{ secret('SHORT') }}"
      BIG: "{{ secret('BIG') }}"
      UNI: "{{ secret('UNICODE') }}"
      MULTI: "{{ secret('MULTI') }}"
      URLISH: "{{ secret('URLISH') }}"
      WORD: "{{ secret('WORD') }}"
      PIN: "{{ fromJson(secret('BANK')).pin }}"
    commands:
      - |
        printf '%s\n' "$SHORT" "$UNI" "$URLISH" "$WORD" "$PIN"
        printf '%s\n' "$MULTI"
        printf '%s' "$URLISH" | base64 -w0; echo
        printf '%s' "$UNI" | base64 -w0; echo
        printf '%s' "$BIG" | base64
        printf '%s' "$WORD" | xxd -p
        printf '%s' "$UNI" | xxd -p | tr -d '\n'; echo
        printf '::{"outputs":{"pin":%s,"word":"%s"}}::\n' "$PIN" "$WORD"
        printf '::{"metrics":[{"name":"pin","type":"counter","value":%s,"tags":{"w":"%s"}}]}::\n' "$PIN" "$WORD"
        printf '::{"logs":[{"level":"WARN","message":"%s"}]}::\n' "$WORD"
        printf '%s\n' "$UNI" >&2
        printf 'the word is %s\n' "$WORD" > out.txt
    outputFiles:
      - out.txt
"#;

/// Sends secrets over HTTP to `echo` (a local server that answers with the request it
/// received) in the URI, headers, body and method, and to addresses that fail. A flow of its
/// own: the filters of `everything` register derived forms (`upper`, `urlencode`) that would
/// hide what the HTTP task itself encodes.
pub(crate) fn calls(namespace: &str, echo: &str) -> String {
    format!(
        r#"id: calls
namespace: {namespace}
tasks:
  - id: http
    type: io.kestra.plugin.core.http.Request
    allowFailure: true
    logLevel: TRACE
    uri: "{echo}/echo/{{{{ secret('URLISH') }}}}/{{{{ secret('UNICODE') }}}}?w={{{{ secret('WORD') }}}}"
    method: POST
    headers:
      X-Word: "{{{{ secret('WORD') }}}}"
      X-Pin: "{{{{ fromJson(secret('BANK')).pin }}}}"
    body: "{{{{ secret('MULTI') }}}}"
  - id: http_method
    type: io.kestra.plugin.core.http.Request
    allowFailure: true
    logLevel: TRACE
    uri: "{echo}/method"
    method: "{{{{ secret('WORD') }}}}"
  - id: http_bad_method
    type: io.kestra.plugin.core.http.Request
    allowFailure: true
    uri: "{echo}/method"
    method: "{{{{ secret('URLISH') }}}}"
  - id: http_refused
    type: io.kestra.plugin.core.http.Request
    allowFailure: true
    uri: "http://127.0.0.1:1/{{{{ secret('URLISH') }}}}/{{{{ secret('UNICODE') }}}}"
  - id: http_userinfo
    type: io.kestra.plugin.core.http.Request
    allowFailure: true
    uri: "http://svc:{{{{ secret('URLISH') }}}}@127.0.0.1:1/"
"#
    )
}

/// Each task fails with an error that could quote the value it was given.
fn failures() -> String {
    let mut yaml: String = [
        ("missing_key", "secret('NOPE_' ~ secret('WORD'))"),
        ("base64decode", "secret('URLISH') | base64decode"),
        ("number", "secret('UNICODE') | number"),
        ("date", "secret('MULTI') | date"),
    ]
    .iter()
    .map(|(id, expression)| {
        format!(
            "  - id: fail_{id}\n    type: io.kestra.plugin.core.log.Log\n    allowFailure: true\n    message: \"{{{{ {expression} }}}}\"\n"
        )
    })
    .collect();
    yaml.push_str(FAILING_SCRIPT);
    yaml
}

const FAILING_SCRIPT: &str = r#"  - id: fail_script
    type: io.kestra.plugin.scripts.shell.Commands
    allowFailure: true
    env:
      WORD: "{{ secret('WORD') }}"
    commands:
      - printf 'cannot use %s\n' "$WORD" >&2; exit 3
"#;

const OUTPUTS: &str = r#"outputs:
  - id: word
    type: STRING
    value: "{{ secret('WORD') }}"
  - id: pin
    type: INT
    value: "{{ fromJson(secret('BANK')).pin }}"
  - id: bank
    type: JSON
    value: "{{ secret('BANK') }}"
  - id: script_pin
    type: INT
    value: "{{ outputs.script.vars.pin }}"
"#;

/// A flow that ends FAILED: its first task fails naming a key built from a secret, and its
/// error handler prints secrets.
pub(crate) fn failing(namespace: &str) -> String {
    format!(
        r#"id: failing
namespace: {namespace}
tasks:
  - id: boom
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ secret('NOPE_' ~ secret('URLISH')) }}}}"
errors:
  - id: handler
    type: io.kestra.plugin.core.log.Log
    message:
      - "{{{{ secret('MULTI') }}}}"
      - "{{{{ secret('UNICODE') | urlencode }}}}"
"#
    )
}

/// A flow whose script logs secrets, writes `started` under `marks`, then waits until `go`
/// exists there (bounded by a minute), its rendered script and an input file holding secrets,
/// and a background process named `marker` left to the end. Created `ok` makes it succeed.
/// `extra` is added to the task (a timeout, say).
pub(crate) fn waiting(namespace: &str, id: &str, marks: &str, marker: &str, extra: &str) -> String {
    format!(
        r#"id: {id}
namespace: {namespace}
tasks:
  - id: wait
    type: io.kestra.plugin.scripts.shell.Commands
{extra}    inputFiles:
      secret.txt: "{{{{ secret('URLISH') }}}} {{{{ secret('MULTI') }}}}"
    commands:
      - |
        : "{{{{ secret('WORD') }}}} {{{{ secret('UNICODE') | base64encode }}}}"
        sh -c 'while :; do sleep 1; done' {marker} &
        printf 'waiting with %s\n' "{{{{ secret('UNICODE') }}}}" "{{{{ secret('URLISH') | base64encode }}}}"
        echo started > {marks}/started
        i=0
        while [ ! -e {marks}/go ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
        cat secret.txt
        test -e {marks}/ok
"#
    )
}

/// A flow started by a Webhook trigger whose key is a secret, logging what the caller sent.
pub(crate) fn hooked(namespace: &str) -> String {
    format!(
        r#"id: hooked
namespace: {namespace}
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: "{{{{ secret('HOOK') }}}}"
tasks:
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ trigger }}}}"
"#
    )
}
