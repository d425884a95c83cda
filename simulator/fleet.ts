// Virtual probes: each one is the real probe — its own WebAssembly core instance (CorePool),
// its own spool and MQTT publisher — sharing nothing with the others but the process.

import { join } from "node:path";
import { CorePool } from "../host/core/pool.js";
import { Publisher } from "../host/mqtt/publisher.js";
import { Spool } from "../host/mqtt/spool.js";

export interface VirtualProbe {
  id: string;
  pool: CorePool;
  spool: Spool;
  publisher: Publisher;
}

export function startFleet(count: number, idPrefix: string, brokerUrl: string, dir: string): VirtualProbe[] {
  return Array.from({ length: count }, (_, i) => {
    const id = `${idPrefix}${i + 1}`;
    const spool = new Spool(join(dir, `spool-${id}.db`), 16 << 20);
    return { id, pool: new CorePool(), spool, publisher: new Publisher({ brokerUrl, probe: id, spool }) };
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
