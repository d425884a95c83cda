// The collector's dashboard (GET /) in headless Chromium, against a real collector: results go
// in over real MQTT, the page reads the HTTP API and follows live updates over server-sent events,
// with and without an API token, and without a Content-Security-Policy violation or console error.
// The probes view, the task/probe/label filters kept in the address bar and the latest failures
// read a fleet whose probes publish their own statuses and a task set PUT to /api/tasks.

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

/** Publishes `n` results of `probe` with `code`, `step` and `message`, one second old. */
async function publishAs(probe: string, task: string, code: number | null, n: number, step: number | null, message: string | null) {
  await Promise.all(Array.from({ length: n }, (_, i) => {
    const r = { ...record(probe, task, Date.now() - 1000 - i, code), step, message };
    return clients!.publish(`catprobe/v1/results/${probe}/${task}`, JSON.stringify(r));
  }));
}

/** The token header of this test's collector, if it has one. */
const authorization = (): Record<string, string> =>
  token ? { authorization: `Bearer ${Buffer.from(token).toString("latin1")}` } : {};

/** The collector's API answer at `path`. */
async function apiGet<T>(path: string): Promise<T> {
  const res = await fetch(new URL(path, collector!.httpUrl), { headers: authorization() });
  return (await res.json()) as T;
}

/** The collector's API count of results in the last hour. */
const stored = async () => (await apiGet<{ total: number }>("/api/top-errors?window=1h")).total;

/** A non-ASCII label value: the filter must carry it percent-encoded as UTF-8. */
const ZURICH = "Zürich-北";
const SCRIPT_MESSAGE = "<script>window.pwned = 1</script> refused & <b>reset</b>";
const CONFIG_ERROR = 'steps[0].verify "<b>kind</b>": unknown kind';

/** A status as probe `probe`'s own client publishes it (host/wire/status.ts ProbeStatus). */
async function status(probe: string, state: "online" | "offline", labels: Record<string, string>, extra: Record<string, unknown>) {
  await clients!.publish(`catprobe/v1/status/${probe}`, JSON.stringify({
    v: 1, probe, state, ts: Date.now(), labels, appliedVersion: null, configError: null, spooled: 0, dropped: 0,
    software: "catprobe/test", ...extra,
  }));
}

const task = (id: string, extra: Record<string, unknown> = {}) =>
  ({ id, target: { host: "127.0.0.1", port: 9 }, steps: [{ verify: "none" }], ...extra });

