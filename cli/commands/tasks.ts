// `catprobe tasks apply <file|dir>` and `catprobe tasks list` (DESIGN.md "Fleet control plane"):
// the fleet's task set on a running collector. `apply` checks every file exactly as `run` does
// before anything is sent, then replaces the whole set (a task not given is removed).

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { TaskProblem } from "../../host/collector/task-set-check.js";
import type { TaskSetDiff, TaskSetState } from "../../host/collector/task-set.js";
import { loadTasks } from "../../host/task/load.js";
import { plural } from "../../host/text/plural.js";
import { COLLECTOR_OPTIONS, collectorGet, collectorRequest } from "../collector-api.js";
import { UsageError } from "../usage-error.js";

export async function tasks(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "apply") return apply(rest);
  if (sub === "list") return list(rest);
  throw new UsageError(`tasks: expected apply or list${sub === undefined ? "" : `, got '${sub}'`}`);
}

async function apply(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: COLLECTOR_OPTIONS });
  if (positionals.length !== 1) throw new UsageError("tasks apply: give one task file or directory");
  // Checked as `run` checks them (a ConfigError ends the command with exit 2, nothing sent);
  // the files' JSON goes as written, the collector keeps it as given.
  const files = loadTasks(positionals[0]).map(({ file }) => JSON.parse(readFileSync(file, "utf8")) as unknown);
  const { status, body } = await collectorRequest(values, "/api/tasks", { method: "PUT", body: JSON.stringify({ tasks: files }) });
  if (status === 400 && Array.isArray(body.problems)) {
    console.error(`catprobe: the collector refused the task set: ${String(body.error)}`);
    for (const p of body.problems as TaskProblem[]) console.error(`  ${p.task}: ${p.message}`);
    return 2;
  }
  if (status !== 200) throw new Error(`the collector answered ${status}: ${String(body.error ?? "")}`);
  const diff = body as unknown as TaskSetDiff;
  for (const key of ["added", "changed", "removed", "unchanged"] as const) {
    console.log(`${`${key}:`.padEnd(11)}${diff[key].length ? diff[key].join(", ") : "-"}`);
  }
  const changed = diff.added.length + diff.changed.length + diff.removed.length > 0;
  console.log(`version ${diff.version}${changed ? "" : " (no change)"}`);
  return 0;
}

async function list(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...COLLECTOR_OPTIONS, json: { type: "boolean", default: false } } });
  const set = await collectorGet(values, "/api/tasks") as TaskSetState;
  if (values.json) {
    console.log(JSON.stringify(set));
    return 0;
  }
  console.log(`task set version ${set.version}: ${plural(set.tasks.length, "task")}`);
  for (const t of set.tasks) {
    const target = t.target as { host: string; port: number };
    console.log(`${t.id.padEnd(24)} ${`${target.host}:${target.port}`.padEnd(30)} ${assignText(t.assign)}`);
  }
  return 0;
}

/** "every probe", or "probes edge-1, edge-2; labels site=plant-3". */
function assignText(assign: unknown): string {
  if (!assign) return "every probe";
  const a = assign as { probes?: string[]; labels?: Record<string, string> };
  return [a.probes && `probes ${a.probes.join(", ")}`, a.labels && `labels ${Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(", ")}`]
    .filter(Boolean).join("; ");
}
