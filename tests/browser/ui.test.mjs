// kestrel's web UI in a real headless Chromium (Debian's /usr/bin/chromium), driven by
// playwright-core. This file starts nothing: crates/server/tests/ui_browser.rs runs the server
// and passes its address and a user through the environment:
//   KESTREL_URL        the server, e.g. http://127.0.0.1:41234
//   KESTREL_USER       a user who may write secrets
//   KESTREL_PASSWORD   their password
//   KESTREL_ARTIFACTS  where screenshots go (default: ./artifacts)
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
    commands:
      - echo "the shell sees $PASSWORD"
      - sleep 3
      - echo done
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

test("a namespace secret added in the UI is masked in a flow's live log, then deleted", { timeout: 120_000 }, async (t) => {
  await mkdir(artifacts, { recursive: true });
  const profile = await mkdtemp(join(tmpdir(), "kestrel-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: FLAGS,
    viewport: { width: 1366, height: 860 },
  });
  t.after(async () => {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const page = context.pages()[0] || (await context.newPage());
  const bodies = [];
  page.on("response", (response) => {
    const type = response.headers()["content-type"] || "";
    if (type.startsWith("text/html") || type.startsWith("application/json")) {
      bodies.push(response.text().catch(() => ""));
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

  await t.test("adding a secret on the namespace's Secrets tab", async () => {
    await page.getByLabel("Open a namespace").fill(NAMESPACE);
    await page.getByRole("button", { name: "Open" }).click();
    await page.waitForURL(new RegExp(`/ui/namespaces/${NAMESPACE}/flows$`));
    await page.getByRole("navigation", { name: "Namespace" }).getByRole("link", { name: "Secrets" }).click();
    await page.waitForURL(/\/secrets$/);
    await page.getByText("New secret").click();
    await page.getByLabel("Key", { exact: true }).fill(KEY);
    await page.getByLabel("Value", { exact: true }).fill(VALUE);
    await page.getByLabel("Description").fill("Made in a real browser");
    await page.getByLabel("Tags").fill("env=test\nowner=ui");
    await page.getByRole("button", { name: "Add secret" }).click();
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
    await page.getByLabel("Search", { exact: true }).fill("no such secret");
    assert.equal(await page.locator("#secrets-table tbody tr:not([hidden])").count(), 0);
    await page.getByLabel("Search", { exact: true }).fill("");
    await shoot(page, "03-secrets-tab");
  });

  await t.test("creating a flow that logs it, and running it", async () => {
    await page.getByRole("link", { name: "Flows" }).first().click();
    await page.getByRole("link", { name: "New flow" }).click();
    // First without the Log task's message: the violation is shown at its line.
    await page.getByLabel("Flow YAML").fill(FLOW.replace(/^    message: .*\n/m, ""));
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByText("The flow is not valid").waitFor();
    await page.locator("li.bad", { hasText: "- id: log" }).waitFor();
    await page.locator("a[data-line]").first().click();
    await shoot(page, "04-flow-invalid");
    await page.getByLabel("Flow YAML").fill(FLOW);
    await page.getByRole("button", { name: "Save" }).click();
    await page.waitForURL(new RegExp(`/ui/flows/${NAMESPACE}/show_secret$`));
    await page.getByText("saved (revision 1)").waitFor();
    await shoot(page, "05-flow");
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
    await shoot(page, "06-execution-live");
    assert.equal(live, 1, "the log was followed live, while the execution ran");
    await assertNoValue(page, "live execution page");
    await page.locator("#execution-state", { hasText: "SUCCESS" }).waitFor({ timeout: 30_000 });
    await page.locator("#log tr", { hasText: "The password is ******" }).waitFor();
    await assertNoValue(page, "ended execution page");
    await shoot(page, "07-execution-ended");
    // The log filter hides what does not match, and shows it again.
    const rows = page.locator("#log tr");
    const all = await rows.count();
    await page.getByLabel("Text").fill("the shell sees");
    const visible = page.locator("#log tr:not([hidden])");
    assert.equal(await visible.count(), 1, "one entry matches the text");
    await page.getByLabel("Text").fill("");
    await page.getByLabel("Level").selectOption("4");
    assert.equal(await visible.count(), 0, "no ERROR entry");
    await page.getByLabel("Level").selectOption("0");
    assert.equal(await visible.count(), all, "every entry again");
  });

  await t.test("deleting the secret after a confirmation", async () => {
    await page.goto(`${base}/ui/namespaces/${NAMESPACE}/secrets`);
    page.once("dialog", (dialog) => {
      assert.match(dialog.message(), new RegExp(`Delete secret ${KEY} of ${NAMESPACE}\\?`));
      dialog.accept();
    });
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByText(`Secret ${KEY} deleted.`).waitFor();
    assert.equal(await page.getByRole("row", { name: new RegExp(KEY) }).count(), 0);
    await shoot(page, "08-secret-deleted");
  });

  await t.test("the main pages in dark mode and on a phone", async () => {
    const pages = [
      ["namespaces", "/ui/namespaces"],
      ["secrets", `/ui/namespaces/${NAMESPACE}/secrets`],
      ["flow", `/ui/flows/${NAMESPACE}/show_secret`],
      ["executions", "/ui/executions"],
    ];
    await page.emulateMedia({ colorScheme: "dark" });
    for (const [name, path] of pages) {
      await page.goto(`${base}${path}`);
      await shoot(page, `09-dark-${name}`);
    }
    await page.emulateMedia({ colorScheme: "light" });
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [name, path] of pages) {
      await page.goto(`${base}${path}`);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 390, `${name} fits 390 px (${width} px wide)`);
      await shoot(page, `10-phone-${name}`);
    }
  });

  const seen = await Promise.all(bodies);
  assert.ok(seen.length > 5, "responses were seen");
  for (const body of seen) {
    assert.ok(!body.includes(VALUE), "a response held the secret value");
  }
});
