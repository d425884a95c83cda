// Alerts through the real pipeline: a collector with `alerts` (an embedded broker, its
// database), results and probe statuses published over MQTT as probes publish them, and a
// webhook receiver on loopback. An alert fires once, repeats at repeatInterval, resolves once;
// each kind of rule and scope; a receiver that is down and then up gets the notification once.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import type { StoredRecord } from "../../host/wire/record.js";
import { ProbeClients } from "../helpers/probe-clients.js";
import { many, record } from "../helpers/records.js";
import { until } from "../helpers/until.js";
import { WebhookReceiver } from "../helpers/webhook-receiver.js";

const EVERY_MS = 250;
const REPEAT_MS = 2000;
const results = (probe: string, task: string) => `catprobe/v1/results/${probe}/${task}`;
const status = (probe: string, state: "online" | "offline", labels: Record<string, string>) => JSON.stringify({
  v: 1, probe, state, ts: Date.now(), labels, appliedVersion: null, configError: null, spooled: 0, dropped: 0, software: "catprobe/test",
});

function rulesFile(rules: unknown): string {
  const file = join(mkdtempSync(join(tmpdir(), "catprobe-alertrules-")), "alerts.json");
  writeFileSync(file, JSON.stringify(rules, null, 2));
  return file;
}

async function alertsApi(c: Collector) {
  return (await (await fetch(`${c.httpUrl}/api/alerts`)).json()) as {
    enabled: boolean; firing: { rule: string; labels: Record<string, string>; startsAt: number }[];
    resolved: { rule: string; labels: Record<string, string>; endsAt: number }[];
    delivery: { sent: number; failures: number; pending: number };
  };
}

