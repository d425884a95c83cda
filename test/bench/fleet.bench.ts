// The control plane at fleet scale: N managed virtual probes in this one process (the lab's
// managed fleet: real Publisher, ManagedProbe, Scheduler, own core and spool, each logged in
// with its own password) on the collector's embedded broker. Measured: the time until every
// probe is connected and reports the collector's set (GET /api/probes), then from PUT /api/tasks
// until every probe reports the new version, for a first set and for a change of it, with the
// process's RSS before and after. No peer to compare with: plain figures, no ratio lines.
// 1,000 probes, then 10,000 bounded in time, each attempt in a child process of its own (a
// broker that fails at that scale may take the process down): on giving up, or on the child's
// death, what it printed so far (progress every 10 s) says how far it got. 10,000 are tried
// twice: all at once (as after a broker restart), then started 200 a second (about the rate
// at which 1,000 connect here).

import { createServer, type Server } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ManagedVirtualProbe } from "../../simulator/fleet.js";
import { startCollector } from "../../host/collector/collector.js";
import { fleetCredentials, fleetIds, startManagedFleet, stopFleet } from "../../simulator/fleet.js";

/** Each wait (the fleet connected, a version reported everywhere) gives up after this long. */
const BUDGET_MS = 120_000;
const MiB = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

interface Row { probe: string; appliedVersion: number | null }

