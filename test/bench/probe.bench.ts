// Probe runs per second against a loopback echo server, at concurrency 1 and 64: catprobe's
// runner, a bare Node `net` loop doing the same connect/send/read/close (the floor), and
// Prometheus blackbox_exporter's tcp prober driven over HTTP when it is installed; then the
// `catprobe run` command itself against a bare loop, both as processes (run-command.ts).

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { Agent, get } from "node:http";
import { connect, createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CorePool } from "../../host/core/pool.js";
import { makeRunnable, runTask } from "../../host/probe/runner.js";
import { parseTask } from "../../host/task/load.js";
import { until } from "../helpers/until.js";
import type { Ratios } from "./harness.js";
import { type CommandFigures, benchRunCommandCase } from "./run-command.js";

const ROUND_MS = 1000;
const ROUNDS = 5;
const REQUEST = "PING\r\n";

// The echo server runs in its own process, as a real server would: in the probe's process it
// would take CPU from whichever contender is being measured.
const ECHO_SERVER = `
const server = require("node:net").createServer((sock) => {
  sock.on("error", () => {});
  const delay = Number(process.argv[1]);
  sock.on("data", (d) => (delay ? setTimeout(() => sock.write(d), delay) : sock.write(d)));
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

async function echoServer(delayMs = 0): Promise<{ port: number; close(): void }> {
  const child = spawn(process.execPath, ["-e", ECHO_SERVER, String(delayMs)], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  return { port: Number(line.toString().trim()), close: () => child.kill() };
}

interface Round { rate: number; cpuUs: number; failed: number }

/** Runs `one` in `concurrency` loops for ROUND_MS: runs per second and this process's CPU per run. */
async function throughput(concurrency: number, one: () => Promise<boolean>): Promise<Round> {
  let done = 0;
  let failed = 0;
  const end = performance.now() + ROUND_MS;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      if (!(await one())) failed++;
      done++;
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  return { rate: (done * 1000) / (performance.now() - start), cpuUs: (cpu.user + cpu.system) / done, failed };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];

function bareRun(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port, noDelay: true });
    let got = "";
    sock.on("connect", () => sock.write(REQUEST));
    sock.on("data", (d) => {
      got += d;
      if (got.includes("PING")) {
        sock.destroy();
        resolve(true);
      }
    });
    sock.on("error", () => resolve(false));
  });
}

async function startBlackbox(): Promise<{ port: number; child: ChildProcess } | null> {
  const bin = spawnSync("sh", ["-c", "command -v prometheus-blackbox-exporter"]).stdout.toString().trim();
  if (!bin) return null;
  const dir = mkdtempSync(join(tmpdir(), "catprobe-blackbox-"));
  writeFileSync(join(dir, "blackbox.yml"), [
    "modules:",
    "  tcp_ping:",
    "    prober: tcp",
    "    timeout: 5s",
    "    tcp:",
    "      query_response:",
    "        - send: \"PING\"",
    "        - expect: \"PING\"",
  ].join("\n"));
  const probe = createServer();
  probe.listen(0, "127.0.0.1");
  await once(probe, "listening");
  const port = (probe.address() as AddressInfo).port;
  probe.close();
  const child = spawn(bin, [`--config.file=${join(dir, "blackbox.yml")}`, `--web.listen-address=127.0.0.1:${port}`], {
    stdio: "ignore",
  });
  const answers = () => new Promise<boolean>((resolve) => {
    get(`http://127.0.0.1:${port}/`, (res) => { res.resume(); resolve(true); }).on("error", () => resolve(false));
  });
  try {
    await until(answers, "blackbox_exporter to answer over HTTP", 5_000, 100);
  } catch (err) {
    child.kill();
    throw err;
  }
  return { port, child };
}

function blackboxRun(agent: Agent, port: number, target: number): Promise<boolean> {
  return new Promise((resolve) => {
    get({ host: "127.0.0.1", port, agent, path: `/probe?module=tcp_ping&target=127.0.0.1:${target}` }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve(/^probe_success 1$/m.test(body)));
    }).on("error", () => resolve(false));
  });
}