async function putTasks(tasks: unknown[]): Promise<number> {
  const res = await fetch(new URL("/api/tasks", collector!.httpUrl), { method: "PUT", headers: authorization(), body: JSON.stringify({ tasks }) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { version: number }).version;
}

/**
 * A fleet on top of the results every test starts from: a task set at version 2 (smtp only for
 * edge-3 and the Zürich site), and four probes reporting their status:
 * edge-1 online at Zürich, up to date, 3 spooled; edge-2 online at plant-3, behind (version 1),
 * 5 dropped; edge-3 offline at plant-3, in error, with 2 failures (605, the <script> message);
 * edge-4 online at plant-3, no version applied yet, no runs.
 */
async function fleet() {
  await putTasks([task("redis-ping")]);
  expect(await putTasks([task("redis-ping"), task("smtp", { assign: { probes: ["edge-3"], labels: { site: ZURICH } } })])).toBe(2);
  await Promise.all([
    status("edge-1", "online", { site: ZURICH, rack: "a" }, { appliedVersion: 2, spooled: 3 }),
    status("edge-2", "online", { site: "plant-3" }, { appliedVersion: 1, dropped: 5 }),
    status("edge-3", "offline", { site: "plant-3" }, { appliedVersion: 1, configError: CONFIG_ERROR }),
    status("edge-4", "online", { site: "plant-3" }, {}),
    publishAs("edge-3", "smtp", 605, 2, 1, SCRIPT_MESSAGE),
  ]);
  await until(async () => (await apiGet<unknown[]>("/api/probes")).length === 4 && (await stored()) === 17,
    "the collector to know 4 probes and store 17 results", 5000);
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

/** The probes view's rows as { probe: cells }, in page order. */
async function probeRows(): Promise<Record<string, Record<string, string>>> {
  return Object.fromEntries(await page.$$eval('[data-testid="probes-table"] tbody tr[data-probe]', (rows) => rows.map((r) => {
    const cell = (id: string) => (r.querySelector(`[data-testid="${id}"]`)?.textContent ?? "").trim();
    return [r.getAttribute("data-probe")!, {
      state: cell("state"), lastSeen: cell("last-seen"), labels: [...r.querySelectorAll("[data-label]")].map((l) => l.textContent).join(" "),
      version: cell("version"), warning: r.getAttribute("data-warning") ?? "", spooled: cell("spooled"), dropped: cell("dropped"),
      runs: cell("runs"), rate: cell("probe-rate"), top: cell("probe-top"),
    }];
  })));
}
const probeIds = async () => Object.keys(await probeRows());
const taskIds = () => page.locator('[data-testid="tasks-table"] tr[data-task]').evaluateAll((rows) => rows.map((r) => r.getAttribute("data-task")));
/** The latest failures as [probe, task] pairs, newest first. */
const failureRows = () => page.$$eval('[data-testid="failures-table"] tbody tr', (rows) => rows.map((r) => [r.getAttribute("data-probe"), r.getAttribute("data-task")]));
/** Every panel of the view at once: bars, success rate, tasks, probes and failures. */
async function panels() {
  const failures = await failureRows();
  return {
    bars: await bars(), rate: (await page.textContent('[data-testid="success-rate"]'))?.trim(), tasks: await taskIds(),
    probes: await probeIds(), failureProbes: [...new Set(failures.map(([p]) => p))].sort(),
    failureTasks: [...new Set(failures.map(([, t]) => t))].sort(), failures: failures.length,
  };
}
/** The view once it has loaded every panel: the probes view has its rows. */
async function openFleet(path = "/") {
  await open(path);
  await page.waitForSelector('[data-testid="probes-table"] tbody tr[data-probe]', { timeout: 5000 });
}

const ALL = {
  bars: [[607, 6], [608, 3], [603, 2], [605, 2]], rate: "23.5%", tasks: ["redis-ping", "smtp"],
  probes: ["edge-1", "edge-2", "edge-3", "edge-4"], failureProbes: ["edge-1", "edge-2", "edge-3"], failureTasks: ["redis-ping", "smtp"], failures: 13,
};
const ZURICH_ONLY = {
  bars: [[607, 3], [608, 2], [603, 1]], rate: "25%", tasks: ["redis-ping", "smtp"],
  probes: ["edge-1"], failureProbes: ["edge-1"], failureTasks: ["redis-ping", "smtp"], failures: 6,
};
const ZURICH_SMTP = { bars: [[608, 2]], rate: "33.3%", tasks: ["smtp"], probes: ["edge-1"], failureProbes: ["edge-1"], failureTasks: ["smtp"], failures: 2 };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "catprobe-dashboard-"));
  browser = await launchChromium();
});

