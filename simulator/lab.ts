// The lab: starts the fault servers, a collector (embedded broker) and a fleet of virtual
// probes, runs every probe's tasks, and knows which fault it injected into every run. At the
// end it compares the collector's top five with the ground truth, and every run's code with
// the code DESIGN.md says its fault must produce.
//
// A managed scenario hands the tasks over through the control plane instead: the lab PUTs the
// task set (with each task's `assign`) to its collector's /api/tasks, and its virtual probes are
// managed probes (host/probe/managed-run.ts, as `catprobe probe --managed`) that run what their
// config topic says; `changes` replace the set mid-run. The fault of each run is still the
// lab's choice, made through the scheduler's taskFor hook, exactly as for an unmanaged fleet:
// the task set holds each task once, under its own id, with its real schedule (count,
// intervalMs, assign) and a `lab-task` label naming the task's revision; the probe schedules
// it, and every run is swapped for the revision's variant that meets the fault drawn for it
// (seeded per probe and revision). So the weights, the task ids in the collector and the
// replay by seed stay what they are unmanaged, and the ground truth is what each run met.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ErrorCode } from "../host/codes.js";
import type { ResultRecord } from "../host/wire/record.js";
import { startCollector, type Collector } from "../host/collector/collector.js";
import { CorePool } from "../host/core/pool.js";
import { rankTop, type TopErrors } from "../host/collector/stats.js";
import { makeRunnable, type RunnableTask } from "../host/probe/runner.js";
import { runSchedules } from "../host/probe/schedule.js";
import type { TaskSetDiff } from "../host/collector/task-set.js";
import { Semaphore } from "../host/probe/semaphore.js";
import { parseTask } from "../host/task/load.js";
import { createLabPki } from "./certs.js";
import {
  FAULTS, LAB_LIMITS, dnsZone, faultCode, faultSteps, startFault, trustsLabCa, type FaultName, type RunningFault,
} from "./faults.js";
import { fleetCredentials, fleetIds, startFleet, startManagedFleet, stopFleet, undelivered, type VirtualProbe } from "./fleet.js";
import { rng } from "./random.js";
import { scenarioProblems, type LabTask, type Scenario } from "./scenario.js";
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
  /** managed scenarios: each task set the lab applied, in order */
  versions?: AppliedSet[];
}

/** A task set the lab applied through PUT /api/tasks. */
export interface AppliedSet extends TaskSetDiff {
  /** when it was PUT, ms after the runs began (the first set: 0) */
  atMs: number;
  /** from the PUT until GET /api/probes showed every probe at this version; null: not within a minute */
  appliedInMs: number | null;
  /** the same two moments as epoch ms (results' `ts` is one): the PUT sent, every probe seen at the version */
  putAt: number;
  appliedAt: number | null;
}

/** A task's revision: each distinct form a scenario gives a task id (its assign aside). */
interface Revision {
  /** the task's id for its first form, `{id}@2`, `{id}@3` … for the others */
  key: string;
  task: LabTask;
  /** seeds its fault sequences: the task's index for the scenario's own tasks, as unmanaged */
  index: number;
}

/** The label of a managed lab task naming its revision. */
const REVISION_LABEL = "lab-task";

