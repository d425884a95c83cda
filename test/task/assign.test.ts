// Task assignment: listed probes, label pairs (all must match), both, or every probe.

import { describe, expect, it } from "vitest";
import { isAssigned } from "../../host/task/assign.js";
import { parseTask } from "../../host/task/load.js";
import { ConfigError } from "../../host/config-error.js";

const task = (assign?: unknown) => parseTask("t.json", JSON.stringify({
  id: "t", target: { host: "127.0.0.1", port: 1 }, steps: [{ verify: "none" }], ...(assign === undefined ? {} : { assign }),
}));

describe("assign", () => {
  it("without assign, every probe gets the task", () => {
    expect(isAssigned(task().assign, "edge-1", {})).toBe(true);
  });

  it("gives the task to the listed probes, and to probes whose labels include every pair", () => {
    const { assign } = task({ probes: ["edge-1"], labels: { site: "工厂-3", room: "B" } });
    expect(isAssigned(assign, "edge-1", {})).toBe(true);
    expect(isAssigned(assign, "edge-2", { site: "工厂-3", room: "B", extra: "x" })).toBe(true);
    expect(isAssigned(assign, "edge-2", { site: "工厂-3" })).toBe(false);
    expect(isAssigned(assign, "edge-2", { site: "工厂-3", room: "b" })).toBe(false); // exact, case-sensitive
  });

  it("refuses an empty assign and bad probe ids, naming the field", () => {
    expect(() => task({})).toThrow(/assign {}: give probes, labels or both/);
    const err = (() => { try { task({ probes: ["bad id"] }); } catch (e) { return e as ConfigError; } })();
    expect(err?.problems[0]).toMatch(/^t\.json: assign\.probes\[0\]: must be 1–64 characters/);
  });
});
