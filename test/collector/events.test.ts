// Live updates (GET /api/events) survive a crowd of idle connections: a new client takes the
// place of the oldest, so no dashboard is locked out, and a dashboard whose stream fails polls
// the API instead. Real collector, real MQTT, plain HTTP clients and headless Chromium.

import { mkdtempSync } from "node:fs";
import { get, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { MAX_EVENT_CLIENTS } from "../../host/collector/http.js";
import { launchChromium } from "../helpers/browser.js";
import { ProbeClients } from "../helpers/probe-clients.js";
import { many } from "../helpers/records.js";
import { until } from "../helpers/until.js";

let collector: Collector;
let clients: ProbeClients;
const streams: IncomingMessage[] = [];

beforeAll(async () => {
  collector = await startCollector({ db: join(mkdtempSync(join(tmpdir(), "catprobe-events-")), "c.db"), http: "127.0.0.1:0", mqttListen: "127.0.0.1:0" });
  clients = new ProbeClients(collector.brokerUrl);
});
afterEach(() => {
  for (const s of streams.splice(0)) s.destroy();
});
afterAll(async () => {
  await clients.end();
  await collector.close();
});

/** Opens /api/events on a connection of its own; resolves with the response once headers arrive. */
function openEvents(): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    get(`${collector.httpUrl}/api/events`, { agent: false }, (res) => {
      streams.push(res);
      resolve(res);
    }).on("error", reject);
  });
}

async function openIdle(n: number): Promise<IncomingMessage[]> {
  const idle: IncomingMessage[] = [];
  for (let i = 0; i < n; i++) idle.push(await openEvents());
  return idle;
}

/** Everything a stream delivers, as it arrives. */
function collect(res: IncomingMessage): { text: string; ended: boolean } {
  const seen = { text: "", ended: false };
  res.setEncoding("utf8");
  res.on("data", (chunk: string) => { seen.text += chunk; });
  res.on("end", () => { seen.ended = true; });
  return seen;
}

/** Publishes `n` results of `code` over MQTT, as a probe does. */
async function publish(task: string, code: number | null, n = 1): Promise<void> {
  await clients.publish(`catprobe/v1/results/edge-1/${task}`, JSON.stringify(many(n, "edge-1", task, Date.now() - 1000, code)));
}

describe("the event stream", () => {
  it(`a new client gets in past ${MAX_EVENT_CLIENTS} idle ones, closing the oldest, and receives results`, async () => {
    const idle = await openIdle(MAX_EVENT_CLIENTS + 20);
    expect(idle.every((res) => res.statusCode === 200)).toBe(true);

    const fresh = await openEvents();
    expect(fresh.statusCode).toBe(200);
    expect(fresh.headers["content-type"]).toBe("text/event-stream");
    const live = collect(fresh);

    // The 21 longest connected made room; each was told when to come back.
    const oldest = collect(idle[20]);
    await until(() => oldest.ended, "the oldest clients to be closed", 5000);
    expect(oldest.text).toBe(": connected\n\nretry: 30000\n\n");
    const kept = collect(idle[21]);

    await publish("t1", 607);
    await until(() => live.text.includes("event: results"), "event: results on the new client", 5000);
    expect(live.text).toContain('event: results\ndata: {"count":1}\n\n');
    await until(() => kept.text.includes("event: results"), "event: results on a kept client", 5000);
    expect(kept.ended).toBe(false);
  });
});

describe("the dashboard", () => {
  let browser: Browser;
  let page: Page;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterEach(() => page?.close());
  afterAll(() => browser?.close());

  const count = (code: number) => page.locator(`[data-testid="bar"][data-code="${code}"]`).getAttribute("data-count", { timeout: 500 }).catch(() => null);

  it(`goes live past ${MAX_EVENT_CLIENTS} idle event connections and updates on the event`, async () => {
    await openIdle(MAX_EVENT_CLIENTS);
    page = await browser.newPage();
    await page.goto(collector.httpUrl);
    await page.waitForSelector('[data-testid="live"].on', { timeout: 5000 });
    await publish("t2", 601, 3);
    await expect.poll(() => count(601), { timeout: 2500, interval: 100 }).toBe("3"); // the event, not the 10 s poll
  });

  it("polls every few seconds while its event stream fails, so it still updates", async () => {
    page = await browser.newPage();
    await page.route("**/api/events", (route) => route.abort());
    await page.goto(collector.httpUrl);
    await page.waitForSelector("#updated:not(:empty)", { timeout: 5000 }); // the first load
    expect(await page.textContent('[data-testid="live"]')).toContain("polling");
    await publish("t3", 603, 2);
    await expect.poll(() => count(603), { timeout: 4500, interval: 100 }).toBe("2");
  });
});
