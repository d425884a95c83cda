// The collector's dashboard (GET /) in headless Chromium, against a real collector: results go
// in over real MQTT, the page reads the HTTP API and follows live updates over server-sent events,
// with and without an API token, and without a Content-Security-Policy violation or console error.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { launchChromium } from "../helpers/browser.js";
import { ProbeClients } from "../helpers/probe-clients.js";
import { record } from "../helpers/records.js";
import { until } from "../helpers/until.js";

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), "..", "artifacts");

// One browser for the file (its launch is the slow part); each test gets its own collector,
// results and page, so that none depends on what another left behind.
let dir: string;
let browser: Browser | undefined;
let collector: Collector | undefined;
let clients: ProbeClients | undefined;
let page: Page;
let pageErrors: string[];
let consoleErrors: string[];
let published = 0;
/** The collector's --api-token in this test, if any. */
let token: string | undefined;
const TOKEN = "dash-tøken-🐈";
/** What Chromium logs for each request the collector refuses for want of the token. */
const UNAUTHORIZED_LOG = "Failed to load resource: the server responded with a status of 401 (Unauthorized)";

/** Publishes `n` results with `code` for `task`, alternating between probes edge-1 and edge-2. */
async function publish(task: string, code: number | null, n: number) {
  // All at once: the collector holds each PUBACK until its batch commits, so one by one is slow.
  await Promise.all(Array.from({ length: n }, () => {
    const probe = published % 2 ? "edge-2" : "edge-1";
    const r = record(probe, task, Date.now() - 3000 - published++, code);
    return clients!.publish(`catprobe/v1/results/${probe}/${task}`, JSON.stringify(r));
  }));
}

/** The collector's API count of results in the last hour. */
async function stored(): Promise<number> {
  const headers = token ? { authorization: `Bearer ${Buffer.from(token).toString("latin1")}` } : undefined;
  const res = await fetch(new URL("/api/top-errors?window=1h", collector!.httpUrl), { headers });
  return ((await res.json()) as { total: number }).total;
}

/** Opens the dashboard at `path` (its state lives in the query string) once it has drawn its bars. */
async function open(path = "/") {
  const res = await page.goto(new URL(path, collector!.httpUrl).href);
  await page.waitForSelector('[data-testid="bar"]', { timeout: 5000 });
  return res;
}

/** The bars of the top-errors chart as [code, count], in page order. */
const bars = () => page.$$eval('[data-testid="top-errors"] [data-testid="bar"]',
  (els) => els.map((e) => [Number(e.getAttribute("data-code")), Number(e.getAttribute("data-count"))]));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "catprobe-dashboard-"));
  browser = await launchChromium();
});

