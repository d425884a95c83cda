// The lab: starts the fault servers, a collector (embedded broker) and a fleet of virtual
// probes, runs every probe's tasks, and knows which fault it injected into every run. At the
// end it compares the collector's top five with the ground truth, and every run's code with
// the code DESIGN.md says its fault must produce.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ErrorCode } from "../host/codes.js";
import { startCollector, type Collector } from "../host/collector/collector.js";
import { CorePool } from "../host/core/pool.js";
import { rankTop, type TopErrors } from "../host/collector/stats.js";
import { makeRunnable, runTask, type RunnableTask } from "../host/probe/runner.js";
import { Semaphore } from "../host/probe/semaphore.js";
import { parseTask } from "../host/task/load.js";
import { createLabPki } from "./certs.js";
import {
  FAULTS, LAB_LIMITS, dnsZone, faultCode, faultSteps, startFault, trustsLabCa, type FaultName, type RunningFault,
} from "./faults.js";
import { startFleet, stopFleet, undelivered } from "./fleet.js";
import { rng } from "./random.js";
import type { LabTask, Scenario } from "./scenario.js";
import { startDnsServer, type DnsServer } from "./servers/dns.js";

export interface LabOptions {
  /** HTTP address of the collector (default 127.0.0.1:0) */
  http?: string;
  /** embedded MQTT broker address (default 127.0.0.1:0) */
  mqttListen?: string;
  /** collector database (default: a file in a temp dir) */
  db?: string;
  /** keep the temp dir (certificates, spools, the default database) after close() */
  keepDir?: boolean;
  onProgress?: (p: LabProgress) => void;
}

export interface LabProgress {
  done: number;
  total: number;
  delivered: number;
  /** runs whose code differed from their fault's */
  mismatches: number;
  failed: number;
}

export interface Mismatch {
  id: string;
  task: string;
  fault: FaultName;
  expected: ErrorCode | null;
  got: ErrorCode | null;
  message: string | null;
}

export interface LabReport {
  scenario: string;
  runs: number;
  durationMs: number;
  truth: TopErrors;
  collector: TopErrors;
  /** top five, totals and every run's code agree */
  identical: boolean;
  /** the first runs whose code differed from their fault's (at most 100) */
  mismatches: Mismatch[];
  /** how many runs' codes differed */
  mismatchCount: number;
  /** faults injected, by name */
  injected: Record<string, number>;
  memoryPerProbeKiB: number;
  httpUrl: string;
}

function pickFault(task: LabTask, next: () => number): FaultName {
  const entries = Object.entries(task.faults).filter(([, w]) => (w ?? 0) > 0) as [FaultName, number][];
  let r = next() * entries.reduce((s, [, w]) => s + w, 0);
  for (const [name, weight] of entries) {
    r -= weight;
    if (r < 0) return name;
  }
  return entries[entries.length - 1][0];
}

/** The top five a correct collector must show, from the expected failures by code. */
function truthTop(failures: Map<number, number>, runs: number, from: number, to: number): TopErrors {
  return { from, to, ...rankTop(failures, runs) };
}

/** Mismatched runs listed in a report at most (all are counted). */
const MAX_LISTED_MISMATCHES = 100;

/** Whether the collector shows exactly the ground truth: totals, and every entry's code and count. */
export function sameTop(a: TopErrors, b: TopErrors): boolean {
  return a.total === b.total && a.failed === b.failed && a.top.length === b.top.length &&
    a.top.every((e, i) => e.code === b.top[i].code && e.count === b.top[i].count);
}

/** The task a run meeting `fault` executes. */
function labTask(task: LabTask, fault: FaultName, running: RunningFault, dns: DnsServer | null, caFile: string) {
  const { target } = running;
  const limits = { responseTimeoutMs: LAB_LIMITS.responseTimeoutMs, timeoutMs: LAB_LIMITS.stepTimeoutMs, idleMs: LAB_LIMITS.idleMs };
  const steps = faultSteps(fault, task) ?? [{ send: task.send, verify: "partial", expect: task.expect }];
  return {
    id: task.id,
    target: {
      host: target.host, port: target.port, tls: target.tls,
      ...(trustsLabCa(fault) ? { servername: "localhost", ca: caFile } : {}),
    },
    dns: { timeoutMs: LAB_LIMITS.dnsTimeoutMs, ...(target.dns && dns ? { servers: [dns.address] } : {}) },
    connectTimeoutMs: LAB_LIMITS.connectTimeoutMs,
    taskTimeoutMs: LAB_LIMITS.taskTimeoutMs,
    labels: { fault },
    steps: steps.map((step) => ({ ...limits, ...step })),
  };
}

export interface Lab {
  report: LabReport;
  collector: Collector;
  /** the lab's temp dir: removed by close() (and when the process exits) unless keepDir */
  dir: string;
  /** stops the collector and everything else still running */
  close(): Promise<void>;
}

