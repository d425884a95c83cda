// The alert engine on a real database (SqliteDb) and a real webhook receiver, with the stored
// results stood in for by a source the test sets: each kind of rule and scope, fire once /
// repeat / resolve once, retries with back-off, the bounded outbox, and state and outbox kept
// across an engine restart (nothing lost, nothing sent twice).

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { errorCodeInfo } from "../../host/codes.js";
import { AlertEngine } from "../../host/collector/alerts/alerts.js";
import type { AlertSource, CountRow, ProbeRow, TlsRow } from "../../host/collector/alerts/evaluate.js";
import { parseRules } from "../../host/collector/alerts/rules.js";
import { shownUrl } from "../../host/collector/alerts/webhook-sender.js";
import { SqliteDb } from "../../host/collector/db/sqlite.js";
import { until } from "../helpers/until.js";
import { WebhookReceiver } from "../helpers/webhook-receiver.js";

class FakeSource implements AlertSource {
  rows: CountRow[] = [];
  probeRows: ProbeRow[] = [];
  tls: TlsRow[] = [];
  fail = false;
  async counts(_from: number, _to: number, scope: { task?: string; probe?: string }) {
    if (this.fail) throw new Error("database gone");
    return this.rows.filter((r) => (!scope.task || r.task === scope.task) && (!scope.probe || r.probe === scope.probe));
  }
  async probes() {
    return this.probeRows;
  }
  async latestTls() {
    return this.tls;
  }
}

const dbFile = () => join(mkdtempSync(join(tmpdir(), "catprobe-alerts-")), "c.db");
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

function rulesFor(webhooks: string[], rules: unknown[], extra: Record<string, unknown> = {}) {
  return parseRules("alerts.json", JSON.stringify({ rules, webhooks, evaluationInterval: "1h", ...extra }));
}

async function engine(db: SqliteDb, source: AlertSource, rules: ReturnType<typeof rulesFor>, log: string[] = []) {
  const e = await AlertEngine.start({ rules, db, source, externalURL: "http://collector.test", log: (l) => log.push(l) });
  open.push(e);
  return e;
}

async function receiver(): Promise<WebhookReceiver> {
  const r = await WebhookReceiver.start();
  open.push({ close: () => r.stop() });
  return r;
}

const quiet = () => new Promise((r) => setTimeout(r, 300));

