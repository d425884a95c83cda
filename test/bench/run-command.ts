// `catprobe run` as a user runs it, against a bare Node loop doing the same sequential
// connect/send/read/close: both are child processes timed from spawn to exit (start-up
// included), stdout to /dev/null, against an echo server in a third process, a new one for
// each timed run.
//
// This machine is shared (other builds and tests run on the same two cores), so one round says
// little: the contenders run in interleaved rounds, each round in another order, and the ratio
// is the median of the per-round ratios (each catprobe run against the bare loop of its own
// round, so a slow stretch of the machine lands on both sides of the ratio). The spread of the
// bare loop's rates is printed as the check on how steady the machine was.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { readManifest, upToDate } from "../../bin/compiled-copy.js";

export const RUN_COUNT = 20_000;
/** Interleaved rounds (CATPROBE_BENCH_ROUNDS to change). */
export const ROUNDS = Number(process.env.CATPROBE_BENCH_ROUNDS) || 7;

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

const ECHO_SERVER = `
const server = require("node:net").createServer((sock) => {
  sock.on("error", () => {});
  sock.on("data", (d) => sock.write(d));
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

/** An echo server in its own process. */
async function echoServer(): Promise<{ port: number; close(): void }> {
  const child = spawn(process.execPath, ["-e", ECHO_SERVER], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  return { port: Number(line.toString().trim()), close: () => child.kill() };
}

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

export interface Contender { name: string; args: (task: string, port: number, count: number) => string[] }

export const CONTENDERS: Contender[] = [
  { name: "catprobe run --json", args: (task) => ["bin/catprobe.js", "run", task, "--json", "--probe", "bench"] },
  { name: "catprobe run (table)", args: (task) => ["bin/catprobe.js", "run", task, "--probe", "bench"] },
  { name: "bare node loop", args: (_, port, count) => ["-e", BARE_LOOP, String(port), String(count)] },
];
export const BASELINE = "bare node loop";

/** A task file of `count` sequential runs (intervalMs 0) against 127.0.0.1:port. */
function taskFile(dir: string, port: number, count: number): string {
  const task = join(dir, `echo-${count}.json`);
  writeFileSync(task, JSON.stringify({
    id: "echo", target: { host: "127.0.0.1", port }, count, intervalMs: 0,
    steps: [{ send: "PING\r\n", verify: "partial", expect: "PING" }],
  }));
  return task;
}

export interface CommandFigures {
  name: string;
  /** runs per second of each round, in round order */
  rates: number[];
  /** median seconds from spawn to exit with a task of one run: start-up and exit */
  startupS: number;
  /** median over rounds of this contender's rate ÷ the baseline's rate in the same round */
  ratio: number;
}

export const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Seconds of one timed run of `count` runs, against an echo server started for it alone: the
 * 20,000 connections a run leaves in TIME_WAIT are to that server's port, and a later run's
 * connects to a port of its own do not have to search past them for a free local port.
 */
async function timedRun(c: Contender, dir: string, count: number): Promise<number> {
  const server = await echoServer();
  try {
    return await timed(c.args(taskFile(dir, server.port, count), server.port, count));
  } finally {
    server.close();
  }
}

/**
 * Throws unless the bin ran its compiled copy: when the tree does not build (a change of
 * another module half done), it runs the sources through tsx, slower to start and to run, and
 * the figures would not be the command's. The warm-up brings a buildable tree's copy up to date.
 */
function assertCompiledCopy(when: string): void {
  if (!upToDate(readManifest())) {
    throw new Error(`${when}: catprobe ran through tsx, not its compiled copy (bin/compiled-copy.js): ` +
      "does the tree build (npx esbuild --bundle cli/main.ts --packages=external)?");
  }
}

/**
 * Each contender's figures over `rounds` interleaved rounds of RUN_COUNT runs, after one
 * untimed warm-up of each (file cache, the CLI's compiled copy); start-up measured with one run.
 */
export async function measureRunCommand(rounds = ROUNDS): Promise<CommandFigures[]> {
  const dir = mkdtempSync(join(tmpdir(), "catprobe-bench-run-"));
  const n = CONTENDERS.length;
  const rates = CONTENDERS.map(() => [] as number[]);
  const startups = CONTENDERS.map(() => [] as number[]);
  try {
    for (const c of CONTENDERS) await timedRun(c, dir, 1000);
    assertCompiledCopy("after the warm-up");
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < n; k++) {
        // Rotated, and reversed every other round: by rotation alone each contender would always
        // run right after the same other one; with three, six rounds make every order.
        const i = (round + (round % 2 ? n - 1 - k : k)) % n;
        startups[i].push(await timedRun(CONTENDERS[i], dir, 1));
        rates[i].push(RUN_COUNT / (await timedRun(CONTENDERS[i], dir, RUN_COUNT)));
      }
    }
    assertCompiledCopy("after the rounds"); // a source changed meanwhile: some runs compiled it anew
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const base = rates[CONTENDERS.findIndex((c) => c.name === BASELINE)];
  return CONTENDERS.map((c, i) => ({
    name: c.name,
    rates: rates[i],
    startupS: median(startups[i]),
    ratio: median(rates[i].map((r, round) => r / base[round])),
  }));
}

/** Prints the figures; returns them by name. */
export async function benchRunCommandCase(rounds = ROUNDS): Promise<Map<string, CommandFigures>> {
  console.log(`\`catprobe run\` of one task, count ${RUN_COUNT}, intervalMs 0, as a child process from spawn to exit ` +
    `(${rounds} interleaved rounds, an echo server process for each run; load average ${loadavg()[0].toFixed(2)})`);
  const figures = await measureRunCommand(rounds);
  for (const f of figures) {
    const lo = Math.min(...f.rates);
    const hi = Math.max(...f.rates);
    const ratio = f.name === BASELINE ? "" : `  ${f.ratio.toFixed(2)}× bare (per-round median)`;
    console.log(`  ${f.name.padEnd(24)} ${median(f.rates).toFixed(0).padStart(7)} runs/s median ` +
      `(${lo.toFixed(0)}–${hi.toFixed(0)}, ±${((100 * (hi - lo)) / 2 / median(f.rates)).toFixed(0)} %)  ` +
      `start-up ${(f.startupS * 1000).toFixed(0)} ms${ratio}`);
    console.log(`    rounds: ${f.rates.map((r) => r.toFixed(0)).join(" ")}`);
  }
  console.log(`  load average after: ${loadavg()[0].toFixed(2)}`);
  return new Map(figures.map((f) => [f.name, f]));
}
