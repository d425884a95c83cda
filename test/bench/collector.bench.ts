// Collector ingest against a bare mqtt.js subscriber that only counts messages (the floor), all
// fed by a publisher in its own process, in interleaved rounds (ingest-cases.ts: SQLite and
// PostgreSQL collectors, two collectors in a $share group, a NATS cluster); where the time goes
// (CPU of each process, commits); then /api/top-errors latency over one million stored results.
//
// The machine is shared (other builds and tests run on the same two cores), so each round runs
// every case once, in an order rotated each round, and a ratio is the median of the per-round
// ratios (each run against its peer of the same round).

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";
import { topErrors } from "../../host/collector/stats.js";
import { openStore } from "../../host/collector/store.js";
import { record } from "../helpers/records.js";
import { until } from "../helpers/until.js";
import type { Ratios } from "./harness.js";
import {
  BARE_MOSQUITTO, BARE_NATS, INGEST_CASES, MESSAGES, POSTGRES_MOSQUITTO, POSTGRES_SHARE_MOSQUITTO, SQLITE_MOSQUITTO,
  SQLITE_NATS, type Commit, type IngestCase,
} from "./ingest-cases.js";
import { IngestLab, type CpuSnapshot } from "./ingest-lab.js";

/** Interleaved rounds (CATPROBE_BENCH_ROUNDS to change). */
const ROUNDS = Number(process.env.CATPROBE_BENCH_ROUNDS) || 5;
/**
 * One run gives up after this long. If the publisher had all its PUBACKs, results were lost and
 * the benchmark fails; if it had not, the broker did not take them (NATS 2.9 times out storing
 * QoS 1 messages under load): the run is a stall, printed, and left out of medians and ratios.
 */
const RUN_TIMEOUT_MS = 60_000;

class Stall extends Error {}
const STALL_PAUSE_MS = 10_000;

/** Ratio lines: [ours, peer]. */
const RATIOS: [IngestCase, IngestCase][] = [
  [SQLITE_MOSQUITTO, BARE_MOSQUITTO],
  [POSTGRES_MOSQUITTO, BARE_MOSQUITTO],
  [POSTGRES_MOSQUITTO, SQLITE_MOSQUITTO],
  [POSTGRES_SHARE_MOSQUITTO, BARE_MOSQUITTO],
  [POSTGRES_SHARE_MOSQUITTO, SQLITE_MOSQUITTO],
  [SQLITE_NATS, BARE_MOSQUITTO],
  [SQLITE_NATS, SQLITE_MOSQUITTO],
  [SQLITE_NATS, BARE_NATS],
  [BARE_NATS, BARE_MOSQUITTO],
];

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);

type Cpu = Omit<CpuSnapshot, "machine"> & { publisher: number; others: number };

interface Run {
  rate: number;
  wallMs: number;
  /** CPU ms of each part during the run */
  cpu: Cpu;
  commits: Commit[];
  collectors: number;
  redelivered: number;
  connectedTo: string[];
}

/** The load in its own process (publisher-process.ts), connected and waiting for the start. */
async function startPublisher(url: string, clientId: string) {
  const child = spawn(process.execPath, ["--import", "tsx", "test/bench/publisher-process.ts", url, clientId, String(MESSAGES)],
    { stdio: ["pipe", "pipe", "inherit"] });
  const exited = once(child, "exit");
  const closed = once(child, "close"); // after its output has all been read
  const lines = createInterface({ input: child.stdout! });
  // a publisher that dies fails the run instead of leaving it waiting for a line
  const next = () => Promise.race([(once(lines, "line") as Promise<[string]>).then(([line]) => line),
    closed.then(([code]) => Promise.reject(new Error(`the publisher exited (${String(code)})`)))]);
  await next(); // connected
  const done = next().then(async (line) => {
    await exited;
    return Number(line.split(" ")[1]);
  });
  let finished = false;
  done.then(() => (finished = true), () => {}); // a run that failed before awaiting it has said why already
  return {
    go: () => child.stdin!.write("go\n"),
    /** the CPU ms it spent publishing, once it has exited */
    done,
    /** rejects if it dies before it is done; never resolves */
    failed: done.then(() => new Promise<never>(() => {})),
    finished: () => finished,
    kill: () => child.exitCode === null && child.kill(),
  };
}