describe("alert engine", () => {
  it("fires once per task/probe, repeats at repeatInterval, resolves once; the payload is Alertmanager's", async () => {
    const hook = await receiver();
    const db = new SqliteDb(dbFile());
    open.push(db);
    const source = new FakeSource();
    source.rows = [
      { task: "redis", probe: "edge-1", code: 0, n: 1 }, { task: "redis", probe: "edge-1", code: 607, n: 3 },
      { task: "redis", probe: "edge-2", code: 0, n: 10 },
      // below the rate but fewer runs than minRuns: no alert
      { task: "smtp", probe: "edge-1", code: 601, n: 2 },
    ];
    const rules = rulesFor([hook.url], [{ name: "Störung ✓ 検査", window: "5m", minRuns: 3, when: { successRateBelow: 0.9 },
      repeatInterval: "1s", labels: { severity: "critical" },
      annotations: { runbook: "Prüfe {{task}} auf {{probe}}: {{value}} < {{threshold}} ({{runs}} Läufe)" } }]);
    const e = await engine(db, source, rules);
    await until(() => hook.received.length === 1, "the firing notification");
    const n = hook.received[0].body;
    expect(n).toMatchObject({
      version: "4", status: "firing", receiver: "catprobe", groupKey: '{}:{alertname="Störung ✓ 検査"}',
      groupLabels: { alertname: "Störung ✓ 検査" }, externalURL: "http://collector.test", truncatedAlerts: 0,
      commonLabels: { alertname: "Störung ✓ 検査", task: "redis", probe: "edge-1", severity: "critical" },
    });
    expect(n.alerts).toHaveLength(1);
    const a = n.alerts[0];
    expect(a.labels).toEqual({ alertname: "Störung ✓ 検査", task: "redis", probe: "edge-1", severity: "critical" });
    expect(a.annotations.summary).toBe("redis on edge-1: success rate 25% below 90%");
    expect(a.annotations.description).toContain("1 of 4 runs succeeded in the last 5m (success rate 0.25, threshold 0.9, at least 3 runs)");
    expect(a.annotations.description).toContain("607");
    expect(a.annotations.runbook).toBe("Prüfe redis auf edge-1: 0.25 < 0.9 (4 Läufe)");
    expect(a.endsAt).toBe("0001-01-01T00:00:00Z");
    expect(a.generatorURL).toBe("http://collector.test/?window=5m&task=redis&probe=edge-1");
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(Date.parse(a.startsAt)).toBeGreaterThan(Date.now() - 10_000);

    source.rows[0].n = 2; // 2 of 5: still below, other figures
    await e.evaluate(); // within repeatInterval: nothing sent, the figures kept
    await quiet();
    expect(hook.received).toHaveLength(1);
    expect((await e.view()).firing.map((f) => f.annotations.summary)).toEqual(["redis on edge-1: success rate 40% below 90%"]);
    await new Promise((r) => setTimeout(r, 1000));
    await e.evaluate(); // repeatInterval passed: sent again, same alert
    await until(() => hook.received.length === 2, "the repeat");
    expect(hook.received[1].body.alerts[0]).toMatchObject({ status: "firing", fingerprint: a.fingerprint, startsAt: a.startsAt });
    expect(hook.received[1].key).not.toBe(hook.received[0].key);

    source.rows[0].n = 30; // 30 of 33 succeed: 0.909
    await e.evaluate();
    await until(() => hook.received.length === 3, "the resolution");
    const resolved = hook.received[2].body;
    expect(resolved.status).toBe("resolved");
    expect(resolved.alerts[0]).toMatchObject({ status: "resolved", fingerprint: a.fingerprint, startsAt: a.startsAt });
    expect(Date.parse(resolved.alerts[0].endsAt)).toBeGreaterThanOrEqual(Date.parse(a.startsAt));
    await new Promise((r) => setTimeout(r, 1000));
    await e.evaluate();
    await e.evaluate();
    await quiet();
    expect(hook.received).toHaveLength(3); // resolved once

    const view = await e.view();
    expect(view.firing).toEqual([]);
    expect(view.resolved).toHaveLength(1);
    expect(view.delivery).toMatchObject({ sent: 3, failures: 0, pending: 0 });
  });

  it("counts a code per task and probe, offline probes, expiring certificates, scoped by label", async () => {
    const hook = await receiver();
    const db = new SqliteDb(dbFile());
    open.push(db);
    const source = new FakeSource();
    const now = Date.now();
    source.probeRows = [
      { probe: "edge-1", state: "online", labels: { site: "plant-3" }, lastSeen: now },
      { probe: "edge-2", state: "offline", labels: { site: "plant-3" }, lastSeen: now - 10 * 60_000 },
      { probe: "edge-3", state: "offline", labels: { site: "plant-4" }, lastSeen: now - 10 * 60_000 },
      { probe: "edge-4", state: "offline", labels: { site: "plant-3" }, lastSeen: now - 30_000 },
      // "online", but silent for longer than 2m + three status intervals: its connection is gone
      { probe: "edge-5", state: "online", labels: { site: "plant-3" }, lastSeen: now - 6 * 60_000 },
      { probe: "edge-6", state: "online", labels: { site: "plant-3" }, lastSeen: now - 4 * 60_000 },
    ];
    source.rows = [
      { task: "redis", probe: "edge-1", code: 608, n: 3 }, { task: "redis", probe: "edge-3", code: 608, n: 5 },
      { task: "redis", probe: "edge-1", code: 607, n: 9 },
    ];
    source.tls = [
      { task: "https", probe: "edge-1", ts: now, tls: { version: "TLSv1.3", subject: "CN=shop.example", issuer: "CN=CA", notAfter: new Date(now + 3.55 * 86_400_000).toISOString(), daysLeft: 3 } },
      { task: "https", probe: "edge-2", ts: now, tls: { version: "TLSv1.3", subject: "CN=ok.example", issuer: "CN=CA", notAfter: new Date(now + 90 * 86_400_000).toISOString(), daysLeft: 90 } },
      { task: "https", probe: "edge-3", ts: now, tls: { version: null, subject: null, issuer: null, notAfter: null, daysLeft: 2 } },
    ];
    const rules = rulesFor([hook.url], [
      { name: "tls-handshake", label: "site:plant-3", when: { code: 608, countAtLeast: 3 } },
      { name: "offline", label: "site:plant-3", when: { probeOfflineFor: "2m" } },
      { name: "cert", when: { certDaysLeftBelow: 14 } },
    ]);
    await engine(db, source, rules);
    await until(() => hook.received.length === 3, "three notifications");
    const byRule = Object.fromEntries(hook.received.map((r) => [r.body.groupLabels.alertname, r.body]));
    expect(byRule["tls-handshake"].alerts.map((a) => a.labels)).toEqual([
      { alertname: "tls-handshake", task: "redis", probe: "edge-1", code: "608" }]);
    expect(byRule["tls-handshake"].alerts[0].annotations.summary).toBe(`redis on edge-1: 3 × 608 ${errorCodeInfo(608).definition} in 5m`);
    expect(byRule.offline.alerts.map((a) => a.labels)).toEqual([{ alertname: "offline", probe: "edge-2" }, { alertname: "offline", probe: "edge-5" }]);
    expect(byRule.offline.alerts[0].annotations.summary).toBe("probe edge-2 offline for 10 min");
    expect(byRule.offline.alerts[1].annotations.description).toMatch(/^probe edge-5 is online but silent since /);
    expect(byRule.cert.alerts.map((a) => a.labels.probe).sort()).toEqual(["edge-1", "edge-3"]);
    const cert = byRule.cert.alerts.find((a) => a.labels.probe === "edge-1")!;
    expect(cert.annotations.summary).toBe("https on edge-1: certificate expires in 3.5 days");
    expect(cert.annotations.description).toContain("CN=shop.example");
    expect(byRule.cert.commonLabels).toEqual({ alertname: "cert", task: "https" });
  });

  it("a rule that cannot be evaluated neither fires nor resolves", async () => {
    const hook = await receiver();
    const db = new SqliteDb(dbFile());
    open.push(db);
    const source = new FakeSource();
    source.rows = [{ task: "t", probe: "p", code: 601, n: 5 }];
    const log: string[] = [];
    const e = await engine(db, source, rulesFor([hook.url], [{ name: "r", when: { successRateBelow: 0.5 } }]), log);
    await until(() => hook.received.length === 1, "the firing");
    source.fail = true;
    await e.evaluate();
    await quiet();
    expect(hook.received).toHaveLength(1);
    expect((await e.view()).firing).toHaveLength(1);
    expect(log.join("\n")).toContain('rule "r": cannot evaluate: database gone');
  });

  it("retries a refusing webhook with back-off and delivers once; gives up after the attempts, counted and logged", async () => {
    const hook = await receiver();
    hook.failWith = 503;
    const db = new SqliteDb(dbFile());
    open.push(db);
    const source = new FakeSource();
    source.rows = [{ task: "t", probe: "p", code: 601, n: 5 }];
    const log: string[] = [];
    const e = await engine(db, source, rulesFor([hook.url], [{ name: "r", when: { successRateBelow: 0.5 } }],
      { delivery: { attempts: 20, backoff: "50ms", maxBackoff: "400ms" } }), log);
    await until(() => hook.refused >= 4, "four refused attempts");
    const started = Date.now();
    hook.failWith = undefined;
    await until(() => hook.received.length === 1, "the delivery");
    expect(Date.now() - started).toBeLessThan(1500); // the back-off is capped at 400 ms
    await quiet();
    expect(hook.received).toHaveLength(1);
    expect(e.stats.failures).toBe(hook.refused);
    expect(e.stats.sent).toBe(1);
    expect(log.filter((l) => l.includes("failed: HTTP 503"))).toHaveLength(hook.refused);
    expect(log[0]).toBe(`alerts: 1 rule(s) from alerts.json, evaluated every 3600000 ms; notifications to ${hook.url}`);
    expect(log[1]).toMatch(/attempt 1 of 20 failed: HTTP 503; next in 50 ms/);
    expect(shownUrl("https://bot:s3cret@chat.example/hook")).toBe("https://bot:***@chat.example/hook");

    // A webhook nobody listens on: three attempts, then given up.
    const gone = await WebhookReceiver.start();
    const url = gone.url;
    await gone.stop();
    const db2 = new SqliteDb(dbFile());
    open.push(db2);
    const log2: string[] = [];
    const e2 = await engine(db2, source, rulesFor([url], [{ name: "r", when: { successRateBelow: 0.5 } }],
      { delivery: { attempts: 3, backoff: "20ms" } }), log2);
    await until(() => e2.stats.gaveUp === 1, "giving up");
    expect(e2.stats.failures).toBe(3);
    expect(log2.at(-1)).toMatch(/gave up after 3 attempts/);
    expect((await e2.view()).delivery.pending).toBe(0);
  });

  it("bounds the outbox: beyond maxPending the oldest notifications are dropped, counted and logged", async () => {
    const hook = await receiver();
    hook.failWith = 500;
    const db = new SqliteDb(dbFile());
    open.push(db);
    const source = new FakeSource();
    const log: string[] = [];
    const e = await engine(db, source, rulesFor([hook.url], [{ name: "r", when: { successRateBelow: 0.5 } }],
      { delivery: { attempts: 100, backoff: "10s", maxPending: 2 } }), log);
    for (const probe of ["a", "b", "c", "d"]) {
      source.rows.push({ task: "t", probe, code: 601, n: 5 });
      await e.evaluate();
    }
    const view = await e.view();
    expect(view.firing).toHaveLength(4);
    expect(view.delivery.pending).toBe(2);
    expect(e.stats.dropped).toBe(2);
    expect(log.filter((l) => l.includes("dropped the 1 oldest"))).toHaveLength(2);
  });

  it("keeps alert state and undelivered notifications across a restart: sent after it, once; no second firing", async () => {
    const spare = await WebhookReceiver.start();
    const port = spare.port;
    await spare.stop(); // nobody listens while the first engine runs
    const file = dbFile();
    const source = new FakeSource();
    source.rows = [{ task: "t", probe: "p", code: 601, n: 5 }];
    const rules = rulesFor([`http://127.0.0.1:${port}/hook`], [{ name: "r", when: { successRateBelow: 0.5 } }],
      { delivery: { backoff: "100ms" } });
    const db1 = new SqliteDb(file);
    const e1 = await AlertEngine.start({ rules, db: db1, source });
    await until(() => e1.stats.failures >= 1, "a failed attempt");
    await e1.close();
    await db1.close();

    const hook = await WebhookReceiver.start(port);
    open.push({ close: () => hook.stop() });
    const db2 = new SqliteDb(file);
    open.push(db2);
    const e2 = await engine(db2, source, rules);
    await until(() => hook.received.length === 1, "the notification due before the restart");
    await e2.evaluate();
    await new Promise((r) => setTimeout(r, 500));
    expect(hook.received).toHaveLength(1);
    expect(hook.received[0].body.status).toBe("firing");
    await e2.close();
    open.splice(open.indexOf(e2), 1);

    // A third start: delivered already, so nothing goes again.
    const e3 = await engine(db2, source, rules);
    await e3.evaluate();
    await new Promise((r) => setTimeout(r, 500));
    expect(hook.received).toHaveLength(1);
    // and the resolution after the restarts goes once
    source.rows = [{ task: "t", probe: "p", code: 0, n: 5 }];
    await e3.evaluate();
    await until(() => hook.received.length === 2, "the resolution");
    expect(hook.received[1].body.status).toBe("resolved");
  });

  it("refuses a delivery.timeout that would outlast the alert lease", () => {
    const rule = [{ name: "r", when: { successRateBelow: 0.5 } }];
    // lease 30 s (evaluationInterval 5s): a POST may take at most 30 s less one interval
    expect(rulesFor(["http://a"], rule, { evaluationInterval: "5s", delivery: { timeout: "25s" } }).delivery.timeoutMs).toBe(25_000);
    for (const timeout of ["30s", "26s", "1h"]) {
      expect(() => rulesFor(["http://a"], rule, { evaluationInterval: "5s", delivery: { timeout } }))
        .toThrow(`alerts.json: delivery.timeout: must be at most 25000 ms, the alert lease (30000 ms) less one evaluationInterval (got "${timeout}")`);
    }
    // a longer interval, a longer lease (3 intervals)
    expect(() => rulesFor(["http://a"], rule, { evaluationInterval: "1m", delivery: { timeout: "2m" } })).not.toThrow();
    expect(() => rulesFor(["http://a"], rule, { evaluationInterval: "1m", delivery: { timeout: "3m" } })).toThrow("delivery.timeout");
  });

  it("drops, and says so, what waits for a webhook the rules file no longer names", async () => {
    const gone = await WebhookReceiver.start();
    const url = gone.url;
    await gone.stop();
    const file = dbFile();
    const source = new FakeSource();
    source.rows = [{ task: "t", probe: "p", code: 601, n: 5 }];
    const db1 = new SqliteDb(file);
    const e1 = await AlertEngine.start({ rules: rulesFor([url], [{ name: "r", when: { successRateBelow: 0.5 } }], { delivery: { backoff: "10s" } }),
      db: db1, source });
    await until(() => e1.stats.failures === 1, "a failed attempt");
    await e1.close();
    await db1.close();
    const hook = await receiver();
    const db2 = new SqliteDb(file);
    open.push(db2);
    const log: string[] = [];
    const e2 = await engine(db2, source, rulesFor([hook.url], [{ name: "r", when: { successRateBelow: 0.5 } }]), log);
    await e2.evaluate();
    expect(log).toContain(`alerts: 1 notification(s) queued for ${url} dropped: it is no longer in alerts.json`);
    expect((await e2.view()).delivery).toMatchObject({ pending: 0, dropped: 1 });
    expect((await e2.view()).firing).toHaveLength(1); // still firing: the new webhook hears of it at the next repeat
  });
});
