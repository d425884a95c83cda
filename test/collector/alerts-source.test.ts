// The alert engine's SQL on both databases the collector runs on, SQLite and a real
// PostgreSQL: its source reads the store's tables exactly (whole minutes and the window's
// partial edges), the newest TLS facts, probe states; its own tables are created once, and the
// engine fires and resolves through them.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AlertEngine } from "../../host/collector/alerts/alerts.js";
import { AlertStore } from "../../host/collector/alerts/alert-store.js";
import type { AlertSource } from "../../host/collector/alerts/evaluate.js";
import { parseRules } from "../../host/collector/alerts/rules.js";
import { SqlAlertSource } from "../../host/collector/alerts/source.js";
import { ProbeStates } from "../../host/collector/probe-states.js";
import { openStore, type Store } from "../../host/collector/store.js";
import type { StoredRecord } from "../../host/wire/record.js";
import { Postgres } from "../helpers/postgres.js";
import { record } from "../helpers/records.js";
import { until } from "../helpers/until.js";
import { WebhookReceiver } from "../helpers/webhook-receiver.js";

const status = (probe: string, state: "online" | "offline", labels: Record<string, string>) => ({
  v: 1 as const, probe, state, ts: Date.now(), labels, appliedVersion: null, configError: null, spooled: 0, dropped: 0, software: "catprobe/test",
});

