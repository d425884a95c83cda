// A managed probe (`catprobe probe --managed`, DESIGN.md "Fleet control plane"): runs what its
// config topic says. Each config is checked whole (host/probe/probe-config.ts); an invalid one
// is not applied, the probe keeps running its last good config and reports why in configError.
// A valid one is applied whatever its version, also one lower than the applied version: the
// versions are the collector's (a collector that lost its database starts again at 1), and the
// probe runs what the collector says now. Applying a config: new tasks start, removed tasks
// stop scheduling (their runs in flight finish and are handed on), changed tasks start their
// schedule over, unchanged tasks keep theirs untouched, phase and all. The applied config is
// kept on disk (host/probe/config-file.ts) and run again at the next start.

import type { CorePool } from "../core/pool.js";
import { plural } from "../text/plural.js";
import { readConfigFile, writeConfigFile } from "./config-file.js";
import { checkConfig, type CheckedConfig } from "./probe-config.js";
import type { Schedule, Scheduler } from "./schedule.js";

export interface ConfigState {
  /** the config version running, null before any was applied */
  appliedVersion: number | null;
  /** why the last config received (or the one on disk) was not applied, null when it was */
  configError: string | null;
}

export interface ManagedOptions {
  /** runs the tasks; a scheduler for good (forever), stopped by its signal */
  scheduler: Scheduler;
  pool: CorePool;
  /** where the applied config is kept */
  configFile: string;
  /** each change of the config state (for the probe's status) */
  onState: (state: ConfigState) => void;
  log: (line: string) => void;
}

export class ManagedProbe {
  private readonly running = new Map<string, { key: string; schedule: Schedule }>();
  private state: ConfigState = { appliedVersion: null, configError: null };

  constructor(private readonly opts: ManagedOptions) {}

  /** Runs the config kept on disk, if there is one (at start, before any broker connection). */
  resume(): void {
    const { configFile } = this.opts;
    let payload: Buffer | null;
    try {
      payload = readConfigFile(configFile);
    } catch (err) {
      return this.refuse(`${configFile}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (payload === null) return;
    const checked = checkConfig(payload, this.opts.pool);
    if ("error" in checked) return this.refuse(`${configFile}: ${checked.error}`);
    this.apply(checked, "kept in " + configFile);
  }

  /** A message from the config topic. */
  receive(payload: Buffer): void {
    if (payload.length === 0) return; // the retained config was cleared: nothing new to run
    const checked = checkConfig(payload, this.opts.pool);
    if ("error" in checked) return this.refuse(checked.error);
    if (this.apply(checked, "received")) this.keep(payload);
  }

  /** Applies a checked config; false when it changes nothing (the same config again, at a reconnect). */
  private apply(config: CheckedConfig, how: string): boolean {
    const { scheduler } = this.opts;
    const counts = { added: 0, changed: 0, removed: 0, unchanged: 0 };
    for (const [id, old] of this.running) {
      if (config.tasks.has(id)) continue;
      void old.schedule.stop();
      this.running.delete(id);
      counts.removed++;
    }
    for (const [id, task] of config.tasks) {
      const old = this.running.get(id);
      if (old?.key === task.key) {
        counts.unchanged++;
        continue;
      }
      const schedule = old ? scheduler.replace(old.schedule, task.runnable) : scheduler.start(task.runnable);
      this.running.set(id, { key: task.key, schedule });
      counts[old ? "changed" : "added"]++;
    }
    const same = config.version === this.state.appliedVersion && counts.unchanged === config.tasks.size && counts.removed === 0;
    if (!same) {
      this.opts.log(`config v${config.version} ${how}: ${plural(config.tasks.size, "task")} (${counts.added} added, ` +
        `${counts.changed} changed, ${counts.removed} removed, ${counts.unchanged} unchanged)`);
    }
    this.setState({ appliedVersion: config.version, configError: null });
    return !same;
  }

  private keep(payload: Buffer): void {
    try {
      writeConfigFile(this.opts.configFile, payload.toString("utf8"));
    } catch (err) {
      // still applied: it runs until the next start, which runs the config kept before
      this.opts.log(`cannot keep the config in ${this.opts.configFile}: ${(err as Error).message}`);
    }
  }

  private refuse(error: string): void {
    this.opts.log(`config not applied (${this.state.appliedVersion === null ? "no config runs" : `v${this.state.appliedVersion} runs on`}): ${error}`);
    this.setState({ ...this.state, configError: error });
  }

  private setState(state: ConfigState): void {
    if (state.appliedVersion === this.state.appliedVersion && state.configError === this.state.configError) return;
    this.state = state;
    this.opts.onState(state);
  }
}
