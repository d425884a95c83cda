// `GET /api/results` (newest first, filters, bounds) and the `label=` filter of /api/top-errors
// and /api/summary: exact over windows whose edges fall inside minutes, on probes selected by
// their last reported labels (non-ASCII values among them); on each store (SQLite and PostgreSQL).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { statusTopic } from "../../host/wire/topics.js";
import { STORE_KINDS, newDatabase } from "../helpers/databases.js";
import { ProbeClients } from "../helpers/probe-clients.js";
import { record } from "../helpers/records.js";
import { until } from "../helpers/until.js";

const HOUR = 3_600_000;
const SITE = "Zürich-北区";

describe.each(STORE_KINDS)("results and label filters on %s", (kind) => {
  let c: Collector;
  let clients: ProbeClients;
  // two hours back, 7 s past a minute: windows cut through minutes and hours
  const t0 = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR + 7_000;

  beforeAll(async () => {
    c = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: await newDatabase(kind) });
    clients = new ProbeClients(c.brokerUrl);
    const labels = { "z-1": { site: SITE }, "z-2": { site: SITE, rack: "a" }, "p-1": { site: "plant-3" } };
    for (const [probe, l] of Object.entries(labels)) {
      await clients.publish(statusTopic(probe), JSON.stringify({ v: 1, probe, state: "online", ts: Date.now(), labels: l,
        appliedVersion: null, configError: null, spooled: 0, dropped: 0, software: "catprobe/test" }));
    }
    await until(async () => (await (await fetch(`${c.httpUrl}/api/probes`)).json()).length === 3, "three probes");
    // every 7 s for 2 h: each probe and task, codes cycling through ok, 607, 601
    const records = [];
    for (let ts = t0, i = 0; ts < t0 + 2 * HOUR; ts += 7_000, i++) {
      for (const probe of Object.keys(labels)) {
        records.push(record(probe, i % 2 ? "t1" : "t2", ts, [null, 607, 601][i % 3]));
      }
    }
    await c.store.add(records);
  });
  afterAll(async () => {
    await clients.end();
    await c.close();
  });

  const get = async (path: string) => {
    const res = await fetch(`${c.httpUrl}${path}`);
    return { status: res.status, body: await res.json() };
  };
  const q = (params: Record<string, string>) => new URLSearchParams(params).toString();

  it("label= counts exactly the probes whose labels include it, also across hour and minute edges", async () => {
    const from = String(t0 + 13_000);
    const to = String(t0 + HOUR + 30 * 60_000 + 5_000);
    const sum = async (params: Record<string, string>) => (await get(`/api/top-errors?${q({ from, to, ...params })}`)).body;
    const z1 = await sum({ probe: "z-1" });
    const z2 = await sum({ probe: "z-2" });
    const zurich = await sum({ label: `site:${SITE}` });
    expect(zurich.total).toBe(z1.total + z2.total);
    expect(zurich.failed).toBe(z1.failed + z2.failed);
    expect(zurich.total).toBeGreaterThan(0);
    // the unfiltered count reads whole hours from the hour table: the same results in other tables
    expect(zurich.total + (await sum({ label: "site:plant-3" })).total).toBe((await sum({})).total);
    expect((await sum({ label: `site:${SITE}`, task: "t1" })).total).toBe((await sum({ probe: "z-1", task: "t1" })).total * 2);
    expect((await sum({ label: "rack:a" })).total).toBe(z2.total);
    // repeated: every pair must hold
    expect((await get(`/api/top-errors?from=${from}&to=${to}&label=${encodeURIComponent(`site:${SITE}`)}&label=rack:a`)).body.total).toBe(z2.total);
    expect((await sum({ label: "site:nowhere" })).total).toBe(0);
    const summary = (await get(`/api/summary?${q({ from, to, label: `site:${SITE}` })}`)).body;
    expect(summary.total).toBe(zurich.total);
    expect(summary.probes.map((p: { probe: string }) => p.probe)).toEqual(["z-1", "z-2"]);
    expect((await get("/api/top-errors?label=site")).status).toBe(400);
  });

  it("/api/results: newest first, filtered by task, probe, code and label, at most 1000", async () => {
    const window = { from: String(t0), to: String(t0 + 2 * HOUR) };
    const all = (await get(`/api/results?${q({ ...window, limit: "1000" })}`)).body.results;
    expect(all).toHaveLength(1000);
    const ts = all.map((r: { ts: number }) => r.ts);
    expect(ts).toEqual([...ts].sort((a, b) => b - a));
    expect(ts[0]).toBeGreaterThan(t0 + 2 * HOUR - 7_000 - 1);
    expect((await get(`/api/results?${q(window)}`)).body.results).toHaveLength(100);

    const some = (await get(`/api/results?${q({ ...window, task: "t1", probe: "z-1", code: "607", limit: "5" })}`)).body.results;
    expect(some).toHaveLength(5);
    for (const r of some) expect(r).toMatchObject({ task: "t1", probe: "z-1", ok: false, code: 607, message: "fault 607" });
    expect(some[0]).toEqual({
      v: 1, id: expect.any(String), probe: "z-1", task: "t1", ts: expect.any(Number), ok: false, code: 607, step: 0, message: "fault 607",
      timings: { dnsMs: 1, connectMs: 2, tlsMs: null, sendMs: 0.5, firstByteMs: 3, receiveMs: 0.5, totalMs: 7 }, bytesSent: 6, bytesReceived: 7,
    });
    const ok = (await get(`/api/results?${q({ ...window, code: "ok", limit: "50" })}`)).body.results;
    expect(ok.every((r: { ok: boolean }) => r.ok)).toBe(true);
    const failed = (await get(`/api/results?${q({ ...window, code: "failed", label: "site:plant-3", limit: "50" })}`)).body.results;
    expect(failed.every((r: { ok: boolean; probe: string }) => !r.ok && r.probe === "p-1")).toBe(true);
    expect(failed).toHaveLength(50);
    for (const bad of [{ limit: "1001" }, { limit: "0" }, { code: "612" }, { code: "x" }] as Record<string, string>[]) {
      expect((await get(`/api/results?${q({ ...window, ...bad })}`)).status, JSON.stringify(bad)).toBe(400);
    }
  });
});
