// Scheduling: count and intervalMs, no overlapping runs of one task, the concurrency limit,
// and stopping; a Scheduler's schedules added, stopped and replaced while others run.

import { afterEach, describe, expect, it } from "vitest";
import { Scheduler, runSchedules } from "../../host/probe/schedule.js";
import { Semaphore } from "../../host/probe/semaphore.js";
import { pool, runnable } from "../helpers/probe.js";
import { tcpServer, type TestServer } from "../helpers/tcp.js";
import { until } from "../helpers/until.js";
import type { ResultRecord } from "../../host/wire/record.js";

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

/**
 * Answers "ok" after `delayMs`, and records how many requests it held at once: a probe can
 * only start another run after the reply that ends the previous one.
 */
async function slowServer(delayMs: number) {
  let held = 0;
  const stats = { maxOpen: 0 };
  const s = await tcpServer((sock) => {
    sock.once("data", () => {
      held++;
      stats.maxOpen = Math.max(stats.maxOpen, held);
      setTimeout(() => {
        held--;
        sock.end("ok\n");
      }, delayMs);
    });
  });
  servers.push(s);
  return { s, stats };
}

const step = { send: "go\n", verify: "partial", expect: "ok" };

describe("schedules", () => {
  it("runs `count` runs `intervalMs` apart, numbered in their ids", async () => {
    const { s } = await slowServer(0);
    const task = runnable({ target: { host: "127.0.0.1", port: s.port }, count: 3, intervalMs: 100, steps: [step] });
    const results = await runSchedules([task], { probe: "p1", pool });
    expect(results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(results.map((r) => r.id.split("/").slice(2).join("/").replace(/^\d+/, "ts"))).toEqual(["ts/0", "ts/1", "ts/2"]);
    expect(results[1].ts - results[0].ts).toBeGreaterThanOrEqual(95);
    expect(results[2].ts - results[1].ts).toBeGreaterThanOrEqual(95);
    expect(new Set(results.map((r) => r.id)).size).toBe(3);
  });

  it("never overlaps runs of one task when a run outlasts the interval", async () => {
    const { s, stats } = await slowServer(80);
    const task = runnable({ target: { host: "127.0.0.1", port: s.port }, count: 4, intervalMs: 10, steps: [step] });
    const results = await runSchedules([task], { probe: "p1", pool });
    expect(results).toHaveLength(4);
    expect(stats.maxOpen).toBe(1);
    for (let i = 1; i < 4; i++) expect(results[i].ts).toBeGreaterThanOrEqual(results[i - 1].ts + 80);
  });

  it("runs different tasks at once, up to the concurrency limit", async () => {
    const { s, stats } = await slowServer(60);
    const tasks = Array.from({ length: 9 }, (_, i) =>
      runnable({ id: `task-${i}`, target: { host: "127.0.0.1", port: s.port }, steps: [step] }));
    const seen: string[] = [];
    const results = await runSchedules(tasks, { probe: "p1", pool, concurrency: 3, onResult: (r) => seen.push(r.task) });
    expect(results.every((r) => r.ok)).toBe(true);
    expect(stats.maxOpen).toBe(3);
    expect(seen.sort()).toEqual(tasks.map((t) => t.spec.id).sort());
  });

  it("stops scheduling when aborted; the run in flight completes", async () => {
    const { s } = await slowServer(50);
    const task = runnable({ target: { host: "127.0.0.1", port: s.port }, count: 100, intervalMs: 200, steps: [step] });
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 300);
    const results = await runSchedules([task], { probe: "p1", pool, signal: abort.signal });
    expect(results.length).toBeGreaterThanOrEqual(1);
    expect(results.length).toBeLessThanOrEqual(3);
    expect(results.every((r) => r.ok)).toBe(true);
  });

  it("runs the task taskFor chooses for each run, on the scheduled task's schedule (the lab's faults)", async () => {
    const { s } = await slowServer(0);
    const target = { host: "127.0.0.1", port: s.port };
    const scheduled = runnable({ id: "lab", target, count: 4, intervalMs: 0, steps: [step] });
    const healthy = runnable({ id: "lab", target, steps: [step] });
    const broken = runnable({ id: "lab", target, steps: [{ ...step, expect: "never" }] });
    const ran: string[] = [];
    const results = await runSchedules([scheduled], {
      probe: "p1", pool,
      taskFor: (task, run) => {
        expect(task).toBe(scheduled);
        return run % 2 ? broken : healthy;
      },
      onResult: (r, task) => ran.push(`${r.id.split("/").pop()} ${task === broken ? "broken" : "healthy"} ${r.code ?? "ok"}`),
    });
    expect(results).toHaveLength(4); // count came from the scheduled task, not the chosen ones (count 1)
    expect(ran).toEqual(["0 healthy ok", "1 broken 607", "2 healthy ok", "3 broken 607"]);
  });

  it("shares one limit across schedules given the same slots (a fleet in one process)", async () => {
    const { s, stats } = await slowServer(60);
    const slots = new Semaphore(2);
    const task = (id: string) => runnable({ id, target: { host: "127.0.0.1", port: s.port }, steps: [step] });
    const fleet = ["p1", "p2", "p3"].map((probe) => runSchedules([task("a"), task("b")], { probe, pool, slots }));
    const results = (await Promise.all(fleet)).flat();
    expect(results.every((r) => r.ok)).toBe(true);
    expect(results).toHaveLength(6);
    expect(stats.maxOpen).toBe(2);
  });

  it("starts no run due at or after `until`, compared by value", async () => {
    const { s } = await slowServer(0);
    const task = runnable({ target: { host: "127.0.0.1", port: s.port }, count: 1, intervalMs: 100, steps: [step] });
    const seen: number[] = [];
    // runs due at 0, 100 and 200 ms start; the one due at 300 ms, exactly `until`, does not
    // (each due time is checked as soon as the previous run ends, long before it comes)
    await runSchedules([task], { probe: "p1", pool, forever: true, until: performance.now() + 300, onResult: (r) => seen.push(Number(r.id.split("/").pop())) });
    expect(seen).toEqual([0, 1, 2]);
  });
});

