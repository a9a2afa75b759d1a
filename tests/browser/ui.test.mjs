// kestrel's web UI in a real headless Chromium (Debian's /usr/bin/chromium), driven by
// playwright-core. This file starts nothing: crates/server/tests/ui_browser.rs runs the server
// and passes its address and a user through the environment:
//   KESTREL_URL        the server, e.g. http://127.0.0.1:41234
//   KESTREL_USER       a user who may write secrets
//   KESTREL_PASSWORD   their password
//   KESTREL_ARTIFACTS  where screenshots go (default: ./artifacts)
//   KESTREL_SETUP_URL  a second server nobody can sign in to yet (its first-run setup page)
//   KESTREL_SETUP_CODE the one-time code that server printed
//   CHROMIUM           the browser (default: /usr/bin/chromium)
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run this through crates/server/tests/ui_browser.rs`);
  }
  return value;
}

const base = required("KESTREL_URL");
const user = required("KESTREL_USER");
const password = required("KESTREL_PASSWORD");
const setupBase = required("KESTREL_SETUP_URL");
const setupCode = required("KESTREL_SETUP_CODE");
const artifacts = process.env.KESTREL_ARTIFACTS || "artifacts";
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

// As the machine's notes say: no sandbox as root, no GPU, and no background connections
// (this machine's network is closed; Chromium would keep trying).
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const NAMESPACE = "browser.team";
const KEY = "DB_PASSWORD";
const VALUE = `ui-secret-${randomBytes(9).toString("hex")}`;
const FLOW = `id: show_secret
namespace: ${NAMESPACE}
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "The password is {{ secret('${KEY}') }}"
  - id: shell
    type: io.kestra.plugin.scripts.shell.Commands
    env:
      PASSWORD: "{{ secret('${KEY}') }}"
    outputFiles: ["report.txt"]
    commands:
      - echo "the shell sees $PASSWORD"
      - echo "the report holds $PASSWORD" > report.txt
      - sleep 3
      - echo done
`;

// A flow whose task fails on its first attempt and succeeds when restarted, then a second task.
const FLAKY = `id: flaky
namespace: ${NAMESPACE}
tasks:
  - id: once
    type: io.kestra.plugin.core.log.Log
    message: "{{ taskrun.attemptsCount == 1 ? 'ok' : ko }}"
  - id: second
    type: io.kestra.plugin.core.log.Log
    message: second task
