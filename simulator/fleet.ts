// Virtual probes: each one is the real probe — its own WebAssembly core instance (CorePool),
// its own spool and MQTT publisher, its own password — sharing nothing with the others but the
// process. A managed fleet's probes are managed probes, wired as `catprobe probe --managed`
// wires one (host/probe/managed-run.ts): each runs what its config topic says.

import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { passwordLine } from "../host/collector/passwords.js";
import { CorePool } from "../host/core/pool.js";
import { Publisher } from "../host/mqtt/publisher.js";
import { Spool } from "../host/mqtt/spool.js";
import type { ConfigState } from "../host/probe/managed.js";
import { startManagedRun } from "../host/probe/managed-run.js";
import type { Scheduler, SchedulerOptions } from "../host/probe/schedule.js";

export interface VirtualProbe {
  id: string;
  pool: CorePool;
  spool: Spool;
  publisher: Publisher;
}

export const fleetIds = (count: number, idPrefix: string) => Array.from({ length: count }, (_, i) => `${idPrefix}${i + 1}`);

/** A random password for each probe, and a password file for the broker (mosquitto_passwd format, owner-only). */
export function fleetCredentials(ids: string[], file: string): Map<string, string> {
  const passwords = new Map(ids.map((id) => [id, randomBytes(18).toString("base64url")]));
  writeFileSync(file, [...passwords].map(([id, pw]) => passwordLine(id, pw)).join("\n") + "\n", { mode: 0o600 });
  return passwords;
}

/** Starts a probe for each id; with `passwords`, each logs in as a real probe does (username = its id). */
export function startFleet(ids: string[], brokerUrl: string, dir: string, passwords?: Map<string, string>): VirtualProbe[] {
  return ids.map((id) => {
    const spool = new Spool(join(dir, `spool-${id}.db`), 16 << 20);
    const password = passwords?.get(id);
    const publisher = new Publisher({ brokerUrl, probe: id, spool, ...(password ? { username: id, password } : {}) });
    return { id, pool: new CorePool(), spool, publisher };
  });
}

export interface ManagedVirtualProbe extends VirtualProbe {
  labels: Record<string, string>;
  scheduler: Scheduler;
  /** the config state it last reported */
  state: ConfigState;
}

export interface ManagedFleetOptions {
  passwords?: Map<string, string>;
  /** probe i's labels (default none) */
  labels?: (i: number) => Record<string, string>;
  /** how probe i runs its tasks (probe and pool are its own) */
  scheduler?: (i: number) => Omit<SchedulerOptions, "probe" | "pool">;
  /** each change of probe i's config state */
  onState?: (i: number, state: ConfigState) => void;
  /** spool file of probe i (default spool-{id}.db in dir; ":memory:" keeps it in memory) */
  spoolFile?: (i: number) => string;
  /** status period (default the probe's) */
  statusEveryMs?: number;
  log?: (line: string) => void;
}

/** Starts a managed probe for each id: no task until its config topic brings one. */
export function startManagedFleet(ids: string[], brokerUrl: string, dir: string, opts: ManagedFleetOptions = {}): ManagedVirtualProbe[] {
  return ids.map((id, i) => {
    const spool = new Spool(opts.spoolFile?.(i) ?? join(dir, `spool-${id}.db`), 16 << 20);
    const password = opts.passwords?.get(id);
    const labels = opts.labels?.(i) ?? {};
    const pool = new CorePool();
    const probe: Partial<ManagedVirtualProbe> = { id, pool, spool, labels, state: { appliedVersion: null, configError: null } };
    const run = startManagedRun({
      publisher: { brokerUrl, probe: id, spool, labels, statusEveryMs: opts.statusEveryMs, ...(password ? { username: id, password } : {}) },
      scheduler: { ...opts.scheduler?.(i), probe: id, pool },
      configFile: join(dir, `config-${id}.json`),
      log: opts.log ?? (() => {}),
      onState: (state) => {
        probe.state = state;
        opts.onState?.(i, state);
      },
    });
    return Object.assign(probe, { publisher: run.publisher, scheduler: run.scheduler }) as ManagedVirtualProbe;
  });
}

/** Results still waiting in the fleet's spools. */
export function undelivered(fleet: VirtualProbe[]): number {
  return fleet.reduce((n, p) => n + p.spool.size, 0);
}

export async function stopFleet(fleet: VirtualProbe[]): Promise<void> {
  await Promise.all(fleet.map(async (p) => {
    await p.publisher.close();
    p.spool.close();
  }));
}
