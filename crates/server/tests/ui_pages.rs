//! The web UI through its router: signing in and out, the login redirect, CSRF tokens, the
//! Secrets tab's forms (add, replace, describe, delete, each audited with the user), the flow
//! editor, running a flow, and no page ever holding a secret value.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;
mod ui_support;

use axum::http::{StatusCode, header};
use chrono::Utc;
use common::{ENV_SECRET, harness, harness_with};
use kestrel_store::{
    AuditAction, AuditFilter, AuthStore as _, FlowStore as _, SecretAccess, SecretId,
    SecretStore as _, UserRecord,
};
use ui_support::Client;

const VALUE: &str = "s3cr3t-value-from-the-form";

#[tokio::test]
async fn signing_in_and_out() {
    let h = harness().await;
    let client = Client::new(&h);
    client
        .get("/ui/namespaces")
        .await
        .assert_redirect("/ui/login?next=/ui/namespaces");
    let login = client.get("/ui/login?next=/ui/audit").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(
        login
            .html
            .contains("<label for=\"password\">Password</label>")
    );
    let form_cookie = login.set_cookies().join("\n");
    assert!(form_cookie.contains("kestrel_login=") && form_cookie.contains("HttpOnly"));

    let wrong = client
        .post(
            "/ui/login",
            &[
                ("username", "ada"),
                ("password", "guess"),
                ("next", "/ui/audit"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains("Wrong user name or password."));
    assert!(wrong.html.contains("value=\"ada\""), "the name is kept");
    assert!(!wrong.html.contains("guess"), "the password is not");

    let right = client
        .post(
            "/ui/login",
            &[
                ("username", "ada"),
                ("password", common::ADA_PASSWORD),
                ("next", "/ui/audit"),
            ],
        )
        .await;
    right.assert_redirect("/ui/audit");
    let session = right
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("kestrel_session="))
        .unwrap();
    assert!(
        session.contains("; HttpOnly") && session.contains("; SameSite=Strict"),
        "{session}"
    );
    let id = client.cookie("kestrel_session").unwrap();

    let home = client.get("/ui/namespaces").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.html
            .contains("<span class=\"who\" title=\"user:ada\">ada</span>")
    );
    client
        .get("/ui/login")
        .await
        .assert_redirect("/ui/namespaces");

    client
        .post("/ui/logout", &[])
        .await
        .assert_redirect("/ui/login?out=1");
    assert_eq!(
        client.cookie("kestrel_session"),
        None,
        "the cookie is cleared"
    );
    client.set_cookie("kestrel_session", &id);
    client
        .get("/ui/namespaces")
        .await
        .assert_redirect("/ui/login?next=/ui/namespaces");
    assert!(
        client
            .get("/ui/login?out=1")
            .await
            .html
            .contains("You are signed out.")
    );
}

#[tokio::test]
async fn the_login_form_needs_its_own_token() {
    let h = harness().await;
    let client = Client::new(&h);
    let fields = [
        ("username", "ada"),
        ("password", common::ADA_PASSWORD),
        ("csrf", "made-up"),
    ];
    let refused = client.post_raw("/ui/login", &fields).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.html.contains("The sign-in form expired"));
    assert_eq!(client.cookie("kestrel_session"), None);
}

