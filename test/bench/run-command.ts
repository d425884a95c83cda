// `catprobe run` as a user runs it, against a bare Node loop doing the same sequential
// connect/send/read/close: both are child processes timed from spawn to exit (start-up
// included), stdout to /dev/null, against the echo server in a third process.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, openSync, closeSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const RUN_COUNT = 20_000;

const BARE_LOOP = `
const { connect } = require("node:net");
const [port, count] = process.argv.slice(1).map(Number);
function one() {
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port, noDelay: true });
    let got = "";
    sock.on("connect", () => sock.write("PING\\r\\n"));
    sock.on("data", (d) => { got += d; if (got.includes("PING")) { sock.destroy(); resolve(true); } });
    sock.on("error", () => resolve(false));
  });
}
(async () => { let failed = 0; for (let i = 0; i < count; i++) if (!(await one())) failed++; process.exitCode = failed ? 1 : 0; })();
`;

/** Seconds from spawn to exit of `args` (node …), stdout to /dev/null; throws unless it exits 0. */
async function timed(args: string[]): Promise<number> {
  const devNull = openSync("/dev/null", "w");
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ["ignore", devNull, "inherit"] });
  const [code] = (await once(child, "exit")) as [number | null];
  const s = (performance.now() - t0) / 1000;
  closeSync(devNull);
  if (code !== 0) throw new Error(`node ${args.join(" ")}: exit ${code}`);
  return s;
}

export interface Contender { name: string; args: string[] }

/** The contenders for one task of RUN_COUNT sequential runs against 127.0.0.1:port. */
export function runCommandContenders(port: number): Contender[] {
  const dir = mkdtempSync(join(tmpdir(), "catprobe-bench-run-"));
  const task = join(dir, "echo.json");
  writeFileSync(task, JSON.stringify({
    id: "echo", target: { host: "127.0.0.1", port }, count: RUN_COUNT, intervalMs: 0,
    steps: [{ send: "PING\r\n", verify: "partial", expect: "PING" }],
  }));
  return [
    { name: "catprobe run --json", args: ["bin/catprobe.js", "run", task, "--json", "--probe", "bench"] },
    { name: "catprobe run (table)", args: ["bin/catprobe.js", "run", task, "--probe", "bench"] },
    { name: "bare node loop", args: ["-e", BARE_LOOP, String(port), String(RUN_COUNT)] },
  ];
}

/** Runs per second of each contender: the median of `rounds` interleaved rounds. */
export async function measureRunCommand(port: number, rounds: number): Promise<Map<string, number>> {
  const contenders = runCommandContenders(port);
  const rates = contenders.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    for (const [i, c] of contenders.entries()) rates[i].push(RUN_COUNT / (await timed(c.args)));
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
  return new Map(contenders.map((c, i) => [c.name, median(rates[i])]));
}
