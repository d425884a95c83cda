// The dashboard's alerts panel in headless Chromium against a real collector with --alerts:
// a firing alert (non-ASCII rule name and summary) shows, then shows resolved; without
// --alerts the panel stays hidden; no CSP violation, no page or console error either way.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { launchChromium } from "../helpers/browser.js";
import { ProbeClients } from "../helpers/probe-clients.js";
import { many } from "../helpers/records.js";
import { until } from "../helpers/until.js";
import { WebhookReceiver } from "../helpers/webhook-receiver.js";

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

async function openPage(url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  page.on("console", (msg) => { if (msg.type() === "error") errors.push(msg.text()); });
  await page.addInitScript(() => document.addEventListener("securitypolicyviolation",
    (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`)));
  await page.goto(url);
  return { page, errors };
}

describe("dashboard alerts panel", () => {
  it("lists a firing alert, then the same alert resolved", async () => {
    const dir = mkdtempSync(join(tmpdir(), "catprobe-alertdash-"));
    const hook = await WebhookReceiver.start();
    const rules = join(dir, "alerts.json");
    writeFileSync(rules, JSON.stringify({ webhooks: [hook.url], evaluationInterval: "250ms",
      rules: [{ name: "Störung ✓ 検査", window: "1m", when: { successRateBelow: 0.5 }, annotations: { summary: "{{task}} fällt aus — 障害" } }] }));
    const collector: Collector = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(dir, "c.db"), alerts: rules });
    const clients = new ProbeClients(collector.brokerUrl);
    try {
      const now = Date.now() - 2000;
      await clients.publish("catprobe/v1/results/edge-1/redis", JSON.stringify(many(3, "edge-1", "redis", now, 607)));
      await until(() => hook.received.length === 1, "the firing notification");
      const { page, errors } = await openPage(`${collector.httpUrl}/`);
      const row = page.getByTestId("alert");
      await row.first().waitFor({ timeout: 10_000 });
      expect(await page.getByTestId("alerts-view").isVisible()).toBe(true);
      expect(await row.count()).toBe(1);
      expect(await row.getAttribute("data-status")).toBe("firing");
      const text = await row.innerText();
      for (const part of ["firing", "Störung ✓ 検査", "redis", "edge-1", "redis fällt aus — 障害"]) expect(text).toContain(part);

      await clients.publish("catprobe/v1/results/edge-1/redis", JSON.stringify(many(5, "edge-1", "redis", now + 10, null)));
      await until(() => hook.received.length === 2, "the resolution");
      await page.reload();
      await page.locator('[data-testid="alert"][data-status="resolved"]').waitFor({ timeout: 10_000 });
      expect(await row.count()).toBe(1);
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await clients.end();
      await collector.close();
      await hook.stop();
    }
  });

  it("stays hidden without --alerts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "catprobe-alertdash-"));
    const collector = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(dir, "c.db") });
    try {
      const { page, errors } = await openPage(`${collector.httpUrl}/`);
      await page.waitForResponse((r) => r.url().includes("/api/alerts"));
      await page.waitForTimeout(300);
      expect(await page.getByTestId("alerts-view").isVisible()).toBe(false);
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await collector.close();
    }
  });
});
