// Scheduling: count and intervalMs, no overlapping runs of one task, the concurrency limit,
// and stopping.

import { afterEach, describe, expect, it } from "vitest";
import { runSchedules } from "../../host/probe/schedule.js";
import { Semaphore } from "../../host/probe/semaphore.js";
import { pool, runnable } from "../helpers/probe.js";
import { tcpServer, type TestServer } from "../helpers/tcp.js";

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
