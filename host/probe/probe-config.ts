// A managed probe's config message (DESIGN.md "Fleet control plane", host/wire/config.ts),
// checked before any of it is applied: the envelope, then each task exactly as `run` checks a
// task file (schema, then its data prepared and its TLS files read), then duplicate ids.

import { ConfigError } from "../config-error.js";
import type { CorePool } from "../core/pool.js";
import { parseTask } from "../task/load.js";
import { MAX_CONFIG_BYTES, parseConfig } from "../wire/config.js";
import { makeRunnable, type RunnableTask } from "./runner.js";

/** What configError may hold (the status contract's bound). */
const MAX_ERROR_CHARS = 4096;

export interface ConfigTask {
  runnable: RunnableTask;
  /**
   * the task as it runs (defaults filled in), without `assign`, which only chooses the probes:
   * two versions of a task with the same key are the same task
   */
  key: string;
}

export interface CheckedConfig {
  version: number;
  /** by task id */
  tasks: Map<string, ConfigTask>;
}

/** The tasks of a config message, or why it cannot be applied: one line naming the task, the field and the problem. */
export function checkConfig(payload: Buffer, pool: CorePool): CheckedConfig | { error: string } {
  if (payload.length > MAX_CONFIG_BYTES) return { error: `config: larger than ${MAX_CONFIG_BYTES} bytes` };
  const config = parseConfig(payload);
  if ("error" in config) return { error: `config: ${config.error}` };
  const tasks = new Map<string, ConfigTask>();
  const problems: string[] = [];
  config.tasks.forEach((task, i) => {
    // the loader's file name, so that each problem names the task: "config v3 task 1: steps[0].verify: …"
    const file = `config v${config.version} task ${i}`;
    try {
      const spec = parseTask(file, JSON.stringify(task));
      if (tasks.has(spec.id)) throw ConfigError.in(file, [`id: "${spec.id}" is already the id of another task of this config`]);
      tasks.set(spec.id, { runnable: makeRunnable({ file, spec }, pool), key: JSON.stringify({ ...spec, assign: undefined }) });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
    }
  });
  if (problems.length) return { error: oneLine(problems) };
  return { version: config.version, tasks };
}

function oneLine(problems: string[]): string {
  const line = problems.join("; ").replace(/[\r\n]+/g, " ");
  return line.length <= MAX_ERROR_CHARS ? line : `${line.slice(0, MAX_ERROR_CHARS - 1)}…`;
}
