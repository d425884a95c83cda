// The exporter's modules: the tasks of --tasks DIR, loaded with the task loader (every problem
// in every file reported at once, as `run` does) and prepared by the core once. A reload that
// finds a problem keeps the modules it had.

import type { CorePool } from "../core/pool.js";
import { makeRunnable, type RunnableTask } from "../probe/runner.js";
import { loadTasks } from "../task/load.js";

export class Modules {
  private byId = new Map<string, RunnableTask>();

  constructor(private readonly path: string, private readonly pool: CorePool) {
    this.reload();
  }

  /** Loads the tasks again; throws (a ConfigError) and keeps the old set on any problem. */
  reload(): void {
    const next = new Map<string, RunnableTask>();
    for (const loaded of loadTasks(this.path)) next.set(loaded.spec.id, makeRunnable(loaded, this.pool));
    this.byId = next;
  }

  get(id: string): RunnableTask | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.byId.size;
  }

  list(): RunnableTask[] {
    return [...this.byId.values()];
  }
}
