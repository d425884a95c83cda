// The lab through the fleet path: every fault produces its code in results that travel through
// the virtual probes' spools and MQTT to the collector, whose top five equals the ground truth.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import { describe, expect, it } from "vitest";
import { probeClientId } from "../../host/wire/id.js";
import { FAULTS, FAULT_NAMES } from "../../simulator/faults.js";
import { runLab, sameTop } from "../../simulator/lab.js";
import { scenarioSchema } from "../../simulator/scenario.js";

describe("the lab", () => {
  it("every fault gives its code through the fleet, and the collector agrees with the ground truth", async () => {
    const scenario = scenarioSchema.parse({
      name: "every-fault", fleet: { count: 3 }, runs: 4, seed: 3,
      tasks: [
        { id: "ping", send: "PING\r\n", expect: "+PONG", reply: "+PONG\r\n",
          faults: Object.fromEntries(FAULT_NAMES.map((f) => [f, 1])) },
      ],
    });
    const lab = await runLab(scenario);
    try {
      const r = lab.report;
      expect(r.mismatches).toEqual([]);
      expect(r.identical).toBe(true);
      expect(r.runs).toBe(12);
      expect(r.collector).toEqual(r.truth);
      // Which faults were drawn is the seed's business; each drawn one reported its own code.
      for (const fault of Object.keys(r.injected)) expect(FAULT_NAMES).toContain(fault);
    } finally {
      await lab.close();
    }
  }, 120_000);

  it("each fault type, alone on a task, gives exactly its code through the fleet", async () => {
    const scenario = scenarioSchema.parse({
      name: "one-task-per-fault", fleet: { count: 2 }, runs: 1, concurrency: 64,
      tasks: FAULT_NAMES.map((fault) => ({ id: `t-${fault}`, send: "PING\r\n", expect: "+PONG", reply: "+PONG\r\n", faults: { [fault]: 1 } })),
    });
    const lab = await runLab(scenario);
    try {
      expect(lab.report.mismatches).toEqual([]);
      expect(lab.report.identical).toBe(true);
      expect(lab.report.injected).toEqual(Object.fromEntries(FAULT_NAMES.map((f) => [f, 2])));
      // Per task (one fault each), the collector holds two results with the fault's code.
      for (const fault of FAULT_NAMES) {
        const rows = await lab.collector.store.db.all<{ code: number | null }>("SELECT code FROM results WHERE task = ?", [`t-${fault}`]);
        expect(rows.map((r) => r.code), fault).toEqual([FAULTS[fault].code, FAULTS[fault].code]);
      }
    } finally {
      await lab.close();
    }
  }, 120_000);

  it("runs its virtual probes with passwords of their own, as real probes log in", async () => {
    const scenario = scenarioSchema.parse({
      name: "logged-in", fleet: { count: 2 }, runs: 2,
      tasks: [{ id: "ping", send: "PING\r\n", expect: "+PONG", reply: "+PONG\r\n", faults: { ok: 1 } }],
    });
    const lab = await runLab(scenario);
    try {
      expect(lab.report.identical).toBe(true);
      expect(readFileSync(join(lab.dir, "passwd"), "utf8")).toMatch(/^edge-1:\$7\$1000\$[^$]+\$[^$]+\nedge-2:\$7\$/);
      expect(await lab.collector.metrics.deniedCount("credentials")).toBe(0);
      // the broker checks them: a probe id without its password is refused
      const anonymous = mqtt.connectAsync(lab.collector.brokerUrl, { clientId: probeClientId("edge-1"), protocolVersion: 4, reconnectPeriod: 0 });
      await expect(anonymous).rejects.toThrow(/Bad username or password/);
    } finally {
      await lab.close();
    }
  }, 60_000);

  it("calls any difference in totals, codes or counts a difference", () => {
    const entry = (code: 601 | 603 | 607, count: number) => ({ code, definition: "", count, shareOfFailures: 0, shareOfResults: 0 });
    const truth = { from: 0, to: 1, total: 10, failed: 5, top: [entry(607, 3), entry(603, 2)] };
    expect(sameTop(truth, structuredClone(truth))).toBe(true);
    expect(sameTop(truth, { ...truth, total: 11 })).toBe(false);
    expect(sameTop(truth, { ...truth, failed: 4 })).toBe(false);
    expect(sameTop(truth, { ...truth, top: [entry(607, 3), entry(601, 2)] })).toBe(false);
    expect(sameTop(truth, { ...truth, top: [entry(607, 2), entry(603, 3)] })).toBe(false);
    expect(sameTop(truth, { ...truth, top: [entry(607, 3)] })).toBe(false);
  });

  it("runs each task intervalMs apart until durationMs has passed", async () => {
    const scenario = scenarioSchema.parse({
      name: "timed", fleet: { count: 2 }, durationMs: 1000, intervalMs: 250,
      tasks: [{ id: "ping", send: "PING\r\n", expect: "+PONG", reply: "+PONG\r\n", faults: { ok: 3, "wrong-reply": 1 } }],
    });
    const lab = await runLab(scenario);
    try {
      expect(lab.report.identical).toBe(true);
      expect(lab.report.runs).toBe(8); // runs at 0, 250, 500 and 750 ms, by each of 2 probes
    } finally {
      await lab.close();
    }
  }, 60_000);

  // `npm start` is this plus a `prestart` build, and a build in the suite rewrites build/*.wasm
  // under the other workers that are loading it: run what it runs, against the built core.
  it("the CLI runs the default scenario (what npm start runs) and exits 0", async () => {
    const child = spawn(process.execPath, ["bin/catprobe.js", "lab", "simulator/scenarios/default.json"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const [code] = await once(child, "exit");
    expect(out).toContain("the collector's statistics match the ground truth");
    expect(code).toBe(0);
  }, 120_000);
});