for (const dialect of ["sqlite", "postgres"] as const) {
  describe(`alerts on ${dialect}`, () => {
    let pg: Postgres | undefined;
    let store: Store;

    beforeAll(async () => {
      if (dialect === "postgres") pg = await Postgres.start();
      store = await openStore(pg ? await pg.database() : join(mkdtempSync(join(tmpdir(), "catprobe-alsrc-")), "c.db"));
    }, 120_000);
    afterAll(async () => {
      await store?.close();
      pg?.stop();
    });

    /** A rule "<task> down" (success rate below 0.5 over 1m) posting to `webhook`. */
    const downRule = (task: string, webhook: string, evaluationInterval: string) => parseRules("a.json",
      JSON.stringify({ webhooks: [webhook], evaluationInterval,
        rules: [{ name: `${task} down`, task, window: "1m", when: { successRateBelow: 0.5 } }] }));

    /** Two failed runs (603) of `task` on `probe` stored, ending 900 ms before `now`. */
    const storeFailures = (probe: string, task: string, now: number) =>
      store.add([record(probe, task, now - 1000, 603), record(probe, task, now - 900, 603)]);

    it("counts per task, probe and code over a window exactly; newest TLS facts; probe states", async () => {
      const minute = 60_000;
      const base = Math.floor(Date.now() / minute) * minute - 10 * minute; // a whole minute, 10 minutes ago
      const at = (ms: number, code: number | null, probe = "edge-1", task = "redis") => record(probe, task, base + ms, code);
      const withTls = (r: StoredRecord, daysLeft: number): StoredRecord => ({ ...r,
        tls: { version: "TLSv1.3", subject: `CN=d${daysLeft}`, issuer: "CN=CA", notAfter: new Date(r.ts + daysLeft * 86_400_000).toISOString(), daysLeft } });
      await store.add([
        at(-1, 601), // before the window
        at(30_000, 607), at(59_999, null), // the window's first, partial minute
        at(minute, 607), at(minute + 1, 607), at(2 * minute, null, "edge-2"), // whole minutes
        at(3 * minute, 608), at(3 * minute + 10_000, 601), // the last, partial minute; the second one is after the window
        withTls(at(4 * minute, null, "edge-1", "https"), 30), withTls(at(5 * minute, null, "edge-1", "https"), 3),
        withTls(at(5 * minute, null, "edge-2", "https"), 9), at(6 * minute, null, "edge-2", "https"), // newest has no TLS facts
      ]);
      const source = new SqlAlertSource(store.db);
      const rows = await source.counts(base + 30_000, base + 3 * minute + 5000, {});
      const sorted = (r: { task: string; probe: string; code: number; n: number }[]) =>
        r.map((x) => `${x.task}/${x.probe}/${x.code}=${x.n}`).sort();
      expect(sorted(rows)).toEqual(["redis/edge-1/0=1", "redis/edge-1/607=3", "redis/edge-1/608=1", "redis/edge-2/0=1"]);
      expect(sorted(await source.counts(base - 1, base + 10 * minute, { probe: "edge-2", task: "redis" }))).toEqual(["redis/edge-2/0=1"]);
      expect(sorted(await source.counts(base + 10_000, base + 20_000, {}))).toEqual([]);
      expect(sorted(await source.counts(base + 30_000, base + 30_001, {}))).toEqual(["redis/edge-1/607=1"]);

      const tls = await source.latestTls(base, base + 10 * minute, { task: "https" });
      expect(tls.map((t) => `${t.probe}:${t.tls.daysLeft}:${t.tls.subject}`).sort()).toEqual(["edge-1:3:CN=d3", "edge-2:9:CN=d9"]);
      expect(await source.latestTls(base, base + 10 * minute, { task: "redis" })).toEqual([]);

      const probes = new ProbeStates(store.db);
      await probes.record("edge-1", status("edge-1", "online", { site: "plant-3", "größe": "groß" }), base, false);
      await probes.record("edge-2", status("edge-2", "offline", {}), base + 1, false);
      expect((await source.probes()).sort((a, b) => a.probe.localeCompare(b.probe))).toEqual([
        { probe: "edge-1", state: "online", labels: { site: "plant-3", "größe": "groß" }, lastSeen: base },
        { probe: "edge-2", state: "offline", labels: {}, lastSeen: base + 1 },
      ]);
    });

    it("creates its tables once, keeps the outbox in order, marks and prunes", async () => {
      const alerts = new AlertStore(store.db);
      await alerts.init();
      await alerts.init();
      const now = Date.now();
      const state = { fingerprint: "f1", rule: "Störung ✓", labels: { alertname: "Störung ✓" }, annotations: { summary: "検査" },
        status: "firing" as const, startsAt: now, endsAt: null, lastNotified: now };
      const entry = (id: string, webhook = "http://a") => ({ id, webhook, rule: "Störung ✓", status: "firing" as const, body: "{}",
        createdAt: now, attempts: 0, nextAt: now });
      expect(await alerts.commit([state], [entry("b"), entry("a"), entry("c", "http://b")], 10, now)).toEqual([]);
      expect((await alerts.firing()).map((s) => s.annotations.summary)).toEqual(["検査"]);
      expect((await alerts.head("http://a"))?.id).toBe("a");
      expect((await alerts.pendingWebhooks()).sort()).toEqual(["http://a", "http://b"]);
      await alerts.markSent("a", now);
      await alerts.markRetry("b", 1, now + 1000, "HTTP 503");
      expect(await alerts.head("http://a")).toMatchObject({ id: "b", attempts: 1, nextAt: now + 1000 });
      // beyond maxPending the oldest go
      const dropped = await alerts.commit([{ ...state, status: "resolved", endsAt: now + 5, lastNotified: now + 5 }],
        [{ ...entry("d"), createdAt: now + 5 }], 2, now + 5);
      expect(dropped?.map((d) => d.id)).toEqual(["b"]);
      expect(await alerts.pendingCount()).toBe(2);
      expect((await alerts.list(now)).map((s) => [s.fingerprint, s.status, s.endsAt])).toEqual([["f1", "resolved", now + 5]]);
      await alerts.prune(now + 6);
      expect(await alerts.list(0)).toEqual([]);
      expect(await alerts.pendingCount()).toBe(2); // pending ones stay
    });

    it("fires once and resolves once through its tables", async () => {
      const hook = await WebhookReceiver.start();
      try {
        const now = Date.now();
        await storeFailures("edge-9", "imap", now);
        const rules = downRule("imap", hook.url, "1h");
        const engine = await AlertEngine.start({ rules, db: store.db });
        try {
          await until(() => hook.received.length === 1, "the firing");
          await store.add([record("edge-9", "imap", now - 500, null), record("edge-9", "imap", now - 400, null)]);
          await engine.evaluate();
          await until(() => hook.received.length === 2, "the resolution");
          expect(hook.received.map((r) => r.body.status)).toEqual(["firing", "resolved"]);
          expect(hook.received[0].body.alerts[0].labels).toEqual({ alertname: "imap down", task: "imap", probe: "edge-9" });
        } finally {
          await engine.close();
        }
      } finally {
        await hook.stop();
      }
    });

    // A lease only PostgreSQL shares: an SQLite file has one collector.
    if (dialect === "postgres") it("two collectors on one database: one holds the lease and notifies once; the other takes over", async () => {
      const hook = await WebhookReceiver.start();
      const logs: string[][] = [[], []];
      try {
        const now = Date.now();
        await storeFailures("edge-8", "pop3", now);
        const rules = downRule("pop3", hook.url, "100ms");
        const [a, b] = [await AlertEngine.start({ rules, db: store.db, log: (l) => logs[0].push(l) }),
          await AlertEngine.start({ rules, db: store.db, log: (l) => logs[1].push(l) })];
        try {
          await until(() => hook.received.length === 1, "the firing");
          await new Promise((r) => setTimeout(r, 600));
          expect(hook.received).toHaveLength(1);
          const leaders = logs.map((l) => l.some((x) => x.includes("holds the lease)")));
          expect(leaders.filter(Boolean)).toHaveLength(1);
          await (leaders[0] ? a : b).close(); // gives the lease up
          await store.add([record("edge-8", "pop3", now - 500, null), record("edge-8", "pop3", now - 400, null)]);
          await until(() => hook.received.length === 2, "the resolution from the other collector");
          expect(hook.received.map((r) => r.body.status)).toEqual(["firing", "resolved"]);
          await new Promise((r) => setTimeout(r, 500));
          expect(hook.received).toHaveLength(2);
        } finally {
          await a.close();
          await b.close();
        }
      } finally {
        await hook.stop();
      }
    });

    if (dialect === "postgres") it("the lease is kept by the database's clock: a collector whose clock is ahead does not take it early", async () => {
      const hook = await WebhookReceiver.start();
      const logs: string[][] = [[], []];
      try {
        const now = Date.now();
        await storeFailures("edge-6", "nntp", now);
        const rules = downRule("nntp", hook.url, "100ms");
        const a = await AlertEngine.start({ rules, db: store.db, log: (l) => logs[0].push(l) });
        try {
          await until(() => logs[0].some((x) => x.includes("holds the lease)")), "the first collector's lease");
          const ahead = () => Date.now() + 3_600_000; // an hour ahead: past any lease the other took
          expect(await new AlertStore(store.db).lease("third", ahead(), 30_000)).toBe(false);
          const b = await AlertEngine.start({ rules, db: store.db, log: (l) => logs[1].push(l), now: ahead });
          try {
            await until(() => hook.received.length === 1, "the firing");
            await new Promise((r) => setTimeout(r, 600));
            expect(hook.received).toHaveLength(1);
            expect(logs[1].some((x) => x.includes("holds the lease)"))).toBe(false);
            expect(logs[0].some((x) => x.includes("stands by") || x.includes("ran out"))).toBe(false);
          } finally {
            await b.close();
          }
        } finally {
          await a.close();
        }
      } finally {
        await hook.stop();
      }
    });

    if (dialect === "postgres") it("an evaluation whose lease ran out before its commit writes nothing (fencing)", async () => {
      const hook = await WebhookReceiver.start();
      const log: string[] = [];
      let expire = true;
      const source: AlertSource = {
        // a slow evaluation: the lease runs out while it reads
        async counts() {
          if (expire) await store.db.run("UPDATE alert_lease SET expires_at = 0");
          return [{ task: "slow", probe: "edge-5", code: 601, n: 3 }];
        },
        probes: async () => [],
        latestTls: async () => [],
      };
      // all states and notifications: alerts of other rules left firing would resolve too, were anything written
      const tables = async () => JSON.stringify([await store.db.all("SELECT * FROM alert_state ORDER BY fingerprint"),
        await store.db.all("SELECT id FROM alert_outbox ORDER BY id")]);
      try {
        const rules = downRule("slow", hook.url, "1h");
        await new AlertStore(store.db).init();
        const before = await tables();
        const engine = await AlertEngine.start({ rules, db: store.db, source, log: (l) => log.push(l) });
        try {
          await engine.evaluate();
          expect(await tables()).toBe(before);
          expect(log.some((l) => l.includes("the alert lease ran out during this evaluation"))).toBe(true);
          await new Promise((r) => setTimeout(r, 300));
          expect(hook.received).toHaveLength(0);
          expire = false; // the next evaluation takes the lease again, and writes
          await engine.evaluate();
          expect(await tables()).not.toBe(before);
          await until(() => hook.received.some((r) => r.body.groupLabels.alertname === "slow down"), "the firing");
        } finally {
          await engine.close();
        }
      } finally {
        await hook.stop();
      }
    });
  });
}
