// 10,000 runs against mixed faults: every run yields one result with the right code, and
// afterwards no socket or timer is left open and the heap has not grown.

import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runSchedules } from "../../host/probe/schedule.js";
import { pool, runnable } from "../helpers/probe.js";
import { closedPort, tcpServer, type TestServer } from "../helpers/tcp.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

let servers: TestServer[] = [];
beforeAll(async () => {
  servers = await Promise.all([
    tcpServer((sock) => sock.on("data", (d) => sock.write(d))), // echo
    tcpServer((sock) => sock.once("data", () => sock.end("-ERR\r\n"))), // wrong reply, then close
    tcpServer((sock) => sock.once("data", () => sock.end())), // close without a byte
    tcpServer((sock) => sock.once("data", () => sock.resetAndDestroy())), // reset
  ]);
});
afterAll(() => Promise.all(servers.map((s) => s.close())));

function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

/** Active resources once sockets still closing have closed (up to a second). */
async function settledResources(): Promise<Record<string, number>> {
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const now = resources();
    if (!now.TCPSocketWrap && !now.ShutdownWrap && !now.SimpleShutdownWrap) return now;
  }
  return resources();
}

describe("10,000 runs against mixed faults", () => {
  it("gives each its code and leaves no open handles and no heap growth", async () => {
    const [echo, wrong, closing, resetting] = servers;
    const refused = await closedPort();
    const at = (port: number) => ({ host: "127.0.0.1", port });
    const ping = { send: "PING\r\n", verify: "partial", expect: "PING" };
    const mix: [Record<string, unknown>, number | null][] = [
      [{ id: "pass", target: at(echo.port), steps: [ping] }, null],
      [{ id: "wrong", target: at(wrong.port), steps: [ping] }, 607],
      [{ id: "closed", target: at(closing.port), steps: [ping] }, 603],
      [{ id: "reset", target: at(resetting.port), steps: [ping] }, 603],
      [{ id: "refused", target: at(refused), steps: [ping] }, 601],
      [{ id: "badhex", target: at(echo.port), steps: [{ send: "zz", format: "buffer", verify: "none" }] }, 605],
    ];
    const run = (count: number) => runSchedules(
      mix.map(([task]) => runnable({ ...task, count, intervalMs: 0 })), { probe: "soak", pool, concurrency: 64 });

    await run(50); // warm up: JIT, core pool, socket buffers
    const handlesBefore = await settledResources();
    gc();
    const heapBefore = process.memoryUsage().heapUsed;

    const results = await run(1667); // 6 × 1667 = 10,002 runs
    expect(results).toHaveLength(10_002);
    const expected = new Map(mix.map(([task, code]) => [task.id as string, code]));
    const wrongCodes = results.filter((r) => r.code !== expected.get(r.task));
    expect(wrongCodes.slice(0, 3)).toEqual([]);

    expect(await settledResources()).toEqual(handlesBefore);
    gc();
    const growth = process.memoryUsage().heapUsed - heapBefore;
    // The 10,002 result records themselves are still referenced here (~5 MB).
    expect(growth).toBeLessThan(16 << 20);
    expect(pool.size).toBeLessThanOrEqual(4);
  }, 120_000);
});