#[tokio::test]
async fn pages_redirect_to_the_login_page_when_signed_out() {
    let h = harness().await;
    let client = Client::new(&h);
    for path in [
        "/ui/namespaces/team/secrets",
        "/ui/flows/team/hello",
        "/ui/executions/abc",
        "/ui/audit",
    ] {
        let page = client.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), format!("/ui/login?next={path}"));
    }
    client.get("/").await.assert_redirect("/ui/namespaces");
    let add = [("key", "K"), ("value", VALUE), ("csrf", "x")];
    client
        .post_raw("/ui/namespaces/team/secrets", &add)
        .await
        .assert_redirect("/ui/login");
    assert!(h.store.list("main", "team").await.unwrap().is_empty());
    for public in ["/ui/login", "/ui/static/style.css", "/ui/static/app.js"] {
        assert_eq!(client.get(public).await.status, StatusCode::OK, "{public}");
    }
    assert_eq!(
        client.get("/ui/static/nothing.js").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_form_without_the_session_token_changes_nothing() {
    let h = harness().await;
    let client = Client::ada(&h).await;
    let path = "/ui/namespaces/team/secrets";
    for token in [None, Some("forged-token"), Some("")] {
        let mut fields = vec![("key", "K"), ("value", VALUE)];
        if let Some(token) = token {
            fields.push(("csrf", token));
        }
        let refused = client.post_raw(path, &fields).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{token:?}");
        assert!(
            refused
                .html
                .contains("This form has expired or did not come from this site")
        );
    }
    let logout = client.post_raw("/ui/logout", &[]).await;
    assert_eq!(
        logout.status,
        StatusCode::FORBIDDEN,
        "signing out needs the token too"
    );
    assert!(h.store.list("main", "team").await.unwrap().is_empty());
    client
        .post(path, &[("key", "K"), ("value", VALUE)])
        .await
        .assert_redirect(path);
    assert_eq!(h.store.list("main", "team").await.unwrap().len(), 1);
}

#[tokio::test]
async fn secrets_are_added_replaced_described_and_deleted_through_forms() {
    let h = harness().await;
    let client = Client::ada(&h).await;
    let tab = "/ui/namespaces/team.data/secrets";
    let page = client.get(tab).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html
            .contains("<input id=\"value\" name=\"value\" type=\"password\"")
    );

    let fields = [
        ("key", "DB_PASSWORD"),
        ("value", VALUE),
        ("description", "the <warehouse>"),
        ("tags", "env=prod\nowner=data"),
    ];
    client.post(tab, &fields).await.assert_redirect(tab);
    let listed = client.get(tab).await;
    assert!(
        listed
            .html
            .contains("Secret DB_PASSWORD added (version 1).")
    );
    assert!(listed.html.contains("the &lt;warehouse&gt;"), "escaped");
    assert!(listed.html.contains("<span class=\"tag\">env=prod</span>"));
    assert!(
        listed
            .html
            .contains("data-copy=\"{{ secret(&#x27;DB_PASSWORD&#x27;) }}\"")
    );

    let again = client
        .post(
            tab,
            &[
                ("key", "DB_PASSWORD"),
                ("value", "other-value-99"),
                ("description", "kept"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again
            .html
            .contains("DB_PASSWORD already exists in team.data")
    );
    assert!(
        again.html.contains("value=\"kept\""),
        "the form is shown again, without its value"
    );
    let bad = client
        .post(tab, &[("key", "has space"), ("value", VALUE)])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let empty = client.post(tab, &[("key", "EMPTY"), ("value", "")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);

    let secret = format!("{tab}/DB_PASSWORD");
    let edit = client.get(&secret).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.html.contains(">env=prod\nowner=data</textarea>"));
    let replaced = client
        .post(&format!("{secret}/value"), &[("value", "the-new-value-77")])
        .await;
    replaced.assert_redirect(tab);
    let id = SecretId::main("team.data", "DB_PASSWORD").unwrap();
    let stored = h.store.get(&id, None).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.value.expose_secret()),
        (2, "the-new-value-77")
    );
    assert_eq!(
        h.store
            .get_meta(&id)
            .await
            .unwrap()
            .unwrap()
            .meta
            .description
            .as_deref(),
        Some("the <warehouse>"),
        "replacing the value keeps the description"
    );

    let described = [("description", "moved"), ("tags", "")];
    client
        .post(&format!("{secret}/meta"), &described)
        .await
        .assert_redirect(tab);
    let meta = h.store.get_meta(&id).await.unwrap().unwrap().meta;
    assert_eq!(
        (meta.description.as_deref(), meta.tags.len()),
        (Some("moved"), 0)
    );

    let asked = client.post(&format!("{secret}/delete"), &[]).await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(
        asked
            .html
            .contains("Delete secret DB_PASSWORD of namespace team.data?")
    );
    assert!(
        h.store.get(&id, None).await.unwrap().is_some(),
        "not before it is confirmed"
    );
    client
        .post(&format!("{secret}/delete"), &[("confirmed", "yes")])
        .await
        .assert_redirect(tab);
    assert!(h.store.get(&id, None).await.unwrap().is_none());
    assert!(
        client
            .get(tab)
            .await
            .html
            .contains("Secret DB_PASSWORD deleted.")
    );

    let filter = AuditFilter {
        namespace: Some("team.data".into()),
        ..AuditFilter::default()
    };
    let trail: Vec<(AuditAction, String)> = h
        .store
        .audit(&filter)
        .await
        .unwrap()
        .iter()
        .rev()
        .map(|e| (e.action, e.actor.to_string()))
        .collect();
    let ada = "user:ada".to_owned();
    assert_eq!(
        trail,
        [
            (AuditAction::Set, ada.clone()),
            (AuditAction::Set, ada.clone()),
            (AuditAction::UpdateMeta, ada.clone()),
            (AuditAction::Delete, ada),
        ]
    );
    let audit = client.get("/ui/audit?namespace=team.data").await;
    assert_eq!(audit.html.matches("<td>user:ada</td>").count(), 4);
    client.assert_never_shown(&[VALUE, "the-new-value-77", "other-value-99", ENV_SECRET]);
}

#[tokio::test]
async fn the_tab_shows_inherited_and_environment_keys_read_only() {
    let h = harness().await;
    h.secret("company", "SHARED", "parent-value-123").await;
    h.secret("company.team", "SHARED", "child-value-456").await;
    h.secret("company", "ONLY_PARENT", "parent-only-789").await;
    let client = Client::ada(&h).await;
    let tab = client.get("/ui/namespaces/company.team/secrets").await;
    let html = &tab.html;
    assert!(html.contains("Stored in the embedded backend."), "{html}");
    // One table: every key a flow reads, where it comes from, and what overrides what.
    let rows: Vec<&str> = html.split("<tr class=\"").skip(1).collect();
    let row_of = |key: &str, kind: &str| {
        rows.iter()
            .find(|row| row.starts_with(kind) && row.contains(&format!(">{key}<")))
            .unwrap_or_else(|| panic!("no {kind} row of {key}: {html}"))
            .to_string()
    };
    assert!(row_of("SHARED", "own").contains("overrides company"));
    let shadowed = row_of("SHARED", "inherited shadowed");
    assert!(
        shadowed.contains("overridden by company.team"),
        "{shadowed}"
    );
    assert!(row_of("ONLY_PARENT", "inherited").contains("/ui/namespaces/company/secrets"));
    assert!(row_of("ENV_TOKEN", "global").contains("environment"));
    assert!(
        html.contains("data-filter=\"rows\""),
        "the table can be searched"
    );
    client.assert_never_shown(&[
        "parent-value-123",
        "child-value-456",
        "parent-only-789",
        ENV_SECRET,
    ]);
}