/** Heap and external memory per run in flight: 1,000 runs held open by a slow server. */
async function memoryPerRun(pool: CorePool): Promise<number> {
  const slow = await echoServer(1500);
  const port = slow.port;
  const task = makeRunnable({ file: "bench", spec: parseTask("bench", JSON.stringify({
    id: "mem", target: { host: "127.0.0.1", port }, steps: [{ send: REQUEST, verify: "partial", expect: "PING" }],
  })) }, pool);
  const used = () => { const m = process.memoryUsage(); return m.heapUsed + m.external + m.arrayBuffers; };
  (globalThis as { gc?: () => void }).gc?.();
  const before = used();
  const runs = Array.from({ length: 1000 }, (_, run) => runTask(task, { probe: "bench", pool, run }));
  await new Promise((r) => setTimeout(r, 1000));
  (globalThis as { gc?: () => void }).gc?.(); // count what the open runs hold, not garbage
  const during = used();
  await Promise.all(runs);
  slow.close();
  return (during - before) / 1000;
}

/** The ratios of `catprobe run` against a bare loop, both as processes (run-command.ts). */
function addRunCommandRatios(ratios: Ratios, command: Map<string, CommandFigures>): void {
  ratios.addValue("run-command/bare-loop", command.get("catprobe run --json")!.ratio);
  ratios.addValue("run-command-table/bare-loop", command.get("catprobe run (table)")!.ratio);
}

export async function benchProbe(ratios: Ratios): Promise<void> {
  // CATPROBE_BENCH_ONLY=run-command: only that case (while working on it)
  if (process.env.CATPROBE_BENCH_ONLY === "run-command") return addRunCommandRatios(ratios, await benchRunCommandCase());
  const server = await echoServer();
  const port = server.port;
  const pool = new CorePool();
  const task = makeRunnable({ file: "bench", spec: parseTask("bench", JSON.stringify({
    id: "echo", target: { host: "127.0.0.1", port }, steps: [{ send: REQUEST, verify: "partial", expect: "PING" }],
  })) }, pool);
  let run = 0;
  const probeRun = async () => (await runTask(task, { probe: "bench", pool, run: run++ })).ok;

  console.log(`probe runs per second against a loopback echo server (median of ${ROUNDS} interleaved ${ROUND_MS} ms rounds)`);
  const blackbox = await startBlackbox();
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const rows: Record<string, Record<number, number>> = {};
  for (const c of [1, 64]) {
    const measured: [string, () => Promise<boolean>][] = [
      ["catprobe runner", probeRun],
      ["bare node net loop", () => bareRun(port)],
    ];
    if (blackbox) measured.push(["blackbox_exporter tcp", () => blackboxRun(agent, blackbox.port, port)]);
    const rounds = measured.map(() => [] as Round[]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, [, one]] of measured.entries()) rounds[i].push(await throughput(c, one));
    }
    for (const [i, [name]] of measured.entries()) {
      const rate = median(rounds[i].map((r) => r.rate));
      const cpuUs = median(rounds[i].map((r) => r.cpuUs));
      const failed = rounds[i].reduce((n, r) => n + r.failed, 0);
      (rows[name] ??= {})[c] = rate;
      // blackbox_exporter runs in its own process: the CPU here is only the HTTP client's.
      const cpu = name.startsWith("blackbox") ? "" : `  ${cpuUs.toFixed(0).padStart(4)} µs CPU/run`;
      console.log(`  ${name.padEnd(24)} c=${String(c).padEnd(3)} ${rate.toFixed(0).padStart(7)} runs/s${cpu}` +
        (failed ? `  (${failed} failed)` : ""));
    }
  }
  if (!blackbox) console.log("  blackbox_exporter not installed (apt-get install prometheus-blackbox-exporter): no ratio");
  blackbox?.child.kill();
  agent.destroy();

  server.close();

  const command = await benchRunCommandCase();

  const perRun = await memoryPerRun(pool);
  console.log(`  memory per in-flight run: ${(perRun / 1024).toFixed(1)} KiB (heap + external, 1,000 runs held open)`);
  const probe = rows["catprobe runner"][64];
  ratios.addValue("probe-c64/bare-node", probe / rows["bare node net loop"][64]);
  ratios.addValue("probe-c1/bare-node", rows["catprobe runner"][1] / rows["bare node net loop"][1]);
  addRunCommandRatios(ratios, command);
  if (blackbox) {
    ratios.addValue("probe-c64/blackbox", probe / rows["blackbox_exporter tcp"][64]);
    ratios.addValue("probe-c1/blackbox", rows["catprobe runner"][1] / rows["blackbox_exporter tcp"][1]);
  }
}