/** A collector (with `apiToken`, if given) holding the results every test starts from, and a fresh page. */
async function setUp(db: string, apiToken?: string) {
  token = apiToken;
  published = 0; // edge-1 and edge-2 get the same results in every test
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

describe("collector dashboard: probes, filters and latest failures", () => {
  beforeEach(async (ctx) => {
    await setUp(`${ctx.task.id}.db`);
    await fleet();
  });

  it("shows each probe's state, last seen, labels, versions (a warning for one behind, one in error), backlog, success rate and top error", async () => {
    await openFleet();
    const rows = await probeRows();
    expect(Object.keys(rows)).toEqual(["edge-1", "edge-2", "edge-3", "edge-4"]);
    expect(rows["edge-1"]).toMatchObject({ state: "online", labels: `rack:a site:${ZURICH}`, version: "2 / 2✓", warning: "",
      spooled: "3", dropped: "0", runs: "8", rate: "25%", top: "607" });
    expect(rows["edge-2"]).toMatchObject({ state: "online", labels: "site:plant-3", version: "1 / 2behind", warning: "behind",
      spooled: "0", dropped: "5", runs: "7", rate: "28.6%", top: "607" });
    expect(rows["edge-3"]).toMatchObject({ state: "offline", version: `1 / 2error${CONFIG_ERROR}behind`, warning: "error",
      runs: "2", rate: "0%", top: "605" });
    // no version applied while a set exists is behind too; no runs, no rate
    expect(rows["edge-4"]).toMatchObject({ state: "online", version: "– / 2behind", warning: "behind", runs: "0", rate: "–", top: "–" });
    for (const r of Object.values(rows)) expect(r.lastSeen).toMatch(/^\d+ s ago$/);
    const title = await page.getAttribute('tr[data-probe="edge-1"] [data-testid="last-seen"]', "title");
    expect(title).toMatch(String(new Date().getFullYear()));
    // the configuration error is text: its markup is not parsed
    expect(await page.textContent('tr[data-probe="edge-3"] [data-testid="config-error"]')).toBe(CONFIG_ERROR);
    expect(await page.locator('[data-testid="config-error"] b').count()).toBe(0);
    expect(await page.isVisible('tr[data-probe="edge-2"] [data-testid="behind"]')).toBe(true);
    expect(await page.isVisible('tr[data-probe="edge-3"] [data-testid="config-error-warning"]')).toBe(true);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-probes.png"), fullPage: true });
  });

  it("filters every panel by probe, by task and by a non-ASCII label, kept in the address bar across a reload; clearing works", async () => {
    await openFleet();
    expect(await panels()).toEqual(ALL);

    // by probe, from the select
    await page.selectOption('[data-testid="probe"]', "edge-3");
    await expect.poll(panels, { timeout: 5000 }).toEqual({ bars: [[605, 2]], rate: "0%", tasks: ["smtp"], probes: ["edge-3"],
      failureProbes: ["edge-3"], failureTasks: ["smtp"], failures: 2 });
    expect(new URL(page.url()).search).toBe("?window=1h&probe=edge-3");
    await page.reload();
    await page.waitForSelector('[data-testid="bar"][data-code="605"]', { timeout: 5000 });
    await expect.poll(probeIds, { timeout: 5000 }).toEqual(["edge-3"]);
    expect((await panels()).bars).toEqual([[605, 2]]);
    expect(await page.inputValue('[data-testid="probe"]')).toBe("edge-3");
    await page.click('[data-testid="filters"] [data-clear="probe"]');
    await expect.poll(panels, { timeout: 5000 }).toEqual(ALL);
    expect(new URL(page.url()).search).toBe("?window=1h");
    expect(await page.isVisible('[data-testid="filters"]')).toBe(false);

    // by task: the probes view keeps the probes with runs of it or assigned it (not edge-4)
    await page.selectOption('[data-testid="task"]', "smtp");
    await expect.poll(panels, { timeout: 5000 }).toEqual({ bars: [[608, 3], [605, 2]], rate: "28.6%", tasks: ["smtp"],
      probes: ["edge-1", "edge-2", "edge-3"], failureProbes: ["edge-1", "edge-2", "edge-3"], failureTasks: ["smtp"], failures: 5 });
    await page.selectOption('[data-testid="task"]', "");
    await expect.poll(panels, { timeout: 5000 }).toEqual(ALL);

    // by a non-ASCII label, from its chip in the probes view
    await page.click(`tr[data-probe="edge-1"] [data-label="site:${ZURICH}"]`);
    await expect.poll(panels, { timeout: 5000 }).toEqual(ZURICH_ONLY);
    const search = new URL(page.url()).search;
    expect(search).toBe(`?window=1h&label=site:${encodeURIComponent(ZURICH)}`);
    expect(new URLSearchParams(search).getAll("label")).toEqual([`site:${ZURICH}`]);
    // and the task on top of it
    await page.click('[data-testid="tasks-table"] tr[data-task="smtp"]');
    await expect.poll(panels, { timeout: 5000 }).toEqual(ZURICH_SMTP);
    expect(new URL(page.url()).search).toBe(`?window=1h&task=smtp&label=site:${encodeURIComponent(ZURICH)}`);
    await page.reload();
    await page.waitForSelector('[data-testid="bar"]', { timeout: 5000 });
    await expect.poll(panels, { timeout: 5000 }).toEqual(ZURICH_SMTP);
    expect(await page.inputValue('[data-testid="task"]')).toBe("smtp");
    expect(await page.locator('[data-testid="filters"] [data-clear]').allTextContents()).toEqual(["task smtp ×", `label site:${ZURICH} ×`]);

    // clearing one filter keeps the other
    await page.click('[data-testid="filters"] [data-clear="task"]');
    await expect.poll(panels, { timeout: 5000 }).toEqual(ZURICH_ONLY);
    await page.click('[data-testid="clear-filters"]');
    await expect.poll(panels, { timeout: 5000 }).toEqual(ALL);
    expect(new URL(page.url()).search).toBe("?window=1h");
  });

  it("opens a shared link with a label typed as is or percent-encoded, and takes labels from the label field (all must match)", async () => {
    await openFleet(`/?label=site:${ZURICH}`);
    await expect.poll(panels, { timeout: 5000 }).toEqual(ZURICH_ONLY);
    await openFleet(`/?window=1h&label=${encodeURIComponent(`site:${ZURICH}`)}`);
    await expect.poll(panels, { timeout: 5000 }).toEqual(ZURICH_ONLY);
    await page.click('[data-testid="clear-filters"]');
    await expect.poll(panels, { timeout: 5000 }).toEqual(ALL);

    await page.fill('[data-testid="label-input"]', "site:plant-3");
    await page.press('[data-testid="label-input"]', "Enter");
    await expect.poll(probeIds, { timeout: 5000 }).toEqual(["edge-2", "edge-3", "edge-4"]);
    await expect.poll(bars, { timeout: 5000 }).toEqual([[607, 3], [605, 2], [603, 1], [608, 1]]);
    // a second label narrows further: every pair must match
    await page.fill('[data-testid="label-input"]', "rack:a");
    await page.click('[data-testid="label-add"]');
    await expect.poll(probeIds, { timeout: 5000 }).toEqual([]);
    await page.waitForSelector('[data-testid="empty"]', { state: "visible", timeout: 5000 });
    expect(new URLSearchParams(new URL(page.url()).search).getAll("label")).toEqual(["site:plant-3", "rack:a"]);
    await page.click('[data-testid="filters"] [data-value="rack:a"]');
    await expect.poll(probeIds, { timeout: 5000 }).toEqual(["edge-2", "edge-3", "edge-4"]);
  });

  it("lists the latest failures, newest first, with time, probe, task, code, step and message as text", async () => {
    await openFleet();
    const rows = page.locator('[data-testid="failures-table"] tbody tr');
    await expect.poll(() => rows.count(), { timeout: 5000 }).toBe(13);
    const cells = await rows.evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    expect(cells[0].slice(1)).toEqual(["edge-3", "smtp", "605", "1", SCRIPT_MESSAGE]);
    expect(cells[0][0]).toMatch(/^\d\d:\d\d:\d\d$/);
    expect(cells.slice(2).every((c) => c[4] === "0" && c[5] === `fault ${c[3]}`)).toBe(true);
    expect(await page.locator('[data-testid="failures-table"] script, [data-testid="failures-table"] b').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    // at most 20, from the API with the filters
    const asked = page.waitForRequest((r) => r.url().includes("/api/results?") && r.url().includes("probe=edge-1"), { timeout: 5000 });
    await page.selectOption('[data-testid="probe"]', "edge-1");
    const url = new URL((await asked).url());
    expect(Object.fromEntries(url.searchParams)).toEqual({ window: "1h", probe: "edge-1", code: "failed", limit: "20" });
    await expect.poll(() => rows.count(), { timeout: 5000 }).toBe(6);
  });

  it("shows every probe's top error from one summary request, however many probes fail", async () => {
    const probes = Array.from({ length: 12 }, (_, i) => `p-${String(i + 1).padStart(2, "0")}`);
    await Promise.all(probes.map((p) => publishAs(p, "redis-ping", 601, 1, 0, "refused")));
    await until(async () => (await stored()) === 29, "the collector to store 29 results", 5000);
    const asked: string[] = [];
    page.on("request", (r) => { if (r.url().includes("/api/top-errors?")) asked.push(r.url()); });
    await openFleet();
    await until(async () => Object.keys(await probeRows()).length === 16, "16 probe rows", 5000);
    const rows = await probeRows();
    expect(rows["edge-1"].top).toBe("607");
    expect(rows["p-01"]).toMatchObject({ state: "no status", runs: "1", rate: "0%", top: "601" });
    expect(Object.entries(rows).filter(([, r]) => r.top === "601").map(([p]) => p)).toEqual(expect.arrayContaining(probes));
    expect(asked.every((u) => !new URL(u).searchParams.has("probe"))).toBe(true); // no request per probe
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
  it("shows the probes, filters by label and lists failures with the token, across a reload", async () => {
    await fleet();
    const urls: string[] = [];
    page.on("request", (r) => urls.push(r.url()));
    await page.goto(new URL(`/?label=site:${ZURICH}`, collector!.httpUrl).href);
    await enterToken(TOKEN);
    await page.waitForSelector('[data-testid="probes-table"] tbody tr[data-probe]', { timeout: 5000 });
    await expect.poll(panels, { timeout: 5000 }).toEqual(ZURICH_ONLY);
    expect((await probeRows())["edge-1"]).toMatchObject({ state: "online", version: "2 / 2✓", spooled: "3", top: "607" });
    await page.selectOption('[data-testid="task"]', "smtp");
    await expect.poll(panels, { timeout: 5000 }).toEqual(ZURICH_SMTP);
    await page.reload();
    await page.waitForSelector('[data-testid="probes-table"] tbody tr[data-probe]', { timeout: 5000 });
    expect(await page.isVisible('[data-testid="token-form"]')).toBe(false);
    await expect.poll(panels, { timeout: 5000 }).toEqual(ZURICH_SMTP);
    await page.click('[data-testid="clear-filters"]');
    await expect.poll(panels, { timeout: 5000 }).toEqual(ALL);
    expect(await page.locator('[data-testid="failure-message"]').first().textContent()).toBe(SCRIPT_MESSAGE);
    for (const url of [page.url(), ...urls]) expect(url).not.toContain(encodeURIComponent(TOKEN));
  });
});