function cpuDuring(before: CpuSnapshot, after: CpuSnapshot, publisher: number): Cpu {
  const d = (k: keyof CpuSnapshot) => after[k] - before[k];
  const ours = { catprobe: d("catprobe"), mosquitto: d("mosquitto"), nats: d("nats"), postgres: d("postgres"), publisher };
  return { ...ours, others: Math.max(0, d("machine") - sum(Object.values(ours))) };
}

/** One case once: results/s from the start of publishing until the receiver has all of them. */
async function runOnce(lab: IngestLab, c: IngestCase, round: number): Promise<Run> {
  if (!(await lab.natsSettled())) console.log(`  round ${round + 1}, ${c.label}: NATS had not settled after the last run within 30 s`);
  const receiver = await c.start(lab, round);
  try {
    const publisher = await startPublisher(c.publishTo(lab), `bench-pub-${c.key}-r${round}`);
    try {
      const before = lab.cpu();
      const t0 = performance.now();
      publisher.go();
      // polled every 5 ms, as the wait is what is timed; a publisher that dies ends it at once
      await Promise.race([publisher.failed,
        until(() => receiver.received() >= MESSAGES, `all ${MESSAGES} results at: ${c.label}`, RUN_TIMEOUT_MS, 5)])
        .catch((err: Error) => {
          const arrived = `${err.message}: ${receiver.received()} arrived`;
          if (publisher.finished()) throw new Error(`${arrived}, though the publisher had all its PUBACKs`, { cause: err });
          throw new Stall(`${arrived}, the publisher still waiting for PUBACKs`, { cause: err });
        });
      const wallMs = performance.now() - t0;
      const after = lab.cpu();
      const cpu = cpuDuring(before, after, await publisher.done);
      return { rate: (MESSAGES * 1000) / wallMs, wallMs, cpu, ...(await receiver.verify()) };
    } finally {
      publisher.kill();
    }
  } finally {
    await receiver.close();
  }
}

/** Each case's run of each round; null: that run stalled. */
type ByRound = Map<IngestCase, (Run | null)[]>;