#[tokio::test]
async fn the_secrets_tab_is_hidden_from_those_without_secret_access() {
    let h = harness().await;
    let nora = no_secrets(&h, Vec::new()).await;
    let flows = nora.get("/ui/namespaces/team/flows").await;
    assert_eq!(flows.status, StatusCode::OK);
    assert!(flows.html.contains(">Executions</a>"), "{}", flows.html);
    assert!(!flows.html.contains(">Secrets</a>"), "{}", flows.html);
    let ada = Client::ada(&h).await;
    let shown = ada.get("/ui/namespaces/team/flows").await;
    assert!(shown.html.contains(">Secrets</a>"));
}

/// `nora`, signed in: she reaches `namespaces` (every one when empty), without secret access.
async fn no_secrets(h: &common::Harness, namespaces: Vec<String>) -> Client<'_> {
    let password = "no secrets password 1";
    let user = UserRecord {
        name: "nora".into(),
        password_hash: kestrel_server::hash_password(password).unwrap(),
        namespaces,
        secrets: SecretAccess::None,
        created_at: Utc::now(),
    };
    h.store.add_user(&user).await.unwrap();
    let nora = Client::new(h);
    nora.sign_in("nora", password)
        .await
        .assert_redirect("/ui/namespaces");
    nora
}

/// A user limited to `team`, who may read its secrets but not change them.
async fn reader(h: &common::Harness) -> Client<'_> {
    let password = "reader password 1";
    let user = UserRecord {
        name: "rita".into(),
        password_hash: kestrel_server::hash_password(password).unwrap(),
        namespaces: vec!["team".into()],
        secrets: SecretAccess::Read,
        created_at: Utc::now(),
    };
    h.store.add_user(&user).await.unwrap();
    let client = Client::new(h);
    client
        .sign_in("rita", password)
        .await
        .assert_redirect("/ui/namespaces");
    client
}

