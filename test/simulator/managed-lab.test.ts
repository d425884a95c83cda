// The lab run as a managed fleet: its tasks reach the virtual probes through the collector's
// control plane (PUT /api/tasks, configs on the probes' topics), the set changes mid-run, and
// the collector still shows exactly the ground truth. What the probes ran is read back from the
// collector's API, as any user would read it.

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { StoredRecord } from "../../host/wire/record.js";
import { runLab, type Lab } from "../../simulator/lab.js";
import { loadScenario, scenarioProblems, scenarioSchema } from "../../simulator/scenario.js";

const get = async <T>(lab: Lab, path: string): Promise<T> => (await (await fetch(`${lab.collector.httpUrl}${path}`)).json()) as T;
const resultsOf = async (lab: Lab, query: string) =>
  (await get<{ results: StoredRecord[] }>(lab, `/api/results?window=1h&limit=1000&${query}`)).results;
const probes = (lab: Lab) => get<{ probe: string; appliedVersion: number | null; desiredVersion: number }[]>(lab, "/api/probes");

describe("the managed lab", () => {
  it("the shipped managed scenario: its report is identical to the truth, with the set changed half-way", async () => {
    const scenario = loadScenario(join(import.meta.dirname, "../../simulator/scenarios/managed.json"));
    expect(scenario.managed).toBe(true);
    const lab = await runLab(scenario);
    try {
      const r = lab.report;
      expect(r.mismatches).toEqual([]);
      expect(r.identical).toBe(true);
      expect(r.collector).toEqual(r.truth);
      expect(r.collector.total).toBe(r.runs);
      const [first, second] = r.versions!;
      expect(first).toMatchObject({ added: ["api-health", "redis-ping", "smtp-ehlo"], changed: [], removed: [] });
      expect(second).toMatchObject({ version: first.version + 1, added: ["dns-check"], changed: ["redis-ping"], removed: ["smtp-ehlo"], unchanged: ["api-health"] });
      // within seconds, every probe reported it (GET /api/probes), and still does
      for (const v of r.versions!) expect(v.appliedInMs).toBeLessThan(5000);
      expect((await probes(lab)).map((p) => p.appliedVersion)).toEqual(Array(6).fill(second.version));

      // smtp-ehlo went to plant-1 only (m-1, m-3, m-5), and none of its runs began once every probe had dropped it
      const smtp = await resultsOf(lab, "task=smtp-ehlo");
      expect(smtp.length).toBeGreaterThan(0);
      expect(new Set(smtp.map((x) => x.probe))).toEqual(new Set(["m-1", "m-3", "m-5"]));
      for (const x of smtp) expect(x.ts).toBeLessThanOrEqual(second.appliedAt!);
      // dns-check began with the second set, on every probe
      const dnsCheck = await resultsOf(lab, "task=dns-check");
      expect(new Set(dnsCheck.map((x) => x.probe)).size).toBe(6);
      for (const x of dnsCheck) expect(x.ts).toBeGreaterThanOrEqual(second.putAt);
      // redis-ping, changed: a run begun once every probe applied the change meets the new faults only
      const newFaults = ["ok", "reset", "servfail", "dribble"];
      const late = (await resultsOf(lab, "task=redis-ping")).filter((x) => x.ts > second.appliedAt!);
      expect(late.length).toBeGreaterThan(0);
      for (const x of late) expect(newFaults).toContain(x.labels?.fault);
      // api-health: plant-2 (m-2, m-4, m-6) and m-1 by id
      expect(new Set((await resultsOf(lab, "task=api-health")).map((x) => x.probe))).toEqual(new Set(["m-1", "m-2", "m-4", "m-6"]));
    } finally {
      await lab.close();
    }
  }, 120_000);

  it("three probes with different labels run exactly the tasks assigned to them", async () => {
    const ping = { send: "PING\r\n", expect: "+PONG", reply: "+PONG\r\n", faults: { ok: 3, "wrong-reply": 1 } };
    const scenario = scenarioSchema.parse({
      name: "assigned", managed: true, runs: 3, seed: 4,
      fleet: { count: 3, labels: [{ site: "a", role: "gateway" }, { site: "b" }, { site: "c" }] },
      tasks: [
        { id: "everywhere", ...ping },
        { id: "site-a", ...ping, assign: { labels: { site: "a" } } },
        { id: "site-b-and-edge-3", ...ping, assign: { labels: { site: "b" }, probes: ["edge-3"] } },
        { id: "gateways-at-a", ...ping, assign: { labels: { site: "a", role: "gateway" } } },
        { id: "site-c-gateways", ...ping, assign: { labels: { site: "c", role: "gateway" } } },
      ],
    });
    const lab = await runLab(scenario);
    try {
      expect(lab.report.identical).toBe(true);
      expect(lab.report.collector).toEqual(lab.report.truth);
      const ran = async (probe: string) => {
        const counts: Record<string, number> = {};
        for (const x of await resultsOf(lab, `probe=${probe}`)) counts[x.task] = (counts[x.task] ?? 0) + 1;
        return counts;
      };
      expect(await ran("edge-1")).toEqual({ everywhere: 3, "site-a": 3, "gateways-at-a": 3 });
      expect(await ran("edge-2")).toEqual({ everywhere: 3, "site-b-and-edge-3": 3 });
      expect(await ran("edge-3")).toEqual({ everywhere: 3, "site-b-and-edge-3": 3 });
      expect(lab.report.runs).toBe(21);
      // the labels the probes reported, as the collector holds them
      expect((await get<{ probe: string; labels: Record<string, string> }[]>(lab, "/api/probes")).map((p) => [p.probe, p.labels]))
        .toEqual([["edge-1", { site: "a", role: "gateway" }], ["edge-2", { site: "b" }], ["edge-3", { site: "c" }]]);
    } finally {
      await lab.close();
    }
  }, 120_000);

  it("every probe reports each new version within seconds; a removed task's runs in flight are delivered and counted, and no new one starts", async () => {
    const ping = { send: "PING\r\n", expect: "+PONG", reply: "+PONG\r\n" };
    // `slow` runs back to back and each run waits out the response limit (1.5 s): the first
    // change (at 1 s) removes it while every probe has one of its runs in flight.
    const slow = { id: "slow", ...ping, faults: { silence: 1 } };
    const steady = { id: "steady", ...ping, faults: { ok: 4, refused: 1 } };
    const later = { id: "later", ...ping, faults: { ok: 1, "early-close": 1 } };
    const scenario = scenarioSchema.parse({
      name: "changing", managed: true, durationMs: 4000, intervalMs: 100, seed: 9, fleet: { count: 10 },
      tasks: [slow, steady],
      changes: [{ atMs: 1000, tasks: [steady, later] }, { atMs: 2500, tasks: [{ ...steady, faults: { ok: 1 } }, later] }],
    });
    const lab = await runLab(scenario);
    try {
      const r = lab.report;
      expect(r.mismatches).toEqual([]);
      expect(r.identical).toBe(true);
      expect(r.collector).toEqual(r.truth);
      expect(r.versions!.map((v) => [v.added, v.changed, v.removed])).toEqual([
        [["slow", "steady"], [], []], [["later"], [], ["slow"]], [[], ["steady"], []],
      ]);
      for (const v of r.versions!) expect(v.appliedInMs).toBeLessThan(5000);
      const last = r.versions![2].version;
      expect((await probes(lab)).map((p) => [p.appliedVersion, p.desiredVersion])).toEqual(Array(10).fill([last, last]));

      const removal = r.versions![1];
      const slowRuns = await resultsOf(lab, "task=slow");
      // every probe had a run of it in flight at the PUT that removed it: delivered, counted, with its code
      expect(new Set(slowRuns.map((x) => x.probe)).size).toBe(10);
      for (let i = 1; i <= 10; i++) {
        const last = slowRuns.filter((x) => x.probe === `edge-${i}`).sort((a, b) => b.ts - a.ts)[0];
        expect(last.ts + last.timings.totalMs).toBeGreaterThan(removal.putAt);
      }
      for (const x of slowRuns) {
        expect(x.code).toBe(603);
        // and none began once every probe had applied the removal
        expect(x.ts).toBeLessThanOrEqual(removal.appliedAt!);
      }
      const slowCount = await get<{ total: number }>(lab, "/api/top-errors?window=1h&task=slow");
      expect(slowCount.total).toBe(slowRuns.length);
    } finally {
      await lab.close();
    }
  }, 120_000);

  it("assign, labels and changes belong to managed scenarios, changes to a duration", () => {
    const base = { name: "s", fleet: { count: 1 }, tasks: [{ id: "t", send: "x", expect: "y", reply: "y", faults: { ok: 1 } }] };
    expect(scenarioProblems(scenarioSchema.parse({ ...base, durationMs: 10, changes: [{ atMs: 1, tasks: base.tasks }] })))
      .toEqual([expect.stringMatching(/^changes: only a managed scenario/)]);
    expect(scenarioProblems(scenarioSchema.parse({ ...base, runs: 1, fleet: { count: 1, labels: [{ a: "b" }] } })))
      .toEqual([expect.stringMatching(/^fleet\.labels: /)]);
    expect(scenarioProblems(scenarioSchema.parse({ ...base, runs: 1, tasks: [{ ...base.tasks[0], assign: { probes: ["edge-1"] } }] })))
      .toEqual([expect.stringMatching(/^tasks\[0\]\.assign: /)]);
    expect(scenarioProblems(scenarioSchema.parse({ ...base, managed: true, runs: 1, changes: [{ atMs: 1, tasks: base.tasks }] })))
      .toEqual(["changes: need durationMs (a change happens at a time)"]);
    expect(scenarioProblems(scenarioSchema.parse({ ...base, managed: true, durationMs: 10, changes: [{ atMs: 5, tasks: base.tasks }, { atMs: 10, tasks: base.tasks }] })))
      .toEqual(["changes[1].atMs: must be below durationMs (10)"]);
    expect(scenarioProblems(scenarioSchema.parse({ ...base, managed: true, durationMs: 10, changes: [{ atMs: 5, tasks: base.tasks }] }))).toEqual([]);
  });
});