describe("alerts through the collector", () => {
  let hook: WebhookReceiver;
  let collector: Collector;
  let clients: ProbeClients;
  const RATE = "Erfolgsquote ↓ 成功率";

  beforeAll(async () => {
    hook = await WebhookReceiver.start();
    collector = await startCollector({
      mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(mkdtempSync(join(tmpdir(), "catprobe-alertpipe-")), "c.db"),
      alerts: rulesFile({
        webhooks: [hook.url], evaluationInterval: `${EVERY_MS}ms`, repeatInterval: "1h",
        rules: [
          { name: RATE, task: "t1", window: "1m", minRuns: 3, when: { successRateBelow: 0.5 }, repeatInterval: `${REPEAT_MS}ms`,
            annotations: { summary: "{{task}} auf {{probe}}: Erfolgsquote {{value}} — prüfen ✓" } },
          { name: "608 at plant-3", label: "site:plant-3", window: "1m", when: { code: 608, countAtLeast: 3 } },
          { name: "offline", probe: "p4", when: { probeOfflineFor: "1s" } },
          { name: "cert", task: "t3", when: { certDaysLeftBelow: 14 } },
        ],
      }),
    });
    clients = new ProbeClients(collector.brokerUrl);
  });
  afterAll(async () => {
    await clients?.end();
    await collector?.close();
    await hook?.stop();
  });

  const of = (rule: string) => hook.received.filter((r) => r.body.groupLabels.alertname === rule);

  it("fires once when the condition starts to hold, repeats every repeatInterval, resolves once when it stops", async () => {
    const now = Date.now();
    await clients.publish(results("p1", "t1"), JSON.stringify(many(2, "p1", "t1", now, 607)));
    await new Promise((r) => setTimeout(r, 3 * EVERY_MS));
    expect(of(RATE)).toEqual([]); // 2 runs: fewer than minRuns
    await clients.publish(results("p1", "t1"), JSON.stringify(many(2, "p1", "t1", now + 10, 607)));
    await until(() => of(RATE).length === 3, "the firing and two repeats", 15_000);
    const firing = of(RATE);
    expect(firing.map((r) => r.body.status)).toEqual(["firing", "firing", "firing"]);
    const alert = firing[0].body.alerts[0];
    expect(alert.labels).toEqual({ alertname: RATE, task: "t1", probe: "p1" });
    expect(alert.annotations.summary).toBe("t1 auf p1: Erfolgsquote 0 — prüfen ✓");
    expect(alert.annotations.description).toContain("0 of 4 runs succeeded in the last 1m");
    expect(alert.generatorURL).toBe(`${collector.httpUrl}/?window=5m&task=t1&probe=p1`);
    expect(firing[0].body.externalURL).toBe(collector.httpUrl);
    for (const r of firing) expect(r.body.alerts.map((a) => [a.fingerprint, a.startsAt])).toEqual([[alert.fingerprint, alert.startsAt]]);
    // each repeat one repeatInterval after the one before, to within an evaluation interval (and delivery)
    for (let i = 1; i < firing.length; i++) {
      const gap = firing[i].at - firing[i - 1].at;
      expect(gap).toBeGreaterThanOrEqual(REPEAT_MS - 100);
      expect(gap).toBeLessThan(REPEAT_MS + EVERY_MS + 750);
    }
    expect(new Set(firing.map((r) => r.key)).size).toBe(3);
    expect((await alertsApi(collector)).firing.filter((a) => a.rule === RATE)).toHaveLength(1);

    const before = of(RATE).length;
    await clients.publish(results("p1", "t1"), JSON.stringify(many(10, "p1", "t1", now + 20, null))); // 10 of 14: 0.71
    await until(() => of(RATE).some((r) => r.body.status === "resolved"), "the resolution", 15_000);
    // nothing more: neither a second resolution nor a repeat, over more than a repeatInterval
    await new Promise((r) => setTimeout(r, REPEAT_MS + 4 * EVERY_MS));
    const after = of(RATE).slice(before);
    expect(after.map((r) => r.body.status).filter((s) => s === "firing").length).toBeLessThanOrEqual(1); // a repeat due just before
    expect(after.filter((r) => r.body.status === "resolved")).toHaveLength(1);
    expect(after.at(-1)!.body.status).toBe("resolved");
    const resolved = after.at(-1)!.body.alerts[0];
    expect(resolved).toMatchObject({ status: "resolved", fingerprint: alert.fingerprint, startsAt: alert.startsAt });
    expect(Date.parse(resolved.endsAt)).toBeGreaterThan(Date.parse(alert.startsAt));
    const api = await alertsApi(collector);
    expect(api.enabled).toBe(true);
    expect(api.firing.filter((a) => a.rule === RATE)).toEqual([]);
    expect(api.resolved.filter((a) => a.rule === RATE).map((a) => a.labels)).toEqual([alert.labels]);
    const metrics = await (await fetch(`${collector.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/catprobe_alert_notifications_total\{result="sent"\} [1-9]/);
    expect(metrics).toContain('catprobe_alert_notifications_total{result="gave_up"} 0');
  });

  it("counts a code on the probes of a label, sees an offline probe and an expiring certificate", async () => {
    const now = Date.now();
    await clients.publish("catprobe/v1/status/p2", status("p2", "online", { site: "plant-3" }));
    await clients.publish("catprobe/v1/status/p3", status("p3", "online", { site: "plant-4" }));
    await until(async () => (await (await fetch(`${collector.httpUrl}/api/probes`)).json() as unknown[]).length >= 2, "the probes");
    await clients.publish(results("p2", "t2"), JSON.stringify(many(3, "p2", "t2", now, 608)));
    await clients.publish(results("p3", "t2"), JSON.stringify(many(5, "p3", "t2", now, 608)));
    const tls = (r: StoredRecord): StoredRecord => ({ ...r, tls: { version: "TLSv1.3", subject: "CN=shop.example", issuer: "CN=Test CA",
      notAfter: new Date(now + 5.2 * 86_400_000).toISOString(), daysLeft: 5 } });
    await clients.publish(results("p2", "t3"), JSON.stringify(tls(record("p2", "t3", now, null))));
    await clients.publish("catprobe/v1/status/p4", status("p4", "offline", {}));
    await until(() => of("608 at plant-3").length > 0 && of("cert").length > 0 && of("offline").length > 0, "three alerts", 15_000);
    await new Promise((r) => setTimeout(r, 3 * EVERY_MS));
    expect(of("608 at plant-3").flatMap((r) => r.body.alerts.map((a) => a.labels)))
      .toEqual([{ alertname: "608 at plant-3", task: "t2", probe: "p2", code: "608" }]);
    expect(of("cert").flatMap((r) => r.body.alerts.map((a) => a.annotations.summary))).toEqual(["t3 on p2: certificate expires in 5.1 days"]);
    const offline = of("offline");
    expect(offline).toHaveLength(1);
    expect(offline[0].body.alerts[0].labels).toEqual({ alertname: "offline", probe: "p4" });
    // it was offline for the whole second before it fired
    expect(Date.parse(offline[0].body.alerts[0].startsAt)).toBeGreaterThanOrEqual(now + 1000 - 50);

    await clients.publish("catprobe/v1/status/p4", status("p4", "online", {}));
    await until(() => of("offline").length === 2, "the probe back online");
    expect(of("offline")[1].body.status).toBe("resolved");
  });
});

describe("alerts to a webhook that is down, then up", () => {
  it("retries with back-off and delivers the notification once", async () => {
    const probe = await WebhookReceiver.start();
    const port = probe.port;
    await probe.stop(); // nobody listens there yet
    const collector = await startCollector({
      mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(mkdtempSync(join(tmpdir(), "catprobe-alertdown-")), "c.db"),
      alerts: rulesFile({ webhooks: [`http://127.0.0.1:${port}/hook`], evaluationInterval: `${EVERY_MS}ms`,
        delivery: { backoff: "100ms", maxBackoff: "400ms" },
        rules: [{ name: "down", window: "1m", when: { code: 601, countAtLeast: 1 } }] }),
    });
    const clients = new ProbeClients(collector.brokerUrl);
    let hook: WebhookReceiver | undefined;
    try {
      await clients.publish(results("p1", "t1"), JSON.stringify(record("p1", "t1", Date.now(), 601)));
      await until(async () => (await alertsApi(collector)).delivery.failures >= 3, "three failed attempts");
      hook = await WebhookReceiver.start(port);
      await until(() => hook!.received.length === 1, "the delivery");
      await new Promise((r) => setTimeout(r, 6 * EVERY_MS));
      expect(hook.received).toHaveLength(1);
      expect(hook.received[0].body.alerts[0].labels).toEqual({ alertname: "down", task: "t1", probe: "p1", code: "601" });
      const api = await alertsApi(collector);
      expect(api.delivery).toMatchObject({ sent: 1, pending: 0 });
      expect(api.delivery.failures).toBeGreaterThanOrEqual(3);
    } finally {
      await clients.end();
      await collector.close();
      await hook?.stop();
    }
  });

  it("answers GET /api/alerts without --alerts", async () => {
    const collector = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0",
      db: join(mkdtempSync(join(tmpdir(), "catprobe-alertnone-")), "c.db") });
    try {
      expect(await (await fetch(`${collector.httpUrl}/api/alerts`)).json()).toEqual({ enabled: false, firing: [], resolved: [] });
    } finally {
      await collector.close();
    }
  });
});