#[tokio::test]
async fn pages_keep_to_the_callers_namespaces_and_secret_access() {
    let h = harness().await;
    h.secret("team", "K", VALUE).await;
    h.secret("elsewhere", "K", VALUE).await;
    let client = reader(&h).await;
    let listed = client.get("/ui/namespaces").await;
    assert!(listed.html.contains(">team</a>") && !listed.html.contains("elsewhere"));
    let tab = client.get("/ui/namespaces/team/secrets").await;
    assert_eq!(tab.status, StatusCode::OK);
    assert!(
        tab.html
            .contains("Read-only: user:rita may not change secrets")
    );
    assert!(!tab.html.contains("New secret"), "no form for a reader");
    assert_eq!(
        client.get("/ui/namespaces/elsewhere/secrets").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        client.get("/ui/namespaces/elsewhere/flows").await.status,
        StatusCode::FORBIDDEN
    );
    let refused = client
        .post(
            "/ui/namespaces/team/secrets",
            &[("key", "NEW"), ("value", VALUE)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let delete = client
        .post(
            "/ui/namespaces/team/secrets/K/delete",
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
    assert_eq!(h.store.list("main", "team").await.unwrap().len(), 1);
    let audit = client.get("/ui/audit?namespace=elsewhere").await;
    assert_eq!(audit.status, StatusCode::FORBIDDEN);

    h.store.remove_user("rita").await.unwrap();
    let gone = client.get("/ui/namespaces").await;
    assert_eq!(
        gone.status,
        StatusCode::SEE_OTHER,
        "a removed user's session ends"
    );
}

#[tokio::test]
async fn the_editor_shows_violations_at_their_line() {
    let h = harness().await;
    let client = Client::ada(&h).await;
    let new = client.get("/ui/namespaces/team/flows/new").await;
    assert!(new.html.contains("namespace: team"));
    let source = "id: broken\nnamespace: team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n";
    let refused = client
        .post("/ui/flows", &[("source", source), ("from", "team")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("The flow is not valid"));
    let violation = &refused.html[refused.html.find("<ul class=\"violations\">").unwrap()..];
    assert!(violation.contains("data-line=\"4\">4:"), "{violation}");
    assert!(refused.html.contains("<li id=\"L4\" class=\"bad\">"));
    assert!(
        refused.html.contains("id: broken\nnamespace: team"),
        "the source is kept"
    );
    assert!(h.store.list_flows("main", None).await.unwrap().is_empty());

    let good = source.to_owned() + "    message: hello\n";
    client
        .post("/ui/flows", &[("source", &good)])
        .await
        .assert_redirect("/ui/flows/team/broken");
    let taken = client.post("/ui/flows", &[("source", &good)]).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    let renamed = good.replace("id: broken", "id: other");
    let mismatch = client
        .post("/ui/flows/team/broken", &[("source", &renamed)])
        .await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        mismatch
            .html
            .contains("The YAML names team.other but this page edits team.broken")
    );
    let second = good.replace("hello", "hello again");
    client
        .post("/ui/flows/team/broken", &[("source", &second)])
        .await
        .assert_redirect("/ui/flows/team/broken");
    let page = client.get("/ui/flows/team/broken").await;
    assert!(page.html.contains("Flow team.broken saved (revision 2)."));
    assert!(page.html.contains("hello again"));
}

#[tokio::test]
async fn the_editor_script_gets_violations_at_their_lines_and_what_to_complete() {
    let h = harness().await;
    h.secret("company", "PARENT_KEY", "parent-value-321").await;
    h.secret("company.team", "OWN_KEY", "own-value-654").await;
    let client = Client::ada(&h).await;
    let page = client.get("/ui/namespaces/company.team/flows/new").await;
    assert!(
        page.html
            .contains("<script src=\"/ui/static/editor.js\" defer></script>"),
        "the editor is loaded on its page"
    );
    assert!(
        page.html
            .contains("data-complete=\"/ui/namespaces/company.team/editor-hints\"")
    );
    let source = "id: broken\nnamespace: company.team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ unclosed\"\n";
    let checked = client
        .post_json("/ui/flows/check", &serde_json::json!({"source": source}))
        .await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.html);
    let answer: serde_json::Value = serde_json::from_str(&checked.html).unwrap();
    let diagnostics = answer["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 1, "{answer}");
    assert_eq!(diagnostics[0]["line"], 6, "the template's line: {answer}");
    assert!(
        diagnostics[0]["message"]
            .as_str()
            .unwrap()
            .contains("message")
    );
    let valid = source.replace("{{ unclosed", "{{ flow.id }}");
    let checked = client
        .post_json("/ui/flows/check", &serde_json::json!({"source": valid}))
        .await;
    assert_eq!(checked.html, r#"{"diagnostics":[]}"#);

    let hints = client.get("/ui/namespaces/company.team/editor-hints").await;
    let hints: serde_json::Value = serde_json::from_str(&hints.html).unwrap();
    let log = hints["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|task| task["type"] == "io.kestra.plugin.core.log.Log")
        .unwrap();
    for property in ["id", "type", "message", "level", "retry"] {
        assert!(
            log["properties"]
                .as_array()
                .unwrap()
                .contains(&property.into())
        );
    }
    let secrets = hints["secrets"].as_array().unwrap();
    for key in ["OWN_KEY", "PARENT_KEY", "ENV_TOKEN"] {
        assert!(secrets.contains(&key.into()), "{key} in {secrets:?}");
    }
    assert!(hints["keys"].as_array().unwrap().contains(&"tasks".into()));
    client.assert_never_shown(&["parent-value-321", "own-value-654", ENV_SECRET]);
}

#[tokio::test]
async fn the_editor_completes_no_secret_key_for_those_without_secret_access() {
    let h = harness().await;
    h.secret("team", "HIDDEN_KEY", "hidden-value-987").await;
    let nora = no_secrets(&h, vec!["team".into()]).await;
    let hints = nora.get("/ui/namespaces/team/editor-hints").await;
    assert_eq!(hints.status, StatusCode::OK);
    let hints: serde_json::Value = serde_json::from_str(&hints.html).unwrap();
    assert_eq!(hints["secrets"], serde_json::json!([]));
    assert!(!hints["tasks"].as_array().unwrap().is_empty());
    let elsewhere = nora.get("/ui/namespaces/other/editor-hints").await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
}

/// A flow that logs a namespace secret and a SECRET input.
fn logging_flow() -> String {
    "id: leak\nnamespace: team\ninputs:\n  - id: token\n    type: SECRET\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: \"db={{ secret('DB') }} token={{ inputs.token }} env={{ secret('ENV_TOKEN') }}\"\n  - id: done\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ secret('DB') }}\"\n".to_owned()
}

#[tokio::test]
async fn no_page_holds_a_secret_value_after_a_flow_logged_it() {
    let h = harness().await;
    let client = Client::ada(&h).await;
    let tab = "/ui/namespaces/team/secrets";
    client.get(tab).await;
    client
        .post(tab, &[("key", "DB"), ("value", VALUE)])
        .await
        .assert_redirect(tab);
    client
        .post("/ui/flows", &[("source", &logging_flow())])
        .await
        .assert_redirect("/ui/flows/team/leak");
    let flow = client.get("/ui/flows/team/leak").await;
    assert!(
        flow.html
            .contains("<input id=\"input-token\" name=\"input.token\" type=\"password\"")
    );
    let input = "input-value-never-shown";
    let run = client
        .post("/ui/flows/team/leak/run", &[("input.token", input)])
        .await;
    assert_eq!(run.status, StatusCode::SEE_OTHER, "{}", run.html);
    let execution = run.location().to_owned();
    let id = execution.trim_start_matches("/ui/executions/").to_owned();

    let stream = client.get(&format!("{execution}/follow")).await;
    assert_eq!(stream.headers[header::CONTENT_TYPE], "text/event-stream");
    assert!(stream.html.contains("event: log"), "{}", stream.html);
    assert!(
        stream.html.contains("db=****** token=****** env=******"),
        "{}",
        stream.html
    );
    assert!(
        stream.html.trim_end().ends_with("event: end\ndata: ended"),
        "{}",
        stream.html
    );

    let ended = h
        .state
        .store()
        .get_execution("main", &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.state, "SUCCESS");
    let page = client.get(&execution).await;
    assert!(
        page.html
            .contains("<span class=\"state success\" id=\"execution-state\">SUCCESS</span>")
    );
    assert!(page.html.contains("db=****** token=****** env=******"));
    assert!(
        !page.html.contains("data-follow"),
        "an ended execution is not followed"
    );
    for path in [
        "/ui/namespaces",
        "/ui/namespaces/team/flows",
        "/ui/namespaces/team/executions",
        tab,
        "/ui/namespaces/team/secrets/DB",
        "/ui/flows/team/leak",
        "/ui/audit",
    ] {
        assert_eq!(client.get(path).await.status, StatusCode::OK, "{path}");
    }
    for tab in ["outputs", "metrics", "inputs"] {
        let shown = client.get(&format!("{execution}?tab={tab}")).await;
        assert_eq!(shown.status, StatusCode::OK, "{tab}");
    }
    assert!(
        page.html.contains("data-filter=\"log\""),
        "the log can be filtered"
    );
    let download = client.get(&format!("{execution}/logs")).await;
    assert_eq!(download.status, StatusCode::OK);
    let disposition = download.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(
        download.html.contains("db=****** token=****** env=******"),
        "{}",
        download.html
    );
    let killed = client.post(&format!("{execution}/kill"), &[]).await;
    killed.assert_redirect(&execution);
    assert!(client.get(&execution).await.html.contains("already ended"));
    client.assert_never_shown(&[VALUE, input, ENV_SECRET]);
}

#[tokio::test]
async fn pages_forbid_framing_and_foreign_scripts() {
    let h = harness().await;
    let client = Client::new(&h);
    let login = client.get("/ui/login").await;
    let policy = login.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert_eq!(login.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(login.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[tokio::test]
async fn without_authentication_pages_open_with_a_session_of_their_own() {
    let h = harness_with(|options| options.auth.enabled = false).await;
    let client = Client::new(&h);
    let home = client.get("/ui/namespaces").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(client.cookie("kestrel_session").is_some());
    client
        .get("/ui/login")
        .await
        .assert_redirect("/ui/namespaces");
    let tab = "/ui/namespaces/open/secrets";
    client.get(tab).await;
    client
        .post(tab, &[("key", "K"), ("value", VALUE)])
        .await
        .assert_redirect(tab);
    let trail = h.store.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(trail[0].actor.to_string(), "system:anonymous");
}

#[tokio::test]
async fn a_login_page_sent_back_to_a_strange_place_goes_home() {
    let h = harness().await;
    let client = Client::new(&h);
    for next in [
        "/ui/%0ASet-Cookie:%20x",
        "https://evil.example/",
        "/ui/%5Cevil",
    ] {
        let login = client.get(&format!("/ui/login?next={next}")).await;
        assert_eq!(login.status, StatusCode::OK, "{next}");
        assert!(
            login
                .html
                .contains("name=\"next\" value=\"&#x2f;ui&#x2f;namespaces\""),
            "{next}"
        );
    }
}

#[tokio::test]
async fn a_read_only_backend_hides_the_forms_and_says_which_backend_and_why() {
    let h = common::harness_read_only("locked").await;
    let client = Client::ada(&h).await;
    let tab = client.get("/ui/namespaces/locked.sub/secrets").await;
    assert_eq!(tab.status, StatusCode::OK);
    assert!(
        tab.html
            .contains("Stored in the embedded backend, read-only."),
        "{}",
        tab.html
    );
    assert!(
        tab.html.contains("embedded backend, configured read-only"),
        "{}",
        tab.html
    );
    assert!(!tab.html.contains("New secret"), "no form for a reader");
    let open = client.get("/ui/namespaces/team/secrets").await;
    assert!(open.html.contains("New secret"));
}

#[tokio::test]
async fn a_failed_execution_restarts_from_its_page() {
    let h = harness_with(|options| options.auth.enabled = false).await;
    h.flow("id: flaky\nnamespace: team\ntasks:\n  - id: once\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ taskrun.attemptsCount == 1 ? 'ok' : ko }}\"\n")
        .await;
    let failed = h.run("team", "flaky").await;
    assert_eq!(failed["state"]["current"], "FAILED");
    let id = failed["id"].as_str().unwrap();
    let client = Client::new(&h);
    let page = format!("/ui/executions/{id}");
    let restart = format!("{page}/restart");
    let shown = client.get(&page).await;
    assert!(shown.html.contains(">Restart</button>"), "{}", shown.html);
    client.post(&restart, &[]).await.assert_redirect(&page);
    assert!(client.get(&page).await.html.contains("restarts"));
    let done = h.ended(id).await;
    assert_eq!(done["state"]["current"], "SUCCESS", "{done}");
    let after = client.get(&page).await;
    assert!(
        !after.html.contains(">Restart</button>"),
        "a successful execution has nothing to restart"
    );
    // The timeline shows the task run's two attempts: the failed one, then the one that
    // succeeded.
    let failed_bar = after
        .html
        .find("class=\"bar failed\"")
        .expect("a failed attempt");
    let success_bar = after
        .html
        .find("class=\"bar success\"")
        .expect("a successful one");
    assert!(failed_bar < success_bar, "{}", after.html);
    assert!(
        after.html.contains("once · attempt 2 · SUCCESS"),
        "{}",
        after.html
    );
}

#[tokio::test]
async fn an_unknown_ui_path_is_a_404_page_before_any_sign_in() {
    let h = harness().await;
    let client = Client::new(&h);
    let page = client.get("/ui/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.html.contains("There is no such page"), "{}", page.html);
    assert!(
        page.html.contains("<!doctype html>"),
        "an HTML page, not JSON"
    );
    client
        .get("/ui/namespaces")
        .await
        .assert_redirect("/ui/login?next=/ui/namespaces");
}

#[tokio::test]
async fn pages_have_an_icon_and_follow_the_systems_dark_mode() {
    let h = harness().await;
    let client = Client::new(&h);
    let login = client.get("/ui/login").await;
    assert!(
        login.html.contains("/ui/static/favicon.svg"),
        "{}",
        login.html
    );
    let icon = client.get("/ui/static/favicon.svg").await;
    assert_eq!(icon.status, StatusCode::OK);
    assert_eq!(icon.headers[header::CONTENT_TYPE], "image/svg+xml");
    let style = client.get("/ui/static/style.css").await;
    assert!(style.html.contains("@media (prefers-color-scheme: dark)"));
    assert!(style.html.contains("@media (max-width: 40rem)"));
}

#[tokio::test]
async fn the_api_description_and_its_explorer_are_public() {
    let h = harness().await;
    let document = h.get("/api/openapi.json", common::Who::Nobody).await;
    assert_eq!(document.status, StatusCode::OK, "{}", document.text);
    assert_eq!(document.json()["openapi"], "3.0.3");
    let explorer = Client::new(&h).get("/api").await;
    assert_eq!(explorer.status, StatusCode::OK);
    let text = explorer.html.replace("&#x2f;", "/");
    for shown in [
        "/api/v1/main/executions/{executionId}/restart",
        "the namespace, with secret access write",
        "/api/openapi.json",
    ] {
        assert!(text.contains(shown), "{shown}: {text}");
    }
}

#[tokio::test]
async fn a_paused_execution_resumes_from_its_page_with_its_inputs() {
    let h = harness_with(|options| options.auth.enabled = false).await;
    h.flow("id: pausing\nnamespace: team\ntasks:\n  - id: pause\n    type: io.kestra.plugin.core.flow.Pause\n    onResume:\n      - id: asked\n        type: STRING\n  - id: last\n    type: io.kestra.plugin.core.output.OutputValues\n    values:\n      asked: \"{{ outputs.pause.onResume.asked }}\"\n")
        .await;
    let created = h
        .send(
            axum::http::Method::POST,
            "/api/v1/main/executions/team/pausing",
            common::Who::Admin,
            None,
        )
        .await
        .json();
    let id = created["id"].as_str().unwrap().to_owned();
    for _ in 0..400 {
        if h.execution(&id).await["state"]["current"] == "PAUSED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let client = Client::new(&h);
    let page = format!("/ui/executions/{id}");
    let shown = client.get(&page).await;
    assert!(shown.html.contains(">Resume</button>"), "{}", shown.html);
    assert!(
        shown.html.contains("name=\"input.asked\""),
        "{}",
        shown.html
    );
    client
        .post(
            &format!("{page}/resume"),
            &[("input.asked", "from the page")],
        )
        .await
        .assert_redirect(&page);
    let done = h.ended(&id).await;
    assert_eq!(done["state"]["current"], "SUCCESS", "{done}");
    assert_eq!(
        done["taskRunList"][1]["outputs"]["values"]["asked"],
        "from the page"
    );
    assert!(!client.get(&page).await.html.contains(">Resume</button>"));
}

#[tokio::test]
async fn versions_are_restored_and_destroyed_from_the_secrets_page() {
    let h = harness().await;
    h.secret("team", "K", "first-value-111").await;
    h.secret("team", "K", "second-value-222").await;
    let client = Client::ada(&h).await;
    let page = "/ui/namespaces/team/secrets/K";
    client
        .post(&format!("{page}/delete"), &[("confirmed", "yes")])
        .await
        .assert_redirect("/ui/namespaces/team/secrets");
    let deleted = client.get(page).await;
    assert_eq!(
        deleted.status,
        StatusCode::OK,
        "a deleted secret's page stays"
    );
    assert!(
        deleted.html.contains("The latest version is deleted"),
        "{}",
        deleted.html
    );
    assert!(deleted.html.contains(">Restore version 2</button>"));
    client
        .post(&format!("{page}/versions/2/restore"), &[])
        .await
        .assert_redirect(page);
    let id = SecretId::new("main", "team", "K").unwrap();
    assert!(h.store.get_meta(&id).await.unwrap().unwrap().readable);

    client
        .post(&format!("{page}/versions/1/destroy"), &[("confirm", "k")])
        .await
        .assert_redirect(page);
    assert!(
        client
            .get(page)
            .await
            .html
            .contains("type the key (K) to confirm")
    );
    let versions = h.store.versions(&id).await.unwrap();
    assert!(
        versions[0].destroyed_at.is_none(),
        "a wrong confirmation destroys nothing"
    );
    client
        .post(&format!("{page}/versions/1/destroy"), &[("confirm", "K")])
        .await
        .assert_redirect(page);
    let versions = h.store.versions(&id).await.unwrap();
    assert!(versions[0].destroyed_at.is_some());
    assert!(versions[1].destroyed_at.is_none());
    client.assert_never_shown(&["first-value-111", "second-value-222"]);
}

#[tokio::test]
async fn flows_show_their_last_run_and_executions_filter_by_state() {
    let h = harness().await;
    h.flow("id: hello\nnamespace: team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
        .await;
    h.flow("id: idle\nnamespace: team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
        .await;
    let ran = h.run("team", "hello").await;
    let id = ran["id"].as_str().unwrap();
    let client = Client::ada(&h).await;
    let flows = client.get("/ui/namespaces/team/flows").await.html;
    let hello = &flows[flows.find(">hello<").unwrap()..];
    assert!(
        hello.contains(">SUCCESS</span>") && hello.contains(id),
        "{flows}"
    );
    let idle = &flows[flows.find(">idle<").unwrap()..];
    assert!(idle.contains("never run"), "{flows}");
    assert!(
        flows.contains("data-filter=\"rows\""),
        "the flows can be searched"
    );
    let failed = client
        .get("/ui/namespaces/team/executions?state=FAILED")
        .await;
    assert!(
        failed.html.contains("No FAILED execution in team."),
        "{}",
        failed.html
    );
    let succeeded = client
        .get("/ui/namespaces/team/executions?state=SUCCESS")
        .await;
    assert!(succeeded.html.contains(id), "{}", succeeded.html);
}

#[tokio::test]
async fn executions_across_namespaces_keep_to_the_callers_reach() {
    let h = harness().await;
    for namespace in ["team", "elsewhere"] {
        h.flow(&format!(
            "id: hello\nnamespace: {namespace}\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
        ))
        .await;
    }
    let mine = h.run("team", "hello").await;
    let theirs = h.run("elsewhere", "hello").await;
    let ada = Client::ada(&h).await;
    let all = ada.get("/ui/executions").await;
    assert_eq!(all.status, StatusCode::OK);
    for id in [&mine["id"], &theirs["id"]] {
        assert!(all.html.contains(id.as_str().unwrap()), "{}", all.html);
    }
    let rita = reader(&h).await;
    let reached = rita.get("/ui/executions").await.html;
    assert!(reached.contains(mine["id"].as_str().unwrap()), "{reached}");
    assert!(
        !reached.contains(theirs["id"].as_str().unwrap()),
        "{reached}"
    );
}

#[tokio::test]
async fn an_execution_replays_from_a_task_run_on_its_page() {
    let h = harness_with(|options| options.auth.enabled = false).await;
    h.flow("id: twice\nnamespace: team\ntasks:\n  - id: first\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ execution.id }}\"\n  - id: second\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ outputs.first.value }}\"\n")
        .await;
    let ran = h.run("team", "twice").await;
    let id = ran["id"].as_str().unwrap();
    let second = ran["taskRunList"][1]["id"].as_str().unwrap();
    let client = Client::new(&h);
    let page = client.get(&format!("/ui/executions/{id}")).await;
    assert!(page.html.contains(">Replay</button>"), "{}", page.html);
    assert!(
        page.html
            .contains("Replay<span class=\"visually-hidden\"> from second</span>")
    );
    let replay = client
        .post(
            &format!("/ui/executions/{id}/replay"),
            &[("task_run", second)],
        )
        .await;
    assert_eq!(replay.status, StatusCode::SEE_OTHER, "{}", replay.html);
    let new_page = replay.location().to_owned();
    assert_ne!(new_page, format!("/ui/executions/{id}"), "a new execution");
    let new_id = new_page.trim_start_matches("/ui/executions/");
    let done = h.ended(new_id).await;
    assert_eq!(done["state"]["current"], "SUCCESS", "{done}");
    assert_eq!(
        done["taskRunList"][0]["outputs"]["value"], id,
        "first was kept"
    );
    let shown = client.get(&new_page).await;
    assert!(
        shown.html.contains(&format!("replays execution {id}")),
        "{}",
        shown.html
    );
    let bad = client
        .post(
            &format!("/ui/executions/{id}/replay"),
            &[("task_run", "nope")],
        )
        .await;
    bad.assert_redirect(&format!("/ui/executions/{id}"));
    let refused = client.get(&format!("/ui/executions/{id}")).await;
    assert!(
        refused.html.contains("no task run &#x27;nope&#x27;"),
        "{}",
        refused.html
    );
}

#[tokio::test]
async fn executions_filter_by_creation_time_and_labels_and_keep_the_filter_across_pages() {
    let h = harness().await;
    h.flow("id: tagged\nnamespace: team\nlabels:\n  env: prod\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
        .await;
    h.run("team", "tagged").await;
    let client = Client::ada(&h).await;
    let list = |query: &'static str| {
        let client = &client;
        async move {
            client
                .get(&format!("/ui/namespaces/team/executions?{query}"))
                .await
        }
    };
    let matching = list("created=hour&labels=env%3Aprod").await;
    assert!(matching.html.contains(">tagged</a>"), "{}", matching.html);
    assert!(
        matching.html.contains("value=\"env:prod\""),
        "the filter stays in its field"
    );
    let other = list("labels=env%3Adev").await;
    assert!(
        other
            .html
            .contains("No execution in team matches the filter."),
        "{}",
        other.html
    );
    let malformed = list("labels=nocolon").await;
    assert!(
        malformed
            .html
            .contains("Labels are written key:value, not &#x27;nocolon&#x27;."),
        "{}",
        malformed.html
    );
    let namespaces = client.get("/ui/namespaces").await;
    assert!(
        namespaces
            .html
            .contains("aria-label=\"Search the namespaces\"")
    );
}

#[tokio::test]
async fn the_flows_and_namespaces_lists_are_searched_and_paged_on_the_server() {
    let h = harness().await;
    for n in 0..55 {
        let id = format!("flow-{n:02}");
        let source = format!(
            "id: {id}\nnamespace: team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
        );
        h.store
            .create_flow("main", "team", &id, &source)
            .await
            .unwrap();
    }
    let client = Client::ada(&h).await;
    let rows = |html: &str| html.matches("<a href=\"/ui/flows/team/flow-").count();
    let first = client.get("/ui/namespaces/team/flows").await;
    assert_eq!(rows(&first.html), 50, "{}", first.html);
    assert!(first.html.contains("Page 1 · 55 in all"));
    assert!(first.html.contains("href=\"?page=2\""));
    let second = client.get("/ui/namespaces/team/flows?page=2").await;
    assert_eq!(rows(&second.html), 5);
    let searched = client.get("/ui/namespaces/team/flows?q=FLOW-5").await;
    assert_eq!(rows(&searched.html), 5, "flow-50 to flow-54, any case");
    assert!(
        searched.html.contains("value=\"FLOW-5\""),
        "the search stays in its field"
    );
    let none = client.get("/ui/namespaces/team/flows?q=nothing").await;
    assert!(
        none.html
            .contains("No flow of team has &ldquo;nothing&rdquo; in its id.")
    );
    let namespaces = client.get("/ui/namespaces?q=tea").await;
    assert!(namespaces.html.contains(">team</a>"), "{}", namespaces.html);
    let other = client.get("/ui/namespaces?q=zzz").await;
    assert!(
        other
            .html
            .contains("No namespace has &ldquo;zzz&rdquo; in its name.")
    );
}

#[tokio::test]
async fn an_executions_metrics_are_shown_on_its_page() {
    let h = harness().await;
    h.flow("id: counting\nnamespace: team\ntasks:\n  - id: count\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - echo '::{\"metrics\":[{\"name\":\"rows\",\"type\":\"counter\",\"value\":42,\"tags\":{\"table\":\"orders\"}}]}::'\n")
        .await;
    let ran = h.run("team", "counting").await;
    assert_eq!(ran["state"]["current"], "SUCCESS", "{ran}");
    let client = Client::ada(&h).await;
    let page = format!("/ui/executions/{}", ran["id"].as_str().unwrap());
    let logs = client.get(&page).await;
    assert!(
        !logs.html.contains("id=\"metrics\""),
        "the logs tab comes first"
    );
    assert!(
        logs.html.contains("Metrics <span class=\"count\">1</span>"),
        "the tab says how many: {}",
        logs.html
    );
    let page = client.get(&format!("{page}?tab=metrics")).await;
    assert!(
        page.html
            .contains("href=\"?tab=metrics\" aria-current=\"page\"")
    );
    let metrics = &page.html[page.html.find("id=\"metrics\"").expect("a metrics section")..];
    assert!(
        metrics.contains(">rows</th>") && metrics.contains(">42</td>"),
        "{metrics}"
    );
    assert!(metrics.contains("table=orders"), "{metrics}");
}

#[tokio::test]
async fn a_flows_revisions_show_what_changed() {
    let h = harness().await;
    let first = "id: hello\nnamespace: team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: first words\n";
    h.flow(first).await;
    let second = first.replace("first words", "second words");
    let updated = h
        .send(
            axum::http::Method::PUT,
            "/api/v1/main/flows/team/hello",
            common::Who::Admin,
            Some(("application/x-yaml", second.into_bytes())),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    let client = Client::ada(&h).await;
    let flow = client.get("/ui/flows/team/hello").await;
    assert!(flow.html.contains(">What changed</a>"), "{}", flow.html);
    let diff = client.get("/ui/flows/team/hello/revisions").await;
    assert_eq!(diff.status, StatusCode::OK);
    let removed = diff.html.find("class=\"removed\"").expect("a removed line");
    let added = diff.html.find("class=\"added\"").expect("an added line");
    assert!(removed < added, "{}", diff.html);
    assert!(diff.html[removed..added].contains("first words"));
    assert!(diff.html[added..].contains("second words"));
    let same = client
        .get("/ui/flows/team/hello/revisions?from=2&to=2")
        .await;
    assert!(same.html.contains("nothing changed"), "{}", same.html);
}
