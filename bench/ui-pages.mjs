// Measures the flow editor and an execution page in headless Chromium: bytes transferred and
// first contentful paint, cold cache each time (bench/ui.sh starts the server).
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const base = process.env.KESTREL_URL;
const runs = Number(process.env.RUNS || 20);
const pages = {
  "flow editor": "/ui/flows/company.team/secretTest",
  "execution page": `/ui/executions/${process.env.KESTREL_EXECUTION}`,
};
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: FLAGS });
const context = await browser.newContext();
const page = await context.newPage();
await page.goto(`${base}/ui/login`);
await page.getByLabel("User name").fill("bench");
await page.getByLabel("Password").fill("bench-ui-password-1");
await page.getByRole("button", { name: "Sign in" }).click();
await page.waitForURL(/\/ui\/namespaces/);
const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const [name, path] of Object.entries(pages)) {
  const paints = [];
  const readies = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.clearBrowserCache");
    let transferred = 0;
    cdp.on("Network.loadingFinished", (event) => { transferred += event.encodedDataLength; });
    await cdp.send("Network.enable");
    await page.goto(`${base}${path}`, { waitUntil: "load" });
    const paint = await page.evaluate(() => new Promise((resolve) => {
      new PerformanceObserver((list) => {
        const entry = list.getEntriesByName("first-contentful-paint")[0];
        if (entry) resolve(entry.startTime);
      }).observe({ type: "paint", buffered: true });
      setTimeout(() => resolve(NaN), 5000);
    }));
    paints.push(paint);
    const ready = await page.evaluate(() => {
      const mark = performance.getEntriesByName("kestrel-editor-ready")[0];
      return mark ? mark.startTime : NaN;
    });
    if (!Number.isNaN(ready)) {
      readies.push(ready);
    }
    bytes = transferred;
    await cdp.detach();
  }
  const interactive = readies.length ? `; editor ready median ${median(readies).toFixed(1)} ms` : "";
  console.log(`${name}: first contentful paint median ${median(paints).toFixed(1)} ms over ${runs} cold loads${interactive}; ${(bytes / 1024).toFixed(1)} KiB transferred`);
}
await browser.close();