describe("a Scheduler while it runs", () => {
  const runNo = (r: ResultRecord) => Number(r.id.split("/").pop());

  /** A Scheduler for good whose results are collected; stopped at the end of the test. */
  function forever() {
    const results: ResultRecord[] = [];
    const abort = new AbortController();
    const scheduler = new Scheduler({ probe: "p1", pool, forever: true, signal: abort.signal, onResult: (r) => results.push(r) });
    return { scheduler, results, of: (task: string) => results.filter((r) => r.task === task), stop: () => (abort.abort(), scheduler.idle()) };
  }

  it("takes a task added later, and stopping one lets its run in flight finish and be handed on, then no more", async () => {
    const { s, stats } = await slowServer(150);
    const target = { host: "127.0.0.1", port: s.port };
    const f = forever();
    const a = f.scheduler.start(runnable({ id: "a", target, intervalMs: 50, steps: [step] }));
    await until(() => f.of("a").length >= 1, "a first run of a");
    f.scheduler.start(runnable({ id: "b", target, intervalMs: 50, steps: [step] }));
    // a's second run started right after its first (a run outlasts the interval): stop it mid-run
    const stopped = a.stop();
    const before = f.of("a").length;
    await stopped;
    expect(f.of("a").length).toBe(before + 1); // the run in flight was delivered before stop() resolved
    await until(() => f.of("b").length >= 2, "b running on");
    expect(f.of("a").length).toBe(before + 1);
    expect(stats.maxOpen).toBe(2);
    await f.stop();
  });

  it("replaces a task: the new schedule's first run waits for the old one's run in flight, and counts from 0", async () => {
    const { s, stats } = await slowServer(150);
    const target = { host: "127.0.0.1", port: s.port };
    const f = forever();
    const old = f.scheduler.start(runnable({ id: "a", target, intervalMs: 10_000, steps: [step] }));
    await until(() => stats.maxOpen === 1, "the old run in flight");
    const replaced = f.scheduler.replace(old, runnable({ id: "a", target, intervalMs: 50, labels: { v: "2" }, steps: [step] }));
    await until(() => f.results.length >= 3, "runs of the new schedule");
    expect(stats.maxOpen).toBe(1); // never two runs of "a" at once
    expect(f.results.map((r) => [r.labels?.v ?? "1", runNo(r)])).toEqual([["1", 0], ["2", 0], ["2", 1], ...f.results.slice(3).map((_, i) => ["2", i + 2])]);
    expect(f.results[1].ts).toBeGreaterThanOrEqual(f.results[0].ts + 150);
    await replaced.stop();
    await f.stop();
  });

  it("keeps the phase of a schedule while another is added, replaced and stopped", async () => {
    const { s } = await slowServer(0);
    const target = { host: "127.0.0.1", port: s.port };
    const f = forever();
    const interval = 100;
    f.scheduler.start(runnable({ id: "steady", target, intervalMs: interval, steps: [step] }));
    const other = f.scheduler.start(runnable({ id: "other", target, intervalMs: 30, steps: [step] }));
    await until(() => f.of("steady").length >= 2, "steady running");
    const again = f.scheduler.replace(other, runnable({ id: "other", target, intervalMs: 20, steps: [step] }));
    await until(() => f.of("steady").length >= 4, "steady running on");
    await again.stop();
    await until(() => f.of("steady").length >= 6, "steady running on alone");
    await f.stop();
    // every run of "steady" is due at start + run × interval: the ts of each is that phase,
    // late only by a run's own start-up (a few ms), never shifted by the others' changes
    const first = f.of("steady")[0].ts;
    for (const r of f.of("steady")) expect(r.ts - (first + runNo(r) * interval)).toBeLessThan(interval / 2);
  });

  it("idle() resolves once every schedule ended, those started meanwhile included", async () => {
    const { s } = await slowServer(0);
    const target = { host: "127.0.0.1", port: s.port };
    const seen: string[] = [];
    const scheduler = new Scheduler({ probe: "p1", pool, onResult: (r) => {
      seen.push(r.task);
      if (r.task === "first") scheduler.start(runnable({ id: "later", target, count: 2, intervalMs: 20, steps: [step] }));
    } });
    scheduler.start(runnable({ id: "first", target, steps: [step] }));
    await scheduler.idle();
    expect(seen).toEqual(["first", "later", "later"]);
  });

  it("starts no run of a schedule stopped while its run waited for a free slot", async () => {
    const { s } = await slowServer(100);
    const target = { host: "127.0.0.1", port: s.port };
    const ran: string[] = [];
    const scheduler = new Scheduler({ probe: "p1", pool, concurrency: 1, onResult: (r) => ran.push(r.task) });
    const busy = scheduler.start(runnable({ id: "busy", target, count: 1, intervalMs: 0, steps: [step] }));
    const waiting = scheduler.start(runnable({ id: "waiting", target, count: 1, intervalMs: 0, steps: [step] }));
    await waiting.stop(); // resolves once its wait for the slot ended without a run
    await busy.done;
    await scheduler.idle();
    expect(ran).toEqual(["busy"]);
  });
});