/** A collector (with `apiToken`, if given) holding the results every test starts from, and a fresh page. */
async function setUp(db: string, apiToken?: string) {
  token = apiToken;
  collector = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(dir, db), apiToken });
  clients = new ProbeClients(collector.brokerUrl);
  // redis-ping: 10 runs, 6×607, 2×603, 2 ok; smtp: 5 runs, 3×608, 2 ok
  await Promise.all([publish("redis-ping", 607, 6), publish("redis-ping", 603, 2), publish("redis-ping", null, 2),
    publish("smtp", 608, 3), publish("smtp", null, 2)]);
  await until(async () => (await stored()) === 15, "the collector to store 15 results", 5000);
  page = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  pageErrors = errors;
  page.on("pageerror", (err) => errors.push(err.message));
  // Chromium logs CSP violations as console errors; the listener names them besides.
  consoleErrors = [];
  page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });
  await page.addInitScript(() => document.addEventListener("securitypolicyviolation",
    (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`)));
}

afterEach(async () => {
  await page?.close();
  await clients?.end();
  await collector?.close();
  expect(pageErrors).toEqual([]);
  // Refused requests before the token is entered are the only errors a page may log.
  expect(consoleErrors.filter((e) => !(token && e === UNAUTHORIZED_LOG))).toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("collector dashboard", () => {
  beforeEach((ctx) => setUp(`${ctx.task.id}.db`));

  it("works without a token configured: no form, no refused request, nothing kept", async () => {
    const statuses: number[] = [];
    page.on("response", (r) => statuses.push(r.status()));
    await open();
    expect(await bars()).toEqual([[607, 6], [608, 3], [603, 2]]);
    expect(await page.isVisible('[data-testid="token-form"]')).toBe(false);
    await page.waitForSelector('[data-testid="live"].on', { timeout: 5000 });
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  });

  it("shows the top five errors, the success rate and the task table", async () => {
    const res = await open();
    expect(res?.status()).toBe(200);
    expect(res?.headers()["content-type"]).toMatch(/^text\/html/);

    expect(await bars()).toEqual([[607, 6], [608, 3], [603, 2]]);
    const label = await page.textContent('[data-testid="bar"][data-code="607"]');
    expect(label).toContain("Failed to verify the keyword.");
    expect(label).toContain("54.5%"); // 6 of 11 failures
    expect(await page.textContent('[data-testid="success-rate"]')).toContain("26.7"); // 4 of 15
    expect(await page.isVisible('[data-testid="empty"]')).toBe(false);

    const table = page.locator('[data-testid="tasks-table"]');
    await expect.poll(() => table.locator("tr[data-task]").evaluateAll(
      (rows) => rows.map((r) => r.getAttribute("data-task")))).toEqual(["redis-ping", "smtp"]);
    const redis = await table.locator('tr[data-task="redis-ping"]').innerText();
    expect(redis).toMatch(/redis-ping\s+10\s+8\s+20%/);
    expect(redis).toContain("607");

    const options = await page.locator('[data-testid="task"] option').evaluateAll(
      (opts) => opts.map((o) => (o as HTMLOptionElement).value));
    expect(options).toEqual(["", "redis-ping", "smtp"]);
    expect(await page.inputValue('[data-testid="window"]')).toBe("1h");
  });

  it("filters by task", async () => {
    await open();
    await page.selectOption('[data-testid="task"]', "smtp");
    await expect.poll(bars, { timeout: 5000 }).toEqual([[608, 3]]);
    expect(await page.textContent('[data-testid="success-rate"]')).toContain("40");
    expect(await page.locator('[data-testid="tasks-table"] tr[data-task]').count()).toBe(1);
  });

  it("switches the window", async () => {
    await open();
    const refetched = page.waitForResponse((r) => r.url().includes("/api/top-errors?window=5m"), { timeout: 5000 });
    await page.selectOption('[data-testid="window"]', "5m");
    await refetched;
    await expect.poll(bars, { timeout: 5000 }).toEqual([[607, 6], [608, 3], [603, 2]]); // all 3 s old
    expect(await page.isVisible('[data-testid="empty"]')).toBe(false);
  });

  it("updates live when new results arrive, without a reload", async () => {
    await open("/?task=smtp&window=5m");
    await expect.poll(bars, { timeout: 5000 }).toEqual([[608, 3]]);
    await page.waitForSelector('[data-testid="live"].on', { timeout: 5000 });
    expect(await page.textContent('[data-testid="live"]')).toContain("live");
    await page.evaluate(() => { (window as unknown as { marker: number }).marker = 42; });

    await publish("smtp", 601, 4);
    await expect.poll(bars, { timeout: 5000, interval: 100 }).toEqual([[601, 4], [608, 3]]);
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    expect(await page.textContent('[data-testid="success-rate"]')).toContain("22.2"); // 2 of 9

    await page.selectOption('[data-testid="task"]', "");
    await expect.poll(bars, { timeout: 5000 }).toEqual([[607, 6], [601, 4], [608, 3], [603, 2]]);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "dashboard.png") });
  });

  it("shows the empty state when the window holds no results", async () => {
    await page.goto(new URL("/?window=5m&task=no-such-task", collector!.httpUrl).href);
    await page.waitForSelector('[data-testid="empty"]', { state: "visible", timeout: 5000 });
    expect(await page.textContent('[data-testid="empty"]')).toContain("no results in this window");
    expect(await page.locator('[data-testid="bar"]').count()).toBe(0);
  });
});

describe("collector dashboard with an API token", () => {
  beforeEach((ctx) => setUp(`${ctx.task.id}.db`, TOKEN));

  /** Types `value` into the token form the page shows, and submits it. */
  async function enterToken(value: string) {
    await page.waitForSelector('[data-testid="token-form"]', { state: "visible", timeout: 5000 });
    await page.fill('[data-testid="token"]', value);
    await page.click('[data-testid="token-submit"]');
  }

  it("asks for the token, sends it as a header, keeps it for the tab and never puts it in the address bar", async () => {
    const urls: string[] = [];
    page.on("request", (r) => urls.push(r.url()));
    await page.goto(new URL("/?window=1h", collector!.httpUrl).href);
    await enterToken(TOKEN);
    await page.waitForSelector('[data-testid="bar"]', { timeout: 5000 });
    expect(await bars()).toEqual([[607, 6], [608, 3], [603, 2]]);
    expect(await page.isVisible('[data-testid="token-form"]')).toBe(false);
    await page.waitForSelector('[data-testid="live"].on', { timeout: 5000 });

    // Live updates come through the token-bearing stream.
    await publish("smtp", 601, 4);
    await expect.poll(bars, { timeout: 5000, interval: 100 }).toEqual([[607, 6], [601, 4], [608, 3], [603, 2]]);

    await page.selectOption('[data-testid="task"]', "smtp");
    await expect.poll(bars, { timeout: 5000 }).toEqual([[601, 4], [608, 3]]);
    expect(page.url()).toMatch(/\?window=1h&task=smtp$/);
    expect(await page.evaluate(() => sessionStorage.getItem("catprobe-api-token"))).toBe(TOKEN);

    // A reload in the same tab needs no second asking.
    await page.reload();
    await page.waitForSelector('[data-testid="bar"]', { timeout: 5000 });
    expect(await page.isVisible('[data-testid="token-form"]')).toBe(false);

    const encoded = [TOKEN, encodeURIComponent(TOKEN), "t%C3%B8ken", "tøken"];
    for (const url of [page.url(), ...urls]) for (const e of encoded) expect(url).not.toContain(e);
  });

  it("asks again when the token is refused", async () => {
    await page.goto(collector!.httpUrl);
    await enterToken("not-the-token");
    await page.waitForSelector('[data-testid="token-form"] .error:not([hidden])', { timeout: 5000 });
    expect(await page.locator('[data-testid="bar"]').count()).toBe(0);
    await enterToken(TOKEN);
    await page.waitForSelector('[data-testid="bar"]', { timeout: 5000 });
    expect(await bars()).toEqual([[607, 6], [608, 3], [603, 2]]);
    expect(page.url()).not.toContain("token");
  });
});
