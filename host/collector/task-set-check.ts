// Checks a task set given to `PUT /api/tasks` exactly as `run` checks task files (parseTask on
// each task's JSON, ids unique across the set), and names every problem by task and field.

import { ConfigError } from "../config-error.js";
import { MAX_NESTING, MAX_TASK_FILE_BYTES, parseTask } from "../task/load.js";
import { plural } from "../text/plural.js";
import type { TaskJson } from "./task-set.js";

export interface TaskProblem {
  /** the task's id, or `tasks[i]` when it has none usable */
  task: string;
  /** `steps[0].verify`, or `(top level)` */
  field: string;
  /** the line `run` prints, without the file: field, value and what is wrong */
  message: string;
}

export type CheckedSet = { tasks: TaskJson[] } | { error: string; problems: TaskProblem[] };

/**
 * A problem line of describeIssue: the field, then optionally the value as JSON, then ": ".
 * The field is matched lazily so that a value holding ": " stays out of it.
 */
const PROBLEM = /^(.*?)(?: (?:"(?:[^"\\]|\\.)*"|\{.*?\}|\[.*?\]|-?[\d.eE+]+|true|false|null))?: /s;

function problem(task: string, message: string): TaskProblem {
  return { task, field: PROBLEM.exec(message)?.[1] ?? "(top level)", message };
}

/** The problems of one task (none when it is valid). */
function taskProblems(task: unknown, label: string): TaskProblem[] {
  let text: string;
  try {
    text = JSON.stringify(task);
  } catch {
    // only a value nested far too deep cannot be written out again
    return [problem(label, `(top level): nesting deeper than ${MAX_NESTING} levels of objects and arrays`)];
  }
  if (Buffer.byteLength(text) > MAX_TASK_FILE_BYTES) {
    return [problem(label, `(top level): larger than ${MAX_TASK_FILE_BYTES >> 20} MiB, the most a task file may hold`)];
  }
  try {
    parseTask(label, text);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => problem(label, p.slice(label.length + 2))); // "<label>: " off
  }
}

const idOf = (task: unknown): string | undefined => {
  const id = (task as { id?: unknown } | null)?.id;
  return typeof id === "string" ? id : undefined;
};

/** The body of `PUT /api/tasks`, `{ "tasks": [...] }`: the tasks to apply, or every problem. */
export function checkTaskSet(body: unknown): CheckedSet {
  const tasks = (body as { tasks?: unknown } | null)?.tasks;
  if (typeof body !== "object" || body === null || !Array.isArray(tasks)) {
    return { error: 'the body must be { "tasks": [ task, … ] }', problems: [] };
  }
  const problems: TaskProblem[] = [];
  const seen = new Map<string, number>();
  tasks.forEach((task, i) => {
    const id = idOf(task);
    problems.push(...taskProblems(task, id ?? `tasks[${i}]`));
    if (id === undefined) return;
    const other = seen.get(id);
    if (other !== undefined) problems.push({ task: id, field: "id", message: `id: "${id}" is already the id of tasks[${other}] (tasks[${i}])` });
    else seen.set(id, i);
  });
  if (problems.length) return { error: `${plural(problems.length, "problem")} in the task set; nothing was applied`, problems };
  return { tasks: tasks as TaskJson[] };
}
