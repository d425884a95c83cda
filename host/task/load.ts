// Reads task files: one file, or every *.json file in a directory.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { ConfigError } from "./config-error.js";
import { taskSchema, type TaskSpec } from "./schema.js";

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
  const shown = value === undefined ? "" : ` (got ${JSON.stringify(value)?.slice(0, 80)})`;
  if (issue.code === "unrecognized_keys") return `${field}: unknown field ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
  if (issue.code === "invalid_type" && value === undefined) return `${field}: is required`;
  return `${field}: ${issue.message}${shown}`;
}

export function parseTask(file: string, text: string): TaskSpec {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw ConfigError.in(file, [`not valid JSON: ${(err as Error).message}`]);
  }
  const parsed = taskSchema.safeParse(json);
  if (!parsed.success) throw ConfigError.in(file, parsed.error.issues.map((i) => describeIssue(i, json)));
  return parsed.data;
}

export function loadTaskFile(file: string): LoadedTask {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw ConfigError.in(file, [`cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
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
