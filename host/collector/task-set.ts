// The fleet's task set in the database (DESIGN.md "Fleet control plane"): each task's JSON as
// given, and one version for the whole set. Applying a set replaces the whole set (declarative);
// the version grows by one only when a task was added, removed or its JSON changed (compared in
// canonical form, so key order and spacing are no change). Collectors sharing one database
// apply one set after the other: each apply first locks the task_set row.

import type { SqlDb } from "./db/sql.js";

/** A task as given: validated JSON with a string id. */
export type TaskJson = Record<string, unknown> & { id: string };

export interface TaskSetState {
  version: number;
  tasks: TaskJson[];
}

export interface TaskSetDiff {
  version: number;
  added: string[];
  changed: string[];
  removed: string[];
  unchanged: string[];
}

/** JSON with every object's keys sorted: equal for equal values, whatever the order given. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "object" && v !== null && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : v));
}

export class TaskSet {
  constructor(private readonly db: SqlDb) {}

  async version(db: SqlDb = this.db): Promise<number> {
    return (await db.get<{ version: number }>("SELECT version FROM task_set"))!.version;
  }

  /**
   * The set and its version as of one moment, without a lock: read again when an apply
   * committed in between (each statement sees the latest commit on PostgreSQL).
   */
  async current(): Promise<TaskSetState> {
    for (;;) {
      const version = await this.version();
      const rows = await this.db.all<{ json: string }>("SELECT json FROM tasks ORDER BY id");
      if (await this.version() === version) return { version, tasks: rows.map((r) => JSON.parse(r.json) as TaskJson) };
    }
  }

  /** Replaces the whole set with `tasks` (ids unique, every task valid) in one transaction. */
  apply(tasks: TaskJson[]): Promise<TaskSetDiff> {
    return this.db.transaction(async (tx) => {
      // taken first: another collector's apply waits here until this one commits
      await tx.run("UPDATE task_set SET version = version");
      return this.diffAndWrite(tx, tasks);
    });
  }

  private async diffAndWrite(tx: SqlDb, tasks: TaskJson[]): Promise<TaskSetDiff> {
    const before = new Map((await tx.all<{ id: string; json: string }>("SELECT id, json FROM tasks"))
      .map((r) => [r.id, canonicalJson(JSON.parse(r.json))]));
    const diff: TaskSetDiff = { version: 0, added: [], changed: [], removed: [], unchanged: [] };
    for (const task of tasks) {
      const was = before.get(task.id);
      before.delete(task.id);
      // An unchanged task keeps its stored form: the config its probes hold stays byte-identical.
      if (was === canonicalJson(task)) diff.unchanged.push(task.id);
      else {
        (was === undefined ? diff.added : diff.changed).push(task.id);
        await tx.run("INSERT INTO tasks VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET json = excluded.json", [task.id, JSON.stringify(task)]);
      }
    }
    diff.removed = [...before.keys()];
    for (const id of diff.removed) await tx.run("DELETE FROM tasks WHERE id = ?", [id]);
    if (diff.added.length || diff.changed.length || diff.removed.length) await tx.run("UPDATE task_set SET version = version + 1");
    diff.version = await this.version(tx);
    for (const list of [diff.added, diff.changed, diff.removed, diff.unchanged]) list.sort();
    return diff;
  }
}