/** ROUNDS rounds of every case, each round in an order rotated by one. */
async function rounds(lab: IngestLab): Promise<ByRound> {
  const runs: ByRound = new Map(INGEST_CASES.map((c) => [c, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = INGEST_CASES.map((_, i) => INGEST_CASES[(i + round) % INGEST_CASES.length]);
    for (const c of order) {
      const run = await runOnce(lab, c, round).catch(async (err: unknown) => {
        if (!(err instanceof Stall)) throw err;
        console.log(`  round ${round + 1}, stalled: ${err.message}`);
        // what the broker still takes of the killed publisher's messages must not reach the next run
        await new Promise((r) => setTimeout(r, STALL_PAUSE_MS));
        return null;
      });
      runs.get(c)![round] = run;
    }
    console.log(`  round ${round + 1}/${ROUNDS} done, load average ${loadavg()[0].toFixed(1)}`);
  }
  return runs;
}

/** The runs that completed, of the cases with any. */
const completed = (runs: ByRound) => new Map([...runs]
  .map(([c, list]) => [c, list.filter((r): r is Run => r !== null)] as const).filter(([, list]) => list.length));

function printRates(runs: Map<IngestCase, Run[]>): void {
  for (const [c, list] of runs) {
    const rates = list.map((r) => r.rate);
    console.log(`  ${c.label.padEnd(52)} ${median(rates).toFixed(0).padStart(7)} results/s` +
      `   (${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)}${list.length < ROUNDS ? `; ${list.length} of ${ROUNDS} rounds` : ""})`);
  }
}

const PARTS: (keyof Cpu)[] = ["catprobe", "publisher", "mosquitto", "nats", "postgres", "others"];
/** The parts that run on one thread: each can use one core at most. */
const SINGLE_THREADED: (keyof Cpu)[] = ["catprobe", "publisher", "mosquitto"];
const perThousand = (r: Run, part: keyof Cpu) => (r.cpu[part] * 1000) / MESSAGES;
const cell = (v: number, width: number, digits = 0) => v.toFixed(digits).padStart(width);

/**
 * CPU ms per 1,000 results of each process during a run, cores busy, and what two cores would
 * allow if only the benchmark's processes ran: the lower of 2 cores / all their CPU per result
 * and 1 core / the busiest single-threaded one's.
 */
function printCpu(runs: Map<IngestCase, Run[]>): void {
  console.log("  CPU ms per 1,000 results during a run (medians; catprobe = this process: the collectors or the bare");
  console.log("  subscriber; others = the rest of the machine); cores = all CPU / wall; ceiling = what 2 cores allow");
  console.log("  the benchmark's own processes alone: min(2 cores / their CPU, 1 core / the busiest single-threaded one)");
  console.log(`  ${"".padEnd(46)} ${"wall ms".padStart(7)} ${PARTS.map((p) => p.padStart(9)).join(" ")}  cores  ceiling/s`);
  for (const [c, list] of runs) {
    const ours = PARTS.filter((p) => p !== "others");
    const ceiling = (r: Run) => Math.min(2e6 / sum(ours.map((p) => perThousand(r, p))),
      1e6 / Math.max(...SINGLE_THREADED.map((p) => perThousand(r, p))));
    console.log(`  ${c.label.slice(0, 46).padEnd(46)} ${cell(median(list.map((r) => r.wallMs)), 7)} ` +
      PARTS.map((p) => cell(median(list.map((r) => perThousand(r, p))), 9)).join(" ") +
      `  ${cell(median(list.map((r) => sum(Object.values(r.cpu)) / r.wallMs)), 5, 2)}  ${cell(median(list.map(ceiling)), 9)}`);
  }
}

/**
 * The collectors' commits: store.add calls per run, results per batch (a commit pending lets the
 * next batch grow past MAX_BATCH_RECORDS, as far as the broker sends), wall ms per commit, the
 * share of each collector's run a commit of it was pending (on SQLite its thread is busy
 * meanwhile; on PostgreSQL it waits), and PostgreSQL's CPU per commit.
 */
function printCommits(runs: Map<IngestCase, Run[]>): void {
  console.log("  commits (store.add; medians): batches per run, results per batch (mean, and the largest of all runs),");
  console.log("  wall ms per commit, share of each collector's run with a commit of it pending, PostgreSQL CPU ms per commit");
  console.log(`  ${"".padEnd(46)} batches  per batch  largest  ms/commit  in commit  pg CPU/commit`);
  for (const [c, list] of runs) {
    if (!list[0].collectors) continue;
    const pending = (r: Run) => (100 * sum(r.commits.map((k) => k.ms))) / (r.wallMs * r.collectors);
    console.log(`  ${c.label.slice(0, 46).padEnd(46)} ${cell(median(list.map((r) => r.commits.length)), 7)}  ` +
      `${cell(median(list.map((r) => MESSAGES / r.commits.length)), 9)}  ${cell(Math.max(...list.flatMap((r) => r.commits.map((k) => k.records))), 7)}  ${cell(median(list.flatMap((r) => r.commits.map((k) => k.ms))), 9, 2)}  ` +
      `${cell(median(list.map(pending)), 7)} %  ${cell(median(list.map((r) => r.cpu.postgres / r.commits.length)), 13, 1)}`);
  }
}

function printPlacement(lab: IngestLab, runs: Map<IngestCase, Run[]>): void {
  for (const [c, list] of runs) {
    if (list.some((r) => r.redelivered > 0)) console.log(`  ${c.label}: ${list.map((r) => r.redelivered).join(", ")} results delivered twice (stored once)`);
  }
  const node = (url: string) => lab.nats.nodes.find((n) => n.url === url)?.name ?? url;
  const on = (c: IngestCase) => [...new Set((runs.get(c) ?? []).flatMap((r) => r.connectedTo.map(node)))].join(", ") || "-";
  console.log(`  NATS: publisher on ${node(SQLITE_NATS.publishTo(lab))}, collector on ${on(SQLITE_NATS)} ` +
    `(its list: ${lab.nats.brokerList(1).split(",").map(node).join(", ")}), bare subscriber on ${on(BARE_NATS)}`);
}

/** Each ratio: the median over rounds of ours / peer in the same round; each round's printed. */
function addRatios(runs: ByRound, ratios: Ratios): void {
  console.log("  per-round ratios (the ratio lines at the end are their medians; -: a side stalled)");
  for (const [ours, peer] of RATIOS) {
    const b = runs.get(peer)!;
    const perRound = runs.get(ours)!.map((r, i) => (r && b[i] ? r.rate / b[i]!.rate : null));
    const name = `${ours.key}/${peer.key}`;
    console.log(`  ${name.padEnd(54)} ${perRound.map((x) => x?.toFixed(2) ?? "-").join(" ")}`);
    const done = perRound.filter((x): x is number => x !== null);
    if (done.length) ratios.addValue(name, median(done));
    else console.log(`  ${name}: no round where both completed, no ratio line`);
  }
}

async function postgresVersion(lab: IngestLab): Promise<string> {
  const client = new pg.Client({ connectionString: lab.postgres.url("postgres") });
  await client.connect();
  try {
    return `PostgreSQL ${(await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0].v.split(" ")[0]}`;
  } finally {
    await client.end();
  }
}

async function benchIngest(ratios: Ratios): Promise<void> {
  console.log(`collector ingest (${MESSAGES} results, QoS 1, publisher in its own process, median of ${ROUNDS} interleaved rounds)`);
  const lab = await IngestLab.start();
  let runs: ByRound;
  try {
    console.log(`  servers: Mosquitto (shipped configuration), nats-server × 3 (MQTT over JetStream, streams on all 3), ` +
      `${await postgresVersion(lab)} (fsync off, as test/helpers/postgres.ts starts it)`);
    console.log(`  load average at the start ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
    runs = await rounds(lab);
  } finally {
    await lab.stop();
  }
  const done = completed(runs);
  printRates(done);
  printCpu(done);
  printCommits(done);
  printPlacement(lab, done);
  addRatios(runs, ratios);
}

async function benchTopErrors(dir: string): Promise<void> {
  console.log("/api/top-errors over 1,000,000 stored results (spread over 7 days, 50 probes, 10 tasks)");
  const store = await openStore(join(dir, "million.db"));
  const now = Date.now();
  const codes = [null, null, null, 600, 601, 603, 607, 607, 608, 609];
  for (let batch = 0; batch < 100; batch++) {
    await store.add(Array.from({ length: 10_000 }, (_, i) => {
      const n = batch * 10_000 + i;
      return record(`p${n % 50}`, `t${n % 10}`, now - Math.floor((n / 1_000_000) * 7 * 86_400_000), codes[n % 10]);
    }));
  }
  for (const [label, ms, task] of [["1h", 3_600_000, undefined], ["24h", 86_400_000, undefined], ["7d", 7 * 86_400_000, undefined], ["7d, one task", 7 * 86_400_000, "t3"]] as const) {
    const times: number[] = [];
    let total = 0;
    for (let i = 0; i < 21; i++) {
      const t0 = performance.now();
      total = (await topErrors(store, { from: now - ms + 1234, to: now + 1, task })).total;
      times.push(performance.now() - t0);
    }
    console.log(`  window ${label.padEnd(13)} ${String(total).padStart(8)} results   median ${median(times).toFixed(2).padStart(7)} ms   max ${Math.max(...times).toFixed(2)} ms`);
  }
  await store.close();
}

export async function benchCollector(ratios: Ratios): Promise<void> {
  await benchIngest(ratios);
  const dir = mkdtempSync(join(tmpdir(), "catprobe-bench-top-errors-"));
  try {
    await benchTopErrors(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