describe("handing results on (host/probe/hand-over.ts)", () => {
  const runNo = (r: ResultRecord) => Number(r.id.split("/").pop());

  /** The order of run starts and hand-overs of a sequential schedule of 3 runs. */
  async function order(holdResults: boolean): Promise<string[]> {
    const { s } = await slowServer(20);
    const task = runnable({ target: { host: "127.0.0.1", port: s.port }, count: 3, intervalMs: 0, steps: [step] });
    const events: string[] = [];
    await runSchedules([task], {
      probe: "p1", pool, keep: false, holdResults,
      taskFor: (t, run) => (events.push(`start ${run}`), t),
      onResult: (r) => events.push(`handed ${runNo(r)}`),
    });
    return events;
  }

  it("hands each result on as its run ends, before the next run starts (a spool keeps it at once)", async () => {
    expect(await order(false)).toEqual(["start 0", "handed 0", "start 1", "handed 1", "start 2", "handed 2"]);
  });

  it("holding, hands a sequential run's result on once the next run has started, not between the runs", async () => {
    // each result goes out as the next run waits for its reply; the last one as the schedule ends
    expect(await order(true)).toEqual(["start 0", "start 1", "handed 0", "start 2", "handed 1", "handed 2"]);
  });

  it("holding, hands on every result, in order, when the runs never reach a peer", async () => {
    const closed = await tcpServer(() => {});
    const port = closed.port;
    await closed.close(); // nothing listens there now: every run is a 601
    const task = runnable({ target: { host: "127.0.0.1", port }, count: 4, intervalMs: 0, steps: [step] });
    const handed: string[] = [];
    await runSchedules([task], { probe: "p1", pool, keep: false, holdResults: true, onResult: (r) => handed.push(`${runNo(r)} ${r.code}`) });
    expect(handed).toEqual(["0 601", "1 601", "2 601", "3 601"]);
  });

  it("holding, hands a result on before the schedule sleeps until the next run is due", async () => {
    const { s } = await slowServer(0);
    const task = runnable({ target: { host: "127.0.0.1", port: s.port }, count: 2, intervalMs: 300, steps: [step] });
    const handedAt: number[] = [];
    const results = await runSchedules([task], { probe: "p1", pool, holdResults: true, onResult: () => handedAt.push(Date.now()) });
    // the next run starts 300 ms after the first: its result was out before that
    expect(handedAt[0]).toBeLessThan(results[1].ts);
  });

  it("holding, starts no further run while onResult's promise is unsettled (output backpressure)", async () => {
    const { s } = await slowServer(0);
    const task = runnable({ target: { host: "127.0.0.1", port: s.port }, count: 4, intervalMs: 0, steps: [step] });
    let settledAt = 0;
    const results = await runSchedules([task], {
      probe: "p1", pool, holdResults: true,
      onResult: (r) => runNo(r) === 0
        ? new Promise<void>((resolve) => setTimeout(() => { settledAt = Date.now(); resolve(); }, 200))
        : undefined,
    });
    expect(results.map(runNo)).toEqual([0, 1, 2, 3]);
    // run 0's result is handed on during run 1, so run 1 may have started; run 2 waited
    expect(results[2].ts).toBeGreaterThanOrEqual(settledAt);
  });

  it("holding, ends the schedule with onResult's error once the run in flight is over, handing nothing more", async () => {
    const { s } = await slowServer(0);
    const task = runnable({ target: { host: "127.0.0.1", port: s.port }, count: 5, intervalMs: 0, steps: [step] });
    const handed: number[] = [];
    const scheduler = new Scheduler({ probe: "p1", pool, holdResults: true, onResult: (r) => {
      handed.push(runNo(r));
      if (runNo(r) === 1) throw new Error("the output is gone");
    } });
    await expect(scheduler.start(task).done).rejects.toThrow("the output is gone");
    expect(handed).toEqual([0, 1]);
  });
});
