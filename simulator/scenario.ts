// A lab scenario (simulator/scenarios/*.json): the fleet, the tasks it runs, which faults each
// task meets (weights), and how many runs. Checked like a task file: a bad one is a
// configuration error naming the file, the field and the problem.

import { readFileSync } from "node:fs";
import { z } from "zod";
import { ConfigError } from "../host/config-error.js";
import { describeIssue } from "../host/task/load.js";
import { ID_PATTERN, ID_RULE } from "../host/wire/id.js";
import { FAULT_NAMES } from "./faults.js";

const id = z.string().regex(ID_PATTERN, `must be ${ID_RULE}`);

export const scenarioSchema = z.strictObject({
  name: z.string().min(1).max(100),
  description: z.string().max(2000).optional(),
  fleet: z.strictObject({
    count: z.number().int().min(1).max(10_000),
    /** probe ids are the prefix and a number from 1: edge-1, edge-2 … */
    idPrefix: z.string().regex(/^[A-Za-z0-9._-]{1,50}$/, "must be 1–50 characters of A-Z a-z 0-9 . _ -").default("edge-"),
  }),
  /** runs of each task by each probe; or give durationMs: runs for good, none starting after it */
  runs: z.number().int().min(1).max(100_000).optional(),
  durationMs: z.number().int().min(1).max(7 * 86_400_000).optional(),
  /** from the start of one run of a task to the next, as in a task file */
  intervalMs: z.number().int().min(0).max(86_400_000).default(0),
  /** runs in flight over the whole fleet at most */
  concurrency: z.number().int().min(1).max(10_000).default(64),
  /** seeds the choice of fault for each run, so a scenario replays exactly */
  seed: z.number().int().default(1),
  /** mqtt:// URL of a broker to use; absent: the collector's embedded broker */
  broker: z.string().regex(/^mqtts?:\/\/.+/, "must be an mqtt:// or mqtts:// URL").optional(),
  tasks: z.array(z.strictObject({
    id,
    send: z.string().min(1),
    /** keyword a healthy reply contains */
    expect: z.string().min(1),
    /** what a healthy server answers */
    reply: z.string().min(1),
    /** fault name → weight; "ok" is a healthy server */
    faults: z.partialRecord(z.enum(FAULT_NAMES as [string, ...string[]]), z.number().int().min(0).max(1_000_000))
      .refine((f) => Object.values(f).some((w) => (w ?? 0) > 0), "needs at least one fault with a weight above 0"),
  }).refine((t) => !t.faults["link-cut"] || Buffer.byteLength(t.expect) >= 2, {
    message: "link-cut lets 1 byte of the reply through: the keyword needs 2 bytes or more", path: ["expect"],
  })).min(1).refine((tasks) => new Set(tasks.map((t) => t.id)).size === tasks.length, "task ids must be unique"),
});

export type Scenario = z.output<typeof scenarioSchema>;

/** Exactly one of runs and durationMs says how long a scenario lasts. */
function checkLength(s: Scenario): string | null {
  if ((s.runs === undefined) === (s.durationMs === undefined)) return "give either runs or durationMs";
  return null;
}
export type LabTask = Scenario["tasks"][number];

export function loadScenario(file: string): Scenario {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw ConfigError.in(file, [e.code ? `cannot read: ${e.code}` : `not valid JSON: ${e.message}`]);
  }
  const parsed = scenarioSchema.safeParse(json);
  if (!parsed.success) throw ConfigError.in(file, parsed.error.issues.map((i) => describeIssue(i, json)));
  const length = checkLength(parsed.data);
  if (length) throw ConfigError.in(file, [`runs: ${length}`]);
  return parsed.data;
}