`;

// axe-core, run in the page (through the debugging protocol, so the page's CSP allows it).
const axeSource = await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** Takes a screenshot of the page, then checks it with axe-core: no serious or critical issue. */
async function shoot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const grave = result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  assert.deepEqual(grave, [], `accessibility of ${name}`);
}

/** Panics if the page, as the browser holds it now, shows the secret's value. */
async function assertNoValue(page, where) {
  const html = await page.content();
  assert.ok(!html.includes(VALUE), `the secret value is in the page (${where})`);
}

/** A browser with a fresh profile, closed when the test ends. */
async function browser(t, viewport = { width: 1366, height: 860 }) {
  const profile = await mkdtemp(join(tmpdir(), "kestrel-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: FLAGS,
    viewport,
  });
  t.after(async () => {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  });
  const page = context.pages()[0] || (await context.newPage());
  return { context, page };
}

/** Replaces the flow editor's text (CodeMirror, in the page as window.kestrelEditor). */
async function setSource(page, text, cursorAtEnd = false) {
  await page.locator("form#editor[data-editor=ready]").waitFor();
  await page.evaluate(
    ([text, atEnd]) => {
      const view = window.kestrelEditor;
      const changes = { from: 0, to: view.state.doc.length, insert: text };
      view.dispatch(atEnd ? { changes, selection: { anchor: text.length } } : { changes });
      view.focus();
    },
    [text, cursorAtEnd],
  );
}

/** The completions the editor offers at its cursor (asked with Ctrl-Space). */
async function completions(page) {
  await page.keyboard.press("Control+Space");
  const list = page.locator(".cm-tooltip-autocomplete li");
  await list.first().waitFor();
  const shown = await list.allTextContents();
  await page.keyboard.press("Escape");
  return shown;
}

test("the first admin is created on the setup page with the server's one-time code", { timeout: 60_000 }, async (t) => {
  await mkdir(artifacts, { recursive: true });
  const { page } = await browser(t);
  // Nobody can sign in yet: the login page leads to the setup page.
  await page.goto(`${setupBase}/ui/namespaces`);
  await page.waitForURL(/\/ui\/setup/);
  await page.getByLabel("One-time code").fill(setupCode);
  await page.getByLabel("User name").fill("first-admin");
  await page.getByLabel("Password", { exact: true }).fill("a long first password");
  await page.getByLabel("Password again").fill("a long first password");
  await shoot(page, "00-setup");
  await Promise.all([
    page.waitForURL(/\/ui\/namespaces$/),
    page.getByRole("button", { name: "Create the admin and sign in" }).click(),
  ]);
  await page.getByText("first-admin").first().waitFor();
  // Spent: the page is not public any more.
  await page.goto(`${setupBase}/ui/setup`);
  assert.doesNotMatch(await page.content(), /One-time code/);
});

test("secrets, flows and executions in a real browser, a secret never shown", { timeout: 300_000 }, async (t) => {
  await mkdir(artifacts, { recursive: true });
  const { context, page } = await browser(t);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const bodies = [];
  page.on("response", (response) => {
    const type = response.headers()["content-type"] || "";
    if (type.startsWith("text/html") || type.startsWith("application/json")) {
      bodies.push(response.text().catch(() => ""));
    }
  });
  // Every confirmation is accepted; each test checks what it asked.
  const dialogs = [];
  page.on("dialog", async (dialog) => {
    dialogs.push(dialog.message());
    await dialog.accept();
  });
  const violations = [];
  page.on("console", (message) => {
    if (message.type() === "error") {
      violations.push(message.text());
    }
  });

  await t.test("signing in, with the keyboard", async () => {
    await page.goto(`${base}/ui/namespaces`);
    assert.match(page.url(), /\/ui\/login\?next=/);
    await page.getByLabel("User name").fill(user);
    await page.getByLabel("Password").fill(password);
    await shoot(page, "01-login");
    await Promise.all([page.waitForURL(/\/ui\/namespaces$/), page.getByLabel("Password").press("Enter")]);
    await page.getByRole("heading", { name: "Namespaces" }).waitFor();
    await shoot(page, "02-namespaces");
  });

  await t.test("adding a secret in its dialog, and searching for it", async () => {
    await page.getByLabel("Open a namespace").fill(NAMESPACE);
    await page.getByRole("button", { name: "Open" }).click();
    await page.waitForURL(new RegExp(`/ui/namespaces/${NAMESPACE}/flows$`));
    await shoot(page, "03-namespace-flows-empty");
    await page.getByRole("navigation", { name: "Namespace" }).getByRole("link", { name: "Secrets" }).click();
    await page.waitForURL(/\/secrets$/);
    await page.getByRole("button", { name: "New secret" }).click();
    const dialog = page.getByRole("dialog", { name: "New secret" });
    await dialog.waitFor();
    await dialog.getByLabel("Key", { exact: true }).fill(KEY);
    await dialog.getByLabel("Value", { exact: true }).fill(VALUE);
    await dialog.getByLabel("Description").fill("Made in a real browser");
    await dialog.getByLabel("Tags").fill("env=test\nowner=ui");
    await shoot(page, "04-secret-dialog");
    await dialog.getByRole("button", { name: "Add secret" }).click();
    await page.getByText(`Secret ${KEY} added (version 1).`).waitFor();
    const row = page.getByRole("row", { name: new RegExp(KEY) }).first();
    await row.getByText("Made in a real browser").waitFor();
    await assertNoValue(page, "secrets tab");
    const copy = page.getByRole("button", { name: `Copy the expression for ${KEY}` });
    await copy.click();
    await page.getByRole("button", { name: "Copied" }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, `{{ secret('${KEY}') }}`);
    await page.getByRole("button", { name: `Copy the expression for ${KEY}` }).waitFor();
    // The search keeps the rows whose key, description or tags hold what is typed.
    await page.getByLabel("Search", { exact: true }).fill("owner=ui");
    assert.equal(await page.locator("#secrets-table tbody tr:not([hidden])").count(), 1);
    await page.getByLabel("Search", { exact: true }).fill("real browser");
    assert.equal(await page.locator("#secrets-table tbody tr:not([hidden])").count(), 1);
    await page.getByLabel("Search", { exact: true }).fill("no such secret");
    assert.equal(await page.locator("#secrets-table tbody tr:not([hidden])").count(), 0);
    await page.getByLabel("Search", { exact: true }).fill("");
    await shoot(page, "05-secrets-tab");
  });

  await t.test("a secret's versions: replaced, deleted, restored, one destroyed for good", async () => {
    const secretPage = `${base}/ui/namespaces/${NAMESPACE}/secrets/${KEY}`;
    await page.goto(secretPage);
    await page.getByLabel("New value").fill(`${VALUE}-second`);
    await page.getByRole("button", { name: "Replace value" }).click();
    await page.getByText("version 2").first().waitFor();
    await page.goto(secretPage);
    await page.getByRole("button", { name: `Delete ${KEY}` }).click();
    await page.getByText(`Secret ${KEY} deleted.`).waitFor();
    await page.goto(secretPage);
    await page.getByText("The latest version is deleted").waitFor();
    await page.getByRole("button", { name: "Restore version 2" }).click();
    await page.getByText(`Version 2 of ${KEY} is readable again.`).waitFor();
    const confirm = page.getByLabel(`Type ${KEY} to destroy version 1 for good`);
    await page.locator("details.destroy", { has: confirm }).locator("summary").click();
    await confirm.fill(KEY);
    await page.getByRole("button", { name: "Destroy version 1" }).click();
    await page.getByText(`Version 1 of ${KEY} destroyed for good.`).waitFor();
    await assertNoValue(page, "secret page");
    await shoot(page, "06-secret-versions");
    await page.goto(`${base}/ui/audit?namespace=${NAMESPACE}&key=${KEY}`);
    await page.locator(".action", { hasText: /undelete/i }).first().waitFor();
    await page.locator(".action", { hasText: /destroy/i }).first().waitFor();
    await shoot(page, "07-audit");
  });

  await t.test("writing a flow in the editor: completion, an inline error marker, then saving and running it", async () => {
    await page.goto(`${base}/ui/namespaces/${NAMESPACE}/flows`);
    await page.getByRole("link", { name: "New flow" }).click();
    await page.locator("form#editor[data-editor=ready]").waitFor();
    assert.ok(await page.locator(".cm-lineNumbers .cm-gutterElement").count() > 3, "line numbers");
    // Completion of task types, then of the namespace's secret keys.
    await setSource(page, `id: show_secret\nnamespace: ${NAMESPACE}\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.L`, true);
    assert.ok((await completions(page)).some((c) => c.includes("io.kestra.plugin.core.log.Log")), "task types");
    await setSource(page, `${FLOW.split("\n").slice(0, 5).join("\n")}\n    message: "{{ secret('DB`, true);
    assert.ok((await completions(page)).some((c) => c.includes(KEY)), "secret keys");
    // Without the Log task's message: the marker shows at its line while typing.
    await setSource(page, FLOW.replace(/^    message: .*\n/m, ""));
    await page.locator(".cm-lintRange-error").first().waitFor({ timeout: 10_000 });
    await page.locator(".cm-lint-marker-error").first().waitFor();
    await shoot(page, "08-flow-editor-marker");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByText("The flow is not valid").waitFor();
    await page.locator("li.bad", { hasText: "- id: log" }).waitFor();
    await shoot(page, "09-flow-invalid");
    await setSource(page, FLOW);
    await page.getByRole("button", { name: "Save" }).click();
    await page.waitForURL(new RegExp(`/ui/flows/${NAMESPACE}/show_secret$`));
    await page.getByText("saved (revision 1)").waitFor();
    await shoot(page, "10-flow");
    // Save and Run stay in view, scrolled to the top or to the bottom of the page.
    const { height } = page.viewportSize();
    for (const scrolled of [0, 5000]) {
      await page.evaluate((y) => window.scrollTo(0, y), scrolled);
      for (const name of ["Save", "Run"]) {
        const box = await page.getByRole("button", { name, exact: true }).boundingBox();
        assert.ok(box && box.y >= 0 && box.y + box.height <= height, `${name} in view at ${scrolled}`);
      }
    }
    await page.getByRole("button", { name: "Run show_secret" }).click();
    await page.waitForURL(/\/ui\/executions\//);
    const masked = page.locator("#log tr", { hasText: "The password is ******" });
    await masked.waitFor({ timeout: 20_000 });
    const live = await page.locator("#live").count();
    await page.locator("#log tr", { hasText: "the shell sees ******" }).waitFor({ timeout: 20_000 });
    await shoot(page, "11-execution-live");
    assert.equal(live, 1, "the log was followed live, while the execution ran");
    await assertNoValue(page, "live execution page");
    await page.locator("#execution-state", { hasText: "SUCCESS" }).waitFor({ timeout: 30_000 });
    await page.locator("#log tr", { hasText: "The password is ******" }).waitFor();
    await assertNoValue(page, "ended execution page");
    await shoot(page, "12-execution-ended");
    // The log filter hides what does not match, and shows it again.
    const rows = page.locator("#log tr");
    const all = await rows.count();
    await page.getByLabel("Text").fill("the shell sees");
    const visible = page.locator("#log tr:not([hidden])");
    assert.equal(await visible.count(), 1, "one entry matches the text");
    await page.getByLabel("Text").fill("");
    await page.getByLabel("Task", { exact: true }).selectOption("log");
    assert.equal(await visible.count(), 1, "one entry of the task log");
    await page.getByLabel("Task", { exact: true }).selectOption("");
    await page.getByLabel("Level").selectOption("4");
    assert.equal(await visible.count(), 0, "no ERROR entry");
    await page.getByLabel("Level").selectOption("0");
    assert.equal(await visible.count(), all, "every entry again");
    for (const tab of ["Outputs", "Metrics", "Inputs"]) {
      await page.getByRole("navigation", { name: "Execution" }).getByRole("link", { name: new RegExp(tab) }).click();
      await page.waitForURL(new RegExp(`tab=${tab.toLowerCase()}`));
      await assertNoValue(page, `${tab} tab`);
      await shoot(page, `13-execution-${tab.toLowerCase()}`);
      if (tab === "Outputs") {
        // The task's file, previewed masked.
        await page.getByRole("link", { name: /report\.txt/ }).click();
        await page.getByText("the report holds ******").waitFor();
        await assertNoValue(page, "file preview");
        await shoot(page, "13-execution-file");
        await page.goBack();
      }
    }
  });

  await t.test("a failed execution restarted, then replayed from a task", async () => {
    await page.goto(`${base}/ui/namespaces/${NAMESPACE}/flows/new`);
    await setSource(page, FLAKY);
    await page.getByRole("button", { name: "Save" }).click();
    await page.waitForURL(new RegExp(`/ui/flows/${NAMESPACE}/flaky$`));
    await page.getByRole("button", { name: "Run flaky" }).click();
    await page.waitForURL(/\/ui\/executions\//);
    const failed = page.url();
    await page.locator("#execution-state", { hasText: "FAILED" }).waitFor({ timeout: 30_000 });
    await page.getByRole("button", { name: "Restart" }).click();
    // The page follows the execution and shows its end (the notice may be gone by then: the
    // page reloads when the execution ends).
    await page.locator("#execution-state", { hasText: "SUCCESS" }).waitFor({ timeout: 30_000 });
    await page.locator("svg.bars rect.bar.failed").first().waitFor();
    await shoot(page, "14-execution-restarted");
    await page.getByRole("button", { name: "Replay from second" }).click();
    await page.waitForURL((url) => url.href !== failed && /\/ui\/executions\/\w+$/.test(url.pathname));
    await page.locator("#execution-state", { hasText: "SUCCESS" }).waitFor({ timeout: 30_000 });
    await shoot(page, "15-execution-replayed");
  });

  await t.test("lists, revisions, the audit trail and the API explorer", async () => {
    await page.goto(`${base}/ui/namespaces/${NAMESPACE}/flows`);
    await page.getByLabel("Search", { exact: true }).fill("flaky");
    assert.equal(await page.locator("#flows-table tbody tr:not([hidden])").count(), 1);
    await shoot(page, "16-namespace-flows");
    await page.goto(`${base}/ui/executions`);
    await page.getByLabel("State").selectOption("SUCCESS");
    await page.getByLabel("Created in").selectOption("hour");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/created=hour/);
    assert.ok(await page.locator("tbody tr").count() >= 2, "the successful executions of the last hour");
    await shoot(page, "17-executions");
    await page.goto(`${base}/ui/namespaces/${NAMESPACE}/executions`);
    await shoot(page, "18-namespace-executions");
    await page.goto(`${base}/ui/flows/${NAMESPACE}/flaky`);
    await setSource(page, FLAKY.replace("second task", "second task, changed"));
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByText("saved (revision 2)").waitFor();
    await page.getByRole("link", { name: "What changed" }).click();
    await page.waitForURL(/\/revisions/);
    await shoot(page, "19-revisions");
    await page.goto(`${base}/ui/audit`);
    await shoot(page, "20-audit-all");
    await page.goto(`${base}/api`);
    await shoot(page, "21-api-explorer");
    await page.goto(`${base}/ui/no/such/page`);
    await page.getByRole("navigation", { name: "Main" }).waitFor();
    await shoot(page, "22-not-found");
  });

  await t.test("deleting the secret after a confirmation", async () => {
    await page.goto(`${base}/ui/namespaces/${NAMESPACE}/secrets`);
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByText(`Secret ${KEY} deleted.`).waitFor();
    assert.match(dialogs.at(-1), new RegExp(`Delete secret ${KEY} of ${NAMESPACE}\\?`));
    assert.equal(await page.getByRole("row", { name: new RegExp(KEY) }).count(), 0);
    await shoot(page, "23-secret-deleted");
  });

  await t.test("the main pages in dark mode and on a phone", async () => {
    const executionPath = new URL(page.url()).pathname;
    await page.goto(`${base}/ui/executions?state=SUCCESS`);
    const execution = await page.locator("tbody tr a[href^='/ui/executions/']").first().getAttribute("href");
    const pages = [
      ["namespaces", "/ui/namespaces"],
      ["secrets", `/ui/namespaces/${NAMESPACE}/secrets`],
      ["flow", `/ui/flows/${NAMESPACE}/show_secret`],
      ["executions", "/ui/executions"],
      ["execution", execution || executionPath],
    ];
    await page.emulateMedia({ colorScheme: "dark" });
    for (const [name, path] of pages) {
      await page.goto(`${base}${path}`);
      await shoot(page, `24-dark-${name}`);
    }
    await page.emulateMedia({ colorScheme: "light" });
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [name, path] of pages) {
      await page.goto(`${base}${path}`);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 390, `${name} fits 390 px (${width} px wide)`);
      await shoot(page, `25-phone-${name}`);
    }
  });

  const seen = await Promise.all(bodies);
  assert.ok(seen.length > 5, "responses were seen");
  for (const body of seen) {
    assert.ok(!body.includes(VALUE), "a response held the secret value");
  }
  assert.deepEqual(violations.filter((text) => /Content Security Policy|Refused/.test(text)), [], "no CSP violation");
});