/** The revisions of every task of the scenario and its changes; `of` maps a task to its own. */
function revisions(scenario: Scenario): { all: Revision[]; of: (task: LabTask) => Revision } {
  const all: Revision[] = [];
  const form = (t: LabTask) => JSON.stringify({ ...t, assign: undefined });
  const of = (task: LabTask): Revision => {
    const same = all.filter((r) => r.task.id === task.id);
    const found = same.find((r) => form(r.task) === form(task));
    if (found) return found;
    const rev = { key: same.length === 0 ? task.id : `${task.id}@${same.length + 1}`, task, index: all.length };
    all.push(rev);
    return rev;
  };
  for (const set of [scenario.tasks, ...(scenario.changes ?? []).map((c) => c.tasks)]) set.forEach(of);
  return { all, of };
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
  const problems = scenarioProblems(scenario);
  if (problems.length) throw new Error(`scenario ${scenario.name}: ${problems.join("; ")}`);
  const labStart = performance.now();
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
    const revs = revisions(scenario);
    const used = new Set(revs.all.map((r) => r.task).flatMap(usedBy));
    const dns = [...used].some((f) => "dnsFault" in FAULTS[f]) ? await startDnsServer(dnsZone()) : null;
    if (dns) cleanup.push(() => dns.close());

    // One server per task revision and fault (replies differ per task); one prepared task for each.
    const runnables = new Map<string, RunnableTask>();
    const faultOf = new Map<RunnableTask, { task: LabTask; fault: FaultName }>();
    /** managed: the task-set entry of each revision (its first fault's target; every run is swapped) */
    const entries = new Map<Revision, Record<string, unknown>>();
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
    for (const rev of revs.all) {
      for (const fault of usedBy(rev.task)) {
        const running = await startFault(fault, rev.task.reply, pki);
        cleanup.push(() => running.close());
        const file = `${scenario.name}/${rev.key}/${fault}`;
        const json = labTask(scenario, rev.task, fault, running, dns, caFile);
        const runnable = makeRunnable({ file, spec: parseTask(file, JSON.stringify(json)) }, preparer);
        runnables.set(`${rev.key}/${fault}`, runnable);
        faultOf.set(runnable, { task: rev.task, fault });
        if (!entries.has(rev)) entries.set(rev, { ...json, labels: { [REVISION_LABEL]: rev.key } });
      }
    }

    // Every run meets a fault picked for it from a seeded sequence per probe and task revision,
    // so a scenario replays whatever the interleaving; the lab counts what each run must report.
    const slots = new Semaphore(scenario.concurrency);
    const expectedFailures = new Map<number, number>(); // expected code → runs; counters keep a long lab bounded
    const injected: Record<string, number> = {};
    const mismatches: Mismatch[] = [];
    let mismatchCount = 0;
    let begun = 0;
    let done = 0;
    let failed = 0;
    const picks = ids.map(() => new Map<Revision, () => number>());
    const runFor = (p: number, rev: Revision): RunnableTask => {
      let next = picks[p].get(rev);
      if (!next) picks[p].set(rev, (next = rng(streamSeed(scenario.seed, p, rev.index))));
      const fault = pickFault(rev.task, next);
      injected[fault] = (injected[fault] ?? 0) + 1;
      begun++;
      return runnables.get(`${rev.key}/${fault}`)!;
    };
    const account = (r: ResultRecord, ran: RunnableTask) => {
      const { task, fault } = faultOf.get(ran)!;
      const want = faultCode(fault);
      if (want !== null) expectedFailures.set(want, (expectedFailures.get(want) ?? 0) + 1);
      if (r.code !== want && mismatchCount++ < MAX_LISTED_MISMATCHES) {
        mismatches.push({ id: r.id, task: task.id, fault, expected: want, got: r.code, message: r.message });
      }
      if (!r.ok) failed++;
      done++;
    };
    // a known number of runs, or (durationMs, managed) the runs started so far
    const planned = scenario.runs === undefined || scenario.managed ? null : ids.length * scenario.tasks.length * scenario.runs;
    let fleet: VirtualProbe[] = [];
    const progress = () => opts.onProgress?.({ done, total: planned ?? begun, delivered: done - undelivered(fleet), mismatches: mismatchCount, failed });
    const ticker = setInterval(progress, 200);
    cleanup.push(async () => clearInterval(ticker));
    const from = Date.now() - 1;
    const rssBefore = process.memoryUsage().rss;
    let memoryPerProbeKiB: number;
    let versions: AppliedSet[] | undefined;

    if (!scenario.managed) {
      fleet = startFleet(ids, collector.brokerUrl, dir, passwords);
      cleanup.push(() => stopFleet(fleet));
      await new Promise((r) => setTimeout(r, 200)); // let the fleet connect
      memoryPerProbeKiB = Math.max(0, process.memoryUsage().rss - rssBefore) / 1024 / fleet.length;
      // Each virtual probe runs the lab's tasks through the probe's own scheduler: `runs` runs of
      // each, or for good until durationMs has passed, `intervalMs` apart, all under the
      // scenario's one concurrency limit; each run swapped for its fault's variant (taskFor).
      const own = scenario.tasks.map(revs.of);
      const schedules = own.map((rev) => runnables.get(`${rev.key}/${usedBy(rev.task)[0]}`)!);
      const until = scenario.durationMs === undefined ? undefined : performance.now() + scenario.durationMs;
      await Promise.all(fleet.map((probe, p) => runSchedules(schedules, {
        probe: probe.id, pool: probe.pool, slots, until, forever: until !== undefined, keep: false,
        taskFor: (scheduled) => runFor(p, own[schedules.indexOf(scheduled)]),
        onResult: (r, ran) => {
          probe.publisher.publish(r);
          account(r, ran);
        },
      })));
    } else {
      // The fleet as managed probes, each with its labels; their runs stop at durationMs (the
      // signal: a run in flight finishes and is delivered), or after `runs` runs of each task.
      const byKey = new Map(revs.all.map((r) => [r.key, r]));
      const stopRuns = new AbortController();
      const managedFleet = startManagedFleet(ids, collector.brokerUrl, dir, {
        passwords,
        labels: (i) => scenario.fleet.labels?.[i % scenario.fleet.labels.length] ?? {},
        scheduler: (p) => ({
          slots, signal: stopRuns.signal, forever: scenario.durationMs !== undefined,
          taskFor: (scheduled) => {
            const rev = byKey.get(scheduled.spec.labels?.[REVISION_LABEL] ?? "");
            if (!rev) throw new Error(`${ids[p]}: scheduled a task the lab did not give: ${scheduled.spec.id}`);
            return runFor(p, rev);
          },
          onResult: (r, ran) => account(r, ran),
        }),
      });
      fleet = managedFleet;
      cleanup.push(() => stopFleet(managedFleet));
      cleanup.push(async () => stopRuns.abort());
      const api = (path: string, init?: RequestInit) => fetch(`${collector.httpUrl}${path}`, init);
      /** Whether GET /api/probes shows every probe of the fleet at `version`, polled for up to `ms`. */
      const allAt = async (version: number, ms: number): Promise<boolean> => {
        const end = performance.now() + ms;
        for (;;) {
          const rows = (await (await api("/api/probes")).json()) as { probe: string; appliedVersion: number | null }[];
          const at = new Set(rows.filter((r) => r.appliedVersion === version).map((r) => r.probe));
          if (ids.every((id) => at.has(id))) return true;
          if (performance.now() > end) return false;
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      // connected: every probe runs the collector's set as it is (none of the lab's tasks yet)
      const { version: initial } = (await (await api("/api/tasks")).json()) as { version: number };
      if (!(await allAt(initial, 120_000))) throw new Error(`the fleet did not connect and report version ${initial} within 120 s`);
      memoryPerProbeKiB = Math.max(0, process.memoryUsage().rss - rssBefore) / 1024 / fleet.length;
      const t0 = performance.now();
      const apply = async (tasks: LabTask[]): Promise<AppliedSet> => {
        const set = tasks.map((t) => ({ ...entries.get(revs.of(t))!, ...(t.assign ? { assign: t.assign } : {}) }));
        const put = performance.now();
        const putAt = Date.now();
        const res = await api("/api/tasks", { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ tasks: set }) });
        if (!res.ok) throw new Error(`the collector refused the lab's task set (${res.status}): ${await res.text()}`);
        const diff = (await res.json()) as TaskSetDiff;
        const ok = await allAt(diff.version, 60_000);
        return {
          ...diff, atMs: Math.round(put - t0), appliedInMs: ok ? Math.round(performance.now() - put) : null,
          putAt, appliedAt: ok ? Date.now() : null,
        };
      };
      versions = [await apply(scenario.tasks)];
      const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - performance.now())));
      for (const change of scenario.changes ?? []) {
        await sleepUntil(t0 + change.atMs);
        versions.push(await apply(change.tasks));
      }
      if (scenario.durationMs !== undefined) {
        await sleepUntil(t0 + scenario.durationMs);
        stopRuns.abort();
      }
      await Promise.all(managedFleet.map((p) => p.scheduler.idle()));
    }
    await Promise.all(fleet.map((p) => p.publisher.drain(60_000)));
    // Read as any user of the collector would: through its API.
    const topSince = async (to: number) =>
      (await (await fetch(`${collector.httpUrl}/api/top-errors?from=${from}&to=${to}`)).json()) as TopErrors;
    for (let i = 0; i < 600 && (await topSince(Date.now() + 1)).total < begun; i++) await new Promise((r) => setTimeout(r, 50));
    clearInterval(ticker);
    progress();
    const to = Date.now() + 1;
    const truth = truthTop(expectedFailures, done, from, to);
    const seen = await topSince(to);
    const allApplied = versions?.every((v) => v.appliedInMs !== null) ?? true;
    const report: LabReport = {
      scenario: scenario.name, runs: begun, durationMs: Math.round(performance.now() - labStart),
      truth, collector: seen, identical: sameTop(truth, seen) && mismatchCount === 0 && allApplied,
      mismatches, mismatchCount, injected, memoryPerProbeKiB: Math.round(memoryPerProbeKiB * 10) / 10, httpUrl: collector.httpUrl,
      ...(versions ? { versions } : {}),
    };
    return { report, collector, dir, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
