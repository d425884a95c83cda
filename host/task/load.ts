// Reads task files: one file, or every *.json file in a directory. A file's size and its
// nesting are bounded before it is parsed, so no input can exhaust memory or the stack.

import { closeSync, openSync, readSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import * as z from "../zod.js";
import { ConfigError } from "../config-error.js";
import { parseJsonText } from "../json-text.js";
import { taskSchema, type TaskSpec } from "./schema.js";

/** A task file is configuration: a few kilobytes, rarely more. */
export const MAX_TASK_FILE_BYTES = 1 << 20;
/** How deep a task file may nest (host/json-text.ts). */
export { MAX_NESTING } from "../json-text.js";

export interface LoadedTask {
  file: string;
  spec: TaskSpec;
}

/** `steps[1].verify` for zod's ["steps", 1, "verify"]. */
function fieldPath(path: PropertyKey[]): string {
  return path.reduce<string>((out, key) =>
    typeof key === "number" ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key), "");
}

export function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const field = fieldPath(issue.path) || "(top level)";
  let value: unknown = input;
  for (const key of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[key];
  const quoted = JSON.stringify(value)?.slice(0, 80);
  if (issue.code === "unrecognized_keys") return `${field}: unknown field ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
  // A missing field of a fixed type or of a list of options (verify, format) alike.
  if ((issue.code === "invalid_type" || issue.code === "invalid_value") && value === undefined) return `${field}: is required`;
  if (value === undefined) return `${field}: ${issue.message}`;
  // Our own checks say what the value should be: "target.host "10.0.0.1:6379": a host without a port".
  if (issue.code === "custom") return `${field} ${quoted}: ${issue.message}`;
  return `${field}: ${issue.message} (got ${quoted})`;
}

export function parseTask(file: string, text: string): TaskSpec {
  const json = parseJsonText(file, text);
  const parsed = taskSchema.safeParse(json);
  if (!parsed.success) throw ConfigError.in(file, parsed.error.issues.map((i) => describeIssue(i, json)));
  return parsed.data;
}

/** The file's text, or null when it holds more than MAX_TASK_FILE_BYTES (reads no further). */
function readBounded(file: string): string | null {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(MAX_TASK_FILE_BYTES + 1);
    let length = 0;
    let n: number;
    while (length < buf.length && (n = readSync(fd, buf, length, buf.length - length, null)) > 0) length += n;
    return length > MAX_TASK_FILE_BYTES ? null : buf.toString("utf8", 0, length);
  } finally {
    closeSync(fd);
  }
}

export function loadTaskFile(file: string): LoadedTask {
  let text: string | null;
  try {
    text = readBounded(file);
  } catch (err) {
    throw ConfigError.in(file, [`cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  if (text === null) throw ConfigError.in(file, [`larger than ${MAX_TASK_FILE_BYTES >> 20} MiB, the most a task file may hold`]);
  return { file, spec: parseTask(file, text) };
}

/**
 * One task file, or every *.json in a directory (sorted by name). All problems in all files
 * are collected into one ConfigError, so a user fixes them in one pass.
 */
export function loadTasks(path: string): LoadedTask[] {
  let files: string[];
  try {
    files = statSync(path).isDirectory()
      ? readdirSync(path).filter((f) => f.endsWith(".json")).sort().map((f) => join(path, f))
      : [path];
  } catch (err) {
    throw ConfigError.in(path, [`cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  if (files.length === 0) throw ConfigError.in(path, ["no *.json task files in this directory"]);
  const tasks: LoadedTask[] = [];
  const problems: string[] = [];
  for (const file of files) {
    try {
      tasks.push(loadTaskFile(file));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
    }
  }
  const seen = new Map<string, string>();
  for (const { file, spec } of tasks) {
    const other = seen.get(spec.id);
    if (other) problems.push(`${file}: id: "${spec.id}" is already the id of ${other}`);
    seen.set(spec.id, file);
  }
  if (problems.length) throw new ConfigError(problems);
  return tasks;
}
