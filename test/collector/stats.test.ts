// Top five exactness, ties, windows (including partial minutes), filters, and the summary, on
// each store (SQLite and PostgreSQL).

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseWindow, summary, topErrors } from "../../host/collector/stats.js";
import { openStore, type Store } from "../../host/collector/store.js";
import { STORE_KINDS, newDatabase } from "../helpers/databases.js";
import { rng, randomInt } from "../helpers/random.js";
import { many, record } from "../helpers/records.js";

const T0 = Date.UTC(2026, 10, 29, 10, 0, 0); // a whole minute

describe("windows", () => {
  it("parses window=5m/1h/24h/7d and from/to, and rejects the rest with a reason", () => {
    const now = 1_800_000_000_000;
    expect(parseWindow(new URLSearchParams("window=5m"), now)).toEqual({ from: now - 300_000, to: now });
    expect(parseWindow(new URLSearchParams("window=7d"), now).from).toBe(now - 7 * 86_400_000);
    expect(parseWindow(new URLSearchParams(""), now).from).toBe(now - 3_600_000);
    expect(parseWindow(new URLSearchParams("from=10&to=20"), now)).toEqual({ from: 10, to: 20 });
    expect(() => parseWindow(new URLSearchParams("window=1y"))).toThrow('window must look like 5m, 1h, 24h or 7d (got "1y")');
    expect(() => parseWindow(new URLSearchParams("from=20&to=10"))).toThrow(/from < to/);
  });
});

describe.each(STORE_KINDS)("on %s", (kind) => {
  let store: Store;
  beforeEach(async () => {
    store = await openStore(await newDatabase(kind));
  });
  afterEach(() => store.close());

  describe("top five error types", () => {
    it("counts exactly, orders by count then code, keeps five, and gives both shares", async () => {
      await store.add([
        ...many(7, "p1", "a", T0, 607), ...many(5, "p1", "a", T0, 603), ...many(5, "p1", "a", T0, 601),
        ...many(3, "p1", "a", T0, 609), ...many(2, "p1", "a", T0, 605), ...many(1, "p1", "a", T0, 600),
        ...many(7, "p1", "a", T0, null),
      ]);
      const r = await topErrors(store, { from: T0, to: T0 + 60_000 });
      expect(r).toMatchObject({ from: T0, to: T0 + 60_000, total: 30, failed: 23 });
      expect(r.top.map((e) => [e.code, e.count])).toEqual([[607, 7], [601, 5], [603, 5], [609, 3], [605, 2]]);
      expect(r.top[0]).toEqual({
        code: 607, definition: "Failed to verify the keyword.", count: 7,
        shareOfFailures: Math.round((7 / 23) * 1e4) / 1e4, shareOfResults: Math.round((7 / 30) * 1e4) / 1e4,
      });
    });

    it("is exact at window edges that cut through minutes", async () => {
      // 10 results per second for three minutes and a half, all 603 except every 10th (ok).
      const records = Array.from({ length: 2100 }, (_, i) => record("p1", "a", T0 + i * 100, i % 10 === 0 ? null : 603));
      await store.add(records);
      for (const [from, to] of [[T0 + 12_345, T0 + 150_001], [T0 + 59_999, T0 + 60_001], [T0 - 5000, T0 + 500_000], [T0 + 30_000, T0 + 30_050]]) {
        const inside = records.filter((r) => r.ts >= from && r.ts < to);
        const r = await topErrors(store, { from, to });
        expect(r.total, `${from - T0}..${to - T0}`).toBe(inside.length);
        expect(r.failed).toBe(inside.filter((x) => x.code !== null).length);
      }
    });

    it("is exact for random windows over hours, with and without filters", async () => {
      const next = rng(11);
      const codes = [null, null, 600, 601, 603, 607, 608, 609];
      const records = Array.from({ length: 2600 }, (_, i) =>
        record(`p${i % 3}`, `t${i % 4}`, T0 + i * 7000 + randomInt(next, 7000), codes[randomInt(next, codes.length)]));
      await store.add(records);
      for (let n = 0; n < 40; n++) {
        const from = T0 - 600_000 + randomInt(next, 5 * 3_600_000);
        const to = from + 1 + randomInt(next, 4 * 3_600_000);
        const task = n % 3 === 1 ? "t2" : undefined;
        const probe = n % 3 === 2 ? "p1" : undefined;
        const inside = records.filter((r) => r.ts >= from && r.ts < to && (!task || r.task === task) && (!probe || r.probe === probe));
        const want = new Map<number, number>();
        for (const r of inside) if (r.code !== null) want.set(r.code, (want.get(r.code) ?? 0) + 1);
        const got = await topErrors(store, { from, to, task, probe });
        expect(got.total, `window ${n}`).toBe(inside.length);
        expect(got.top.map((e) => [e.code, e.count])).toEqual(
          [...want].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 5));
      }
    });

    it("filters by task, by probe and by a list of probes", async () => {
      await store.add([...many(4, "p1", "a", T0, 607), ...many(2, "p2", "a", T0, 608), ...many(3, "p1", "b", T0, 601)]);
      const w = { from: T0, to: T0 + 60_000 };
      expect((await topErrors(store, { ...w, task: "a" })).top.map((e) => e.code)).toEqual([607, 608]);
      expect((await topErrors(store, { ...w, probe: "p2" })).top).toMatchObject([{ code: 608, count: 2, shareOfFailures: 1 }]);
      expect((await topErrors(store, { ...w, task: "b", probe: "p1" })).total).toBe(3);
      expect(await topErrors(store, { ...w, task: "missing" })).toMatchObject({ total: 0, failed: 0, top: [] });
      // the probes a label= filter selected: one parameter for the whole list
      expect((await topErrors(store, { ...w, probes: ["p2", "nobody"] })).total).toBe(2);
      expect((await topErrors(store, { ...w, probes: [] })).total).toBe(0);
    });

    it("counts a result once however often it arrives", async () => {
      const r = record("p1", "a", T0, 607);
      expect((await store.add([r, r])).length).toBe(1);
      expect((await store.add([r])).length).toBe(0);
      expect((await topErrors(store, { from: T0, to: T0 + 1 })).total).toBe(1);
    });
  });

  describe("summary", () => {
    it("gives the success rate, per-task and per-probe tables, phase averages and a series", async () => {
      await store.add([...many(6, "p1", "redis", T0, 607), ...many(2, "p1", "redis", T0, null), ...many(2, "p2", "smtp", T0 + 120_000, null)]);
      const s = await summary(store, { from: T0, to: T0 + 300_000 });
      expect(s).toMatchObject({ total: 10, failed: 6, successRate: 0.4, taskIds: ["redis", "smtp"] });
      expect(s.tasks).toEqual([
        { task: "redis", total: 8, failed: 6, successRate: 0.25, topCode: 607, avgTotalMs: 7 },
        { task: "smtp", total: 2, failed: 0, successRate: 1, topCode: null, avgTotalMs: 7 },
      ]);
      expect(s.probes.map((p) => [p.probe, p.total])).toEqual([["p1", 8], ["p2", 2]]);
      expect(s.phases).toMatchObject({ dnsMs: 1, connectMs: 2, tlsMs: null, totalMs: 7 });
      expect(s.series).toEqual([{ t: T0, total: 8, failed: 6 }, { t: T0 + 120_000, total: 2, failed: 0 }]);
    });
  });
});