function pongServer(): Promise<Server> {
  const server = createServer((s) => s.on("data", () => s.end("+PONG\r\n")).on("error", () => {}));
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** One probe task file's JSON: one run now, the next an hour later (the bench ends before). */
const task = (id: string, port: number) => ({
  id, target: { host: "127.0.0.1", port }, intervalMs: 3_600_000,
  steps: [{ send: "PING\r\n", expect: "+PONG", verify: "partial", responseTimeoutMs: 10_000 }],
});

async function benchSize(count: number, memorySpools: boolean, perSecond: number | null): Promise<void> {
  console.log(`\n${count.toLocaleString("en")} managed virtual probes, embedded broker, one process, ` +
    (perSecond ? `started ${perSecond.toLocaleString("en")} a second` : "started all at once") +
    (memorySpools ? " (spools in memory: a file spool takes 3 descriptors a probe, and the process has " +
      `${count * 2} socket ends already)` : " (spools in files)"));
  const dir = mkdtempSync(join(tmpdir(), "catprobe-bench-fleet-"));
  const server = await pongServer();
  const port = (server.address() as { port: number }).port;
  const ids = fleetIds(count, "b-");
  let t = performance.now();
  const passwords = fleetCredentials(ids, join(dir, "passwd"));
  console.log(`  password file (${count} PBKDF2-SHA512 lines, 1000 iterations)   ${secs(performance.now() - t)}`);
  const collector = await startCollector({ passwords: join(dir, "passwd"), mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(dir, "c.db") });
  const errors = new Map<string, number>();
  const log = (line: string) => {
    const kind = line.replace(/b-\d+/g, "b-N").replace(/\d+/g, "N").slice(0, 80);
    errors.set(kind, (errors.get(kind) ?? 0) + 1);
  };
  const stopRuns = new AbortController();
  const lag = monitorEventLoopDelay({ resolution: 20 });
  lag.enable();
  const pollMs = Math.max(20, count / 40);
  const probes = async () => (await (await fetch(`${collector.httpUrl}/api/probes`)).json()) as Row[];
  /** ms until every probe reports `version`, or null (with how many did) past the budget. */
  let shown = performance.now();
  const allAt = async (version: number, since: number): Promise<{ ms: number | null; at: number; seen: number }> => {
    shown = performance.now();
    const deadline = since + BUDGET_MS;
    for (;;) {
      const rows = await probes();
      const at = rows.filter((r) => r.appliedVersion === version).length;
      if (at === count) return { ms: performance.now() - since, at, seen: rows.length };
      if (performance.now() - shown > 10_000) {
        shown = performance.now();
        console.log(`    … ${secs(shown - since)}: ${rows.length} probes known to the collector, ${at} at v${version}, ` +
          `${fleet.length} started, RSS ${MiB(process.memoryUsage().rss)}`);
      }
      if (performance.now() > deadline) return { ms: null, at, seen: rows.length };
      await new Promise((r) => setTimeout(r, pollMs));
    }
  };
  const cpu0 = process.cpuUsage();
  const rss0 = process.memoryUsage().rss;
  t = performance.now();
  const fleet: ManagedVirtualProbe[] = [];
  const start = (batch: string[]) => fleet.push(...startManagedFleet(batch, collector.brokerUrl, dir, {
    passwords, log, spoolFile: memorySpools ? () => ":memory:" : undefined,
    scheduler: () => ({ signal: stopRuns.signal, forever: true, concurrency: 4 }),
  }));
  if (perSecond === null) {
    start(ids);
    console.log(`  fleet created (cores, spools, clients)                          ${secs(performance.now() - t)}`);
  } else {
    const step = Math.max(1, Math.round(perSecond / 10));
    void (async () => {
      for (let i = 0; i < ids.length && !stopRuns.signal.aborted; i += step) {
        start(ids.slice(i, i + step));
        await new Promise((r) => setTimeout(r, Math.max(0, t + ((i + step) / perSecond) * 1000 - performance.now())));
      }
    })();
  }
  const failed = (what: string, r: { at: number; seen: number }) => {
    const cpu = process.cpuUsage(cpu0);
    console.log(`  GAVE UP after ${secs(BUDGET_MS)}: ${what}; ${r.seen} probes known to the collector, ${r.at} at the version, ${fleet.length} started`);
    console.log(`  CPU in that time: ${secs((cpu.user + cpu.system) / 1000)} (user ${secs(cpu.user / 1000)}, system ${secs(cpu.system / 1000)}); ` +
      `event loop delay p99 ${(lag.percentile(99) / 1e6).toFixed(0)} ms, max ${(lag.max / 1e6).toFixed(0)} ms; RSS ${MiB(process.memoryUsage().rss)}`);
  };
  try {
    const connected = await allAt(0, t);
    if (connected.ms === null) return failed("not every probe connected and reported version 0", connected);
    const rssConnected = process.memoryUsage().rss;
    console.log(`  all connected, logged in, reporting version 0 (GET /api/probes)  ${secs(connected.ms)} from the start`);
    console.log(`  RSS: before the fleet ${MiB(rss0)}, connected ${MiB(rssConnected)} (${((rssConnected - rss0) / 1024 / count).toFixed(0)} KiB a probe)`);
    for (const [name, tasks] of [
      ["first set (1 task, every probe runs it once)", [task("ping", port)]],
      ["changed set (ping changed, one task added)", [{ ...task("ping", port), labels: { rev: "2" } }, task("ping-2", port)]],
    ] as const) {
      const before = process.memoryUsage().rss;
      const put = performance.now();
      const res = await fetch(`${collector.httpUrl}/api/tasks`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ tasks }) });
      const { version } = (await res.json()) as { version: number };
      const applied = await allAt(version, put);
      if (applied.ms === null) return failed(`not every probe reported version ${version}`, applied);
      const after = process.memoryUsage().rss;
      console.log(`  PUT → every probe reports v${version}: ${secs(applied.ms).padStart(8)}   RSS ${MiB(before)} → ${MiB(after)}   ${name}`);
    }
    const cpu = process.cpuUsage(cpu0);
    console.log(`  CPU since the fleet's start: ${secs((cpu.user + cpu.system) / 1000)}; event loop delay p99 ${(lag.percentile(99) / 1e6).toFixed(0)} ms, max ${(lag.max / 1e6).toFixed(0)} ms`);
  } finally {
    lag.disable();
    if (errors.size) {
      console.log("  probe log lines, by kind:");
      for (const [kind, n] of [...errors].sort((a, b) => b[1] - a[1]).slice(0, 5)) console.log(`    ${String(n).padStart(6)} × ${kind}`);
    }
    stopRuns.abort();
    await Promise.all(fleet.map((p) => p.scheduler.idle()));
    await Promise.race([stopFleet(fleet), new Promise((r) => setTimeout(r, 30_000))]);
    await collector.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One attempt in a child process: its lines as they come, then how it ended. */
async function inChild(...args: string[]): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), ...args], { stdio: ["ignore", "inherit", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on("exit", (c, s) => resolve([c, s])));
  if (code !== 0) {
    const why = stderr.split("\n").map((l) => l.trim()).find((l) => /^[A-Z]\w*(Error|Exception)\b|EMFILE|heap out of memory/.test(l)) ?? stderr.trim().split("\n").pop();
    console.log(`  THE PROCESS DIED (${signal ?? `exit ${code}`}): ${why}`);
    const lines = stderr.split("\n");
    const at = lines.findIndex((l) => l.trim() === why);
    for (const l of lines.slice(at + 1, at + 4).filter((l) => l.trim().startsWith("at "))) console.log(`    ${l.trim()}`);
  }
}

export async function benchFleet(): Promise<void> {
  console.log("fleet control plane: managed virtual probes receive a new task set");
  await inChild("1000", "files", "all");
  await inChild("10000", "memory", "all");
  await inChild("10000", "memory", "200");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [count, spools, rate] = process.argv.slice(2);
  await benchSize(Number(count), spools === "memory", rate === "all" ? null : Number(rate));
  process.exit(0);
}
