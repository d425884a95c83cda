// The fleet's task set in the database (DESIGN.md "Fleet control plane"): each task's JSON as
// given, and one version for the whole set. Applying a set replaces the whole set (declarative);
// the version grows by one only when a task was added, removed or its JSON changed (compared in
// canonical form, so key order and spacing are no change).

import type Database from "better-sqlite3";

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
  private readonly replace: (tasks: TaskJson[]) => TaskSetDiff;

  constructor(private readonly db: Database.Database) {
    this.replace = db.transaction((tasks: TaskJson[]) => this.diffAndWrite(tasks));
  }

  version(): number {
    return (this.db.prepare("SELECT version FROM task_set").get() as { version: number }).version;
  }

  /** The set and its version, read together; tasks ordered by id. */
  current(): TaskSetState {
    return this.db.transaction(() => ({
      version: this.version(),
      tasks: (this.db.prepare("SELECT json FROM tasks ORDER BY id").all() as { json: string }[]).map((r) => JSON.parse(r.json) as TaskJson),
    }))();
  }

  /** Replaces the whole set with `tasks` (ids unique, every task valid) in one transaction. */
  apply(tasks: TaskJson[]): TaskSetDiff {
    return this.replace(tasks);
  }

  private diffAndWrite(tasks: TaskJson[]): TaskSetDiff {
    const before = new Map((this.db.prepare("SELECT id, json FROM tasks").all() as { id: string; json: string }[])
      .map((r) => [r.id, canonicalJson(JSON.parse(r.json))]));
    const diff: TaskSetDiff = { version: 0, added: [], changed: [], removed: [], unchanged: [] };
    const upsert = this.db.prepare("INSERT INTO tasks VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET json = excluded.json");
    for (const task of tasks) {
      const was = before.get(task.id);
      before.delete(task.id);
      // An unchanged task keeps its stored form: the config its probes hold stays byte-identical.
      if (was === canonicalJson(task)) diff.unchanged.push(task.id);
      else {
        (was === undefined ? diff.added : diff.changed).push(task.id);
        upsert.run(task.id, JSON.stringify(task));
      }
    }
    diff.removed = [...before.keys()];
    const remove = this.db.prepare("DELETE FROM tasks WHERE id = ?");
    for (const id of diff.removed) remove.run(id);
    if (diff.added.length || diff.changed.length || diff.removed.length) this.db.prepare("UPDATE task_set SET version = version + 1").run();
    diff.version = this.version();
    for (const list of [diff.added, diff.changed, diff.removed, diff.unchanged]) list.sort();
    return diff;
  }
}
