// Runs tasks written inline in a test through the real loader, preparer and runner.

import { CorePool } from "../../host/core/pool.js";
import type { ResultRecord } from "../../host/wire/record.js";
import { makeRunnable, runTask } from "../../host/probe/runner.js";
import { parseTask } from "../../host/task/load.js";

export const pool = new CorePool("release");

/** A task object as a user would write it in a task file; the id defaults to "t". */
export function runnable(task: Record<string, unknown>) {
  const spec = parseTask("inline.json", JSON.stringify({ id: "t", ...task }));
  return makeRunnable({ file: "inline.json", spec }, pool);
}

export function runOnce(task: Record<string, unknown>, run = 0): Promise<ResultRecord> {
  return runTask(runnable(task), { probe: "test-probe", pool, run });
}
