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
import { makeRunnable, type RunnableTask } from "../host/probe/runner.js";
import { runSchedules } from "../host/probe/schedule.js";
import { Semaphore } from "../host/probe/semaphore.js";
import { parseTask } from "../host/task/load.js";
import { createLabPki } from "./certs.js";
import {
  FAULTS, LAB_LIMITS, dnsZone, faultCode, faultSteps, startFault, trustsLabCa, type FaultName, type RunningFault,
} from "./faults.js";
import { fleetCredentials, fleetIds, startFleet, stopFleet, undelivered } from "./fleet.js";
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

/** The faults a task meets: those with a weight above 0. */
function usedBy(task: LabTask): FaultName[] {
  return Object.entries(task.faults).filter(([, w]) => (w ?? 0) > 0).map(([f]) => f as FaultName);
}

/** The seed of one probe's sequence of faults for one task. */
function streamSeed(seed: number, probe: number, task: number): number {
  return (seed ^ Math.imul(probe + 1, 0x9e3779b1) ^ Math.imul(task + 1, 0x85ebca6b)) >>> 0;
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
function labTask(scenario: Scenario, task: LabTask, fault: FaultName, running: RunningFault, dns: DnsServer | null, caFile: string) {
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
    count: scenario.runs ?? 1,
    intervalMs: scenario.intervalMs,
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
    const used = new Set(scenario.tasks.flatMap(usedBy));
    const dns = [...used].some((f) => "dnsFault" in FAULTS[f]) ? await startDnsServer(dnsZone()) : null;
    if (dns) cleanup.push(() => dns.close());

    // One server per task and fault (replies differ per task); one prepared task for each.
    const runnables = new Map<string, RunnableTask>();
    const preparer = new CorePool(); // converts step data once; each probe verifies with its own core
    // On the embedded broker the fleet logs in as real probes do, with credentials made for this run.
    const ids = fleetIds(scenario.fleet.count, scenario.fleet.idPrefix);
    const passwordsFile = join(dir, "passwd");
    const passwords = scenario.broker ? undefined : fleetCredentials(ids, passwordsFile);
    const collector = await startCollector({
      broker: scenario.broker, passwords: passwords && passwordsFile,
      mqttListen: opts.mqttListen ?? "127.0.0.1:0", http: opts.http ?? "127.0.0.1:0", db: opts.db ?? join(dir, "collector.db"),
    });
    cleanup.push(() => collector.close());
    for (const task of scenario.tasks) {
      for (const fault of usedBy(task)) {
        const running = await startFault(fault, task.reply, pki);
        cleanup.push(() => running.close());
        const spec = parseTask(`${scenario.name}/${task.id}/${fault}`, JSON.stringify(labTask(scenario, task, fault, running, dns, caFile)));
        runnables.set(`${task.id}/${fault}`, makeRunnable({ file: `${scenario.name}/${task.id}/${fault}`, spec }, preparer));
      }
    }

    const rssBefore = process.memoryUsage().rss;
    const fleet = startFleet(ids, collector.brokerUrl, dir, passwords);
    cleanup.push(() => stopFleet(fleet));
    await new Promise((r) => setTimeout(r, 200)); // let the fleet connect
    const memoryPerProbeKiB = Math.max(0, process.memoryUsage().rss - rssBefore) / 1024 / fleet.length;

    // Each virtual probe runs the lab's tasks through the probe's own scheduler: `runs` runs of
    // each, or for good until durationMs has passed, `intervalMs` apart, all under the
    // scenario's one concurrency limit. Every run meets a fault picked for it (taskFor), from a
    // seeded sequence per probe and task, so a scenario replays whatever the interleaving.
    const schedules = scenario.tasks.map((task) => runnables.get(`${task.id}/${usedBy(task)[0]}`)!);
    let started = 0;
    // a known number of runs, or (durationMs) the runs started so far
    const planned = scenario.runs === undefined ? null : fleet.length * scenario.tasks.length * scenario.runs;
    const slots = new Semaphore(scenario.concurrency);
    const faultOf = new Map<RunnableTask, { task: LabTask; fault: FaultName }>();
    for (const task of scenario.tasks) for (const fault of usedBy(task)) faultOf.set(runnables.get(`${task.id}/${fault}`)!, { task, fault });
    const expectedFailures = new Map<number, number>(); // expected code → runs; counters keep a long lab bounded
    const injected: Record<string, number> = {};
    const mismatches: Mismatch[] = [];
    let mismatchCount = 0;
    let done = 0;
    let failed = 0;
    const progress = () => opts.onProgress?.({ done, total: planned ?? started, delivered: done - undelivered(fleet), mismatches: mismatchCount, failed });
    const ticker = setInterval(progress, 200);
    const from = Date.now() - 1;
    const until = scenario.durationMs === undefined ? undefined : performance.now() + scenario.durationMs;
    await Promise.all(fleet.map((probe, p) => {
      const picks = scenario.tasks.map((_, t) => rng(streamSeed(scenario.seed, p, t)));
      return runSchedules(schedules, {
        probe: probe.id, pool: probe.pool, slots, until, forever: until !== undefined, keep: false,
        taskFor: (scheduled) => {
          const t = schedules.indexOf(scheduled);
          const fault = pickFault(scenario.tasks[t], picks[t]);
          injected[fault] = (injected[fault] ?? 0) + 1;
          started++;
          return runnables.get(`${scenario.tasks[t].id}/${fault}`)!;
        },
        onResult: (r, ran) => {
          const { task, fault } = faultOf.get(ran)!;
          const want = faultCode(fault);
          if (want !== null) expectedFailures.set(want, (expectedFailures.get(want) ?? 0) + 1);
          if (r.code !== want && mismatchCount++ < MAX_LISTED_MISMATCHES) {
            mismatches.push({ id: r.id, task: task.id, fault, expected: want, got: r.code, message: r.message });
          }
          if (!r.ok) failed++;
          probe.publisher.publish(r);
          done++;
        },
      });
    }));
    await Promise.all(fleet.map((p) => p.publisher.drain(60_000)));
    // Read as any user of the collector would: through its API.
    const topSince = async (to: number) =>
      (await (await fetch(`${collector.httpUrl}/api/top-errors?from=${from}&to=${to}`)).json()) as TopErrors;
    for (let i = 0; i < 600 && (await topSince(Date.now() + 1)).total < started; i++) await new Promise((r) => setTimeout(r, 50));
    clearInterval(ticker);
    progress();
    const to = Date.now() + 1;
    const truth = truthTop(expectedFailures, done, from, to);
    const seen = await topSince(to);
    const report: LabReport = {
      scenario: scenario.name, runs: started, durationMs: Math.round(performance.now() - started),
      truth, collector: seen, identical: sameTop(truth, seen) && mismatchCount === 0,
      mismatches, mismatchCount, injected, memoryPerProbeKiB: Math.round(memoryPerProbeKiB * 10) / 10, httpUrl: collector.httpUrl,
    };
    return { report, collector, dir, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
