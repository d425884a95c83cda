// Virtual probes: each one is the real probe — its own WebAssembly core instance (CorePool),
// its own spool and MQTT publisher, its own password — sharing nothing with the others but the
// process.

import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { passwordLine } from "../host/collector/passwords.js";
import { CorePool } from "../host/core/pool.js";
import { Publisher } from "../host/mqtt/publisher.js";
import { Spool } from "../host/mqtt/spool.js";

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
