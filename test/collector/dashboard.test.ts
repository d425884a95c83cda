// The collector's dashboard (GET /) in headless Chromium, against a real collector: results go
// in over real MQTT, the page reads the HTTP API and follows live updates over server-sent events.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import mqtt, { type MqttClient } from "mqtt";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), "..", "artifacts");

let dir: string;
let collector: Collector | undefined;
let client: MqttClient | undefined;
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];

let seq = 0;
/** One result record (DESIGN.md "Result record"), `code` null for a success. */
function record(probe: string, task: string, code: number | null) {
  const ts = Date.now() - 3000 - seq;
  return {
    v: 1, id: `${probe}/${task}/${ts}/${seq++}`, probe, task, ts, ok: code === null, code,
    step: code === null ? null : 0, message: code === null ? null : `injected ${code}`,
    timings: { dnsMs: 0.4, connectMs: 0.3, tlsMs: task === "smtp" ? 4.2 : null, sendMs: 0.05,
      firstByteMs: 1.2, receiveMs: 0.1, totalMs: 2.4 },
    bytesSent: 6, bytesReceived: code === null ? 7 : 0,
  };
}

/** Publishes `n` results with `code` for `task`, alternating between probes edge-1 and edge-2. */
async function publish(task: string, code: number | null, n: number) {
  for (let i = 0; i < n; i++) {
    const probe = seq % 2 ? "edge-2" : "edge-1";
    await client!.publishAsync(`catprobe/v1/results/${probe}/${task}`, JSON.stringify(record(probe, task, code)), { qos: 1 });
  }
}

/** Waits until the collector's API counts `total` results (ingest is asynchronous). */
async function untilStored(total: number) {
  const deadline = Date.now() + 5000;
  let seen = -1;
  while (Date.now() < deadline) {
    const res = await fetch(new URL("/api/top-errors?window=1h", collector!.httpUrl));
    seen = ((await res.json()) as { total: number }).total;
    if (seen === total) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the collector stored ${seen} results, expected ${total}`);
}

/** The bars of the top-errors chart as [code, count], in page order. */
const bars = () => page.$$eval('[data-testid="top-errors"] [data-testid="bar"]',
  (els) => els.map((e) => [Number(e.getAttribute("data-code")), Number(e.getAttribute("data-count"))]));

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error("Chromium not found: apt-get install chromium");
  dir = mkdtempSync(join(tmpdir(), "catprobe-dashboard-"));
  collector = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(dir, "results.db") });
  client = await mqtt.connectAsync(collector.brokerUrl, { protocolVersion: 4 });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("pageerror", (err) => pageErrors.push(err.message));

  // redis-ping: 10 runs, 6×607, 2×603, 2 ok; smtp: 5 runs, 3×608, 2 ok
  await publish("redis-ping", 607, 6);
  await publish("redis-ping", 603, 2);
  await publish("redis-ping", null, 2);
  await publish("smtp", 608, 3);
  await publish("smtp", null, 2);
  await untilStored(15);
});

afterAll(async () => {
  await browser?.close();
  await client?.endAsync();
  await collector?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("collector dashboard", () => {
  it("shows the top five errors, the success rate and the task table", async () => {
    const res = await page.goto(collector!.httpUrl);
    expect(res?.status()).toBe(200);
    expect(res?.headers()["content-type"]).toMatch(/^text\/html/);
    await page.waitForSelector('[data-testid="bar"]', { timeout: 5000 });

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
    await page.selectOption('[data-testid="task"]', "smtp");
    await expect.poll(bars, { timeout: 5000 }).toEqual([[608, 3]]);
    expect(await page.textContent('[data-testid="success-rate"]')).toContain("40");
    expect(await page.locator('[data-testid="tasks-table"] tr[data-task]').count()).toBe(1);
  });

  it("switches the window", async () => {
    const refetched = page.waitForResponse((r) => r.url().includes("/api/top-errors?window=5m"), { timeout: 5000 });
    await page.selectOption('[data-testid="window"]', "5m");
    await refetched;
    await expect.poll(bars, { timeout: 5000 }).toEqual([[608, 3]]);
    expect(await page.isVisible('[data-testid="empty"]')).toBe(false);
  });

  it("updates live when new results arrive, without a reload", async () => {
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
    const empty = await browser!.newPage();
    await empty.goto(new URL("/?window=5m&task=no-such-task", collector!.httpUrl).href);
    await empty.waitForSelector('[data-testid="empty"]', { state: "visible", timeout: 5000 });
    expect(await empty.textContent('[data-testid="empty"]')).toContain("no results in this window");
    expect(await empty.locator('[data-testid="bar"]').count()).toBe(0);
    await empty.close();
    expect(pageErrors).toEqual([]);
  });
});