export async function runLab(scenario: Scenario, opts: LabOptions = {}): Promise<Lab> {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), "catprobe-lab-"));
  const cleanup: (() => Promise<unknown>)[] = [];
  // Also on an exit mid-run (Ctrl-C), where close() is never reached.
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  if (!opts.keepDir) process.once("exit", removeDir);
  const closeAll = async () => {
    for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
    if (opts.keepDir) return;
    removeDir();
    process.off("exit", removeDir);
  };
  try {
    const pki = createLabPki();
    const caFile = join(dir, "lab-ca.pem");
    writeFileSync(caFile, pki.ca.cert);
    const used = new Set(scenario.tasks.flatMap((t) => Object.entries(t.faults).filter(([, w]) => (w ?? 0) > 0).map(([f]) => f as FaultName)));
    const dns = [...used].some((f) => "dnsFault" in FAULTS[f]) ? await startDnsServer(dnsZone()) : null;
    if (dns) cleanup.push(() => dns.close());

    // One server per task and fault (replies differ per task); one prepared task for each.
    const runnables = new Map<string, RunnableTask>();
    const preparer = new CorePool(); // converts step data once; each probe verifies with its own core
    const collector = await startCollector({
      broker: scenario.broker,
      mqttListen: opts.mqttListen ?? "127.0.0.1:0", http: opts.http ?? "127.0.0.1:0", db: opts.db ?? join(dir, "collector.db"),
    });
    cleanup.push(() => collector.close());
    for (const task of scenario.tasks) {
      for (const fault of used) {
        if (!task.faults[fault]) continue;
        const running = await startFault(fault, task.reply, pki);
        cleanup.push(() => running.close());
        const spec = parseTask(`${scenario.name}/${task.id}/${fault}`, JSON.stringify(labTask(task, fault, running, dns, caFile)));
        runnables.set(`${task.id}/${fault}`, makeRunnable({ file: `${scenario.name}/${task.id}/${fault}`, spec }, preparer));
      }
    }

    const rssBefore = process.memoryUsage().rss;
    const fleet = startFleet(scenario.fleet.count, scenario.fleet.idPrefix, collector.brokerUrl, dir);
    cleanup.push(() => stopFleet(fleet));
    await new Promise((r) => setTimeout(r, 200)); // let the fleet connect
    const memoryPerProbeKiB = Math.max(0, process.memoryUsage().rss - rssBefore) / 1024 / fleet.length;

    // A known number of runs, or rounds until durationMs has passed (total then grows as it goes).
    const perRound = scenario.fleet.count * scenario.tasks.length;
    const rounds = scenario.runs ?? Infinity;
    let total = scenario.runs === undefined ? 0 : perRound * scenario.runs;
    const next = rng(scenario.seed);
    const slots = new Semaphore(scenario.concurrency);
    const expectedFailures = new Map<number, number>(); // expected code → runs; counters keep a long lab bounded
    const injected: Record<string, number> = {};
    const mismatches: Mismatch[] = [];
    let mismatchCount = 0;
    let done = 0;
    let failed = 0;
    const progress = () => opts.onProgress?.({ done, total, delivered: done - undelivered(fleet), mismatches: mismatchCount, failed });
    const ticker = setInterval(progress, 200);
    const from = Date.now() - 1;
    const inFlight = new Set<Promise<void>>();
    const roundsFrom = performance.now();
    const until = scenario.durationMs === undefined ? Infinity : roundsFrom + scenario.durationMs;
    for (let run = 0; run < rounds; run++) {
      const roundAt = roundsFrom + run * scenario.intervalMs;
      if (roundAt >= until || performance.now() >= until) break; // a round starts within the duration
      if (roundAt > performance.now()) await new Promise((r) => setTimeout(r, roundAt - performance.now()));
      if (scenario.runs === undefined) total += perRound;
      for (const probe of fleet) {
        for (const task of scenario.tasks) {
          const fault = pickFault(task, next);
          injected[fault] = (injected[fault] ?? 0) + 1;
          await slots.acquire();
          const job: Promise<void> = runTask(runnables.get(`${task.id}/${fault}`)!, { probe: probe.id, pool: probe.pool, run }).then((r) => {
            const want = faultCode(fault);
            if (want !== null) expectedFailures.set(want, (expectedFailures.get(want) ?? 0) + 1);
            if (r.code !== want && mismatchCount++ < MAX_LISTED_MISMATCHES) {
              mismatches.push({ id: r.id, task: task.id, fault, expected: want, got: r.code, message: r.message });
            }
            if (!r.ok) failed++;
            probe.publisher.publish(r);
            done++;
          }).finally(() => {
            slots.release();
            inFlight.delete(job);
          });
          inFlight.add(job);
        }
      }
    }
    await Promise.all(inFlight);
    await Promise.all(fleet.map((p) => p.publisher.drain(60_000)));
    // Read as any user of the collector would: through its API.
    const topSince = async (to: number) =>
      (await (await fetch(`${collector.httpUrl}/api/top-errors?from=${from}&to=${to}`)).json()) as TopErrors;
    for (let i = 0; i < 600 && (await topSince(Date.now() + 1)).total < total; i++) await new Promise((r) => setTimeout(r, 50));
    clearInterval(ticker);
    progress();
    const to = Date.now() + 1;
    const truth = truthTop(expectedFailures, done, from, to);
    const seen = await topSince(to);
    const report: LabReport = {
      scenario: scenario.name, runs: total, durationMs: Math.round(performance.now() - started),
      truth, collector: seen, identical: sameTop(truth, seen) && mismatchCount === 0,
      mismatches, mismatchCount, injected, memoryPerProbeKiB: Math.round(memoryPerProbeKiB * 10) / 10, httpUrl: collector.httpUrl,
    };
    return { report, collector, dir, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
