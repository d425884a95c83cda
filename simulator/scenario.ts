// A lab scenario (simulator/scenarios/*.json): the fleet, the tasks it runs, which faults each
// task meets (weights), and how many runs. Checked like a task file: a bad one is a
// configuration error naming the file, the field and the problem. A managed scenario
// ("managed": true) hands its tasks to the fleet through the collector's control plane (with
// `assign` and the fleet's labels), and may replace the task set mid-run (`changes`).

import { readFileSync } from "node:fs";
import * as z from "../host/zod.js";
import { ConfigError } from "../host/config-error.js";
import { describeIssue } from "../host/task/load.js";
import { ID_PATTERN, ID_RULE } from "../host/wire/id.js";
import { FAULT_NAMES } from "./faults.js";

const id = z.string().regex(ID_PATTERN, `must be ${ID_RULE}`);
const labels = z.record(z.string().min(1).max(64), z.string().max(256));

const task = z.strictObject({
  id,
  send: z.string().min(1),
  /** keyword a healthy reply contains */
  expect: z.string().min(1),
  /** what a healthy server answers */
  reply: z.string().min(1),
  /** fault name → weight; "ok" is a healthy server */
  faults: z.partialRecord(z.enum(FAULT_NAMES as [string, ...string[]]), z.number().int().min(0).max(1_000_000))
    .refine((f) => Object.values(f).some((w) => (w ?? 0) > 0), "needs at least one fault with a weight above 0"),
  /** managed scenarios: which probes get the task, as a task file's `assign` (absent: every probe) */
  assign: z.strictObject({ probes: z.array(id).optional(), labels: labels.optional() }).optional(),
}).refine((t) => !t.faults["link-cut"] || Buffer.byteLength(t.expect) >= 2, {
  message: "link-cut lets 1 byte of the reply through: the keyword needs 2 bytes or more", path: ["expect"],
});

const tasks = z.array(task).min(1).refine((list) => new Set(list.map((t) => t.id)).size === list.length, "task ids must be unique");

export const scenarioSchema = z.strictObject({
  name: z.string().min(1).max(100),
  description: z.string().max(2000).optional(),
  fleet: z.strictObject({
    count: z.number().int().min(1).max(10_000),
    /** probe ids are the prefix and a number from 1: edge-1, edge-2 … */
    idPrefix: z.string().regex(/^[A-Za-z0-9._-]{1,50}$/, "must be 1–50 characters of A-Z a-z 0-9 . _ -").default("edge-"),
    /** the probes' labels (--label): probe i (from 0) takes labels[i % labels.length] */
    labels: z.array(labels).min(1).max(10_000).optional(),
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
  tasks,
  /**
   * the tasks go through the control plane: the lab PUTs them to its collector's /api/tasks and
   * the fleet runs as managed probes, each running what its config topic says
   */
  managed: z.boolean().default(false),
  /**
   * managed scenarios with durationMs: the whole task set replaced at `atMs` after the runs
   * began (declarative, as `catprobe tasks apply`: a task left out is removed)
   */
  changes: z.array(z.strictObject({ atMs: z.number().int().min(0), tasks })).max(100).optional(),
});

export type Scenario = z.output<typeof scenarioSchema>;

/**
 * What the schema cannot say on its own: exactly one of runs and durationMs says how long a
 * scenario lasts; assign, labels and changes are for managed scenarios, changes within
 * durationMs and in order. Each problem as "field: message".
 */
export function scenarioProblems(s: Scenario): string[] {
  const problems: string[] = [];
  if ((s.runs === undefined) === (s.durationMs === undefined)) problems.push("runs: give either runs or durationMs");
  if (!s.managed) {
    if (s.changes) problems.push("changes: only a managed scenario (\"managed\": true) changes its task set");
    if (s.fleet.labels) problems.push("fleet.labels: only a managed scenario's probes take labels (they choose tasks by assign)");
    s.tasks.forEach((t, i) => t.assign && problems.push(`tasks[${i}].assign: only a managed scenario assigns tasks`));
  }
  if (s.changes) {
    if (s.durationMs === undefined) problems.push("changes: need durationMs (a change happens at a time)");
    s.changes.forEach((c, i) => {
      if (s.durationMs !== undefined && c.atMs >= s.durationMs) problems.push(`changes[${i}].atMs: must be below durationMs (${s.durationMs})`);
      if (i > 0 && c.atMs < s.changes![i - 1].atMs) problems.push(`changes[${i}].atMs: must not be before the change above it`);
    });
  }
  return problems;
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
  const problems = scenarioProblems(parsed.data);
  if (problems.length) throw ConfigError.in(file, problems);
  return parsed.data;
}
