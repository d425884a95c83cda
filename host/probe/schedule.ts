// Runs tasks on their schedules: each task's `count` runs, `intervalMs` apart (or for good,
// still `intervalMs` apart), all tasks at once with at most `concurrency` runs in flight. A run still going when the next one of the
// same task is due delays it: runs of one task never overlap.

import { setTimeout as sleep } from "node:timers/promises";
import type { CorePool } from "../core/pool.js";
import type { ResultRecord } from "../wire/record.js";
import { type RunnableTask, runTask } from "./runner.js";
import { Semaphore } from "./semaphore.js";

export interface ScheduleOptions {
  probe: string;
  pool: CorePool;
  /** runs in flight at most, over all tasks (default 64) */
  concurrency?: number;
  /** a limit shared with other schedules (the lab's fleet in one process); replaces concurrency */
  slots?: Semaphore;
  /**
   * the task each run executes in place of the scheduled one (default: the scheduled one); the
   * lab injects a fault per run this way, with the schedule still the task's own
   */
  taskFor?: (task: RunnableTask, run: number) => RunnableTask;
  /**
   * called with each result, and the task that ran, as soon as its run ends; when it returns a
   * promise (output backpressure), the task's next run waits for it
   */
  onResult?: (record: ResultRecord, ran: RunnableTask) => unknown;
  /** stops scheduling further runs; runs in flight finish */
  signal?: AbortSignal;
  /**
   * no run starts at or after this time (performance.now() ms): compared with each run's due
   * time by value, so a run due exactly then does not start, however the timers fall
   */
  until?: number;
  /** start each schedule over when it ends, until aborted (a probe that runs for good) */
  forever?: boolean;
  /** false: resolve with no results (the caller sees each one through onResult) */
  keep?: boolean;
}

async function waitUntil(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => {});
}

async function runSchedule(task: RunnableTask, slots: Semaphore, opts: ScheduleOptions): Promise<ResultRecord[]> {
  const results: ResultRecord[] = [];
  const start = performance.now();
  const { intervalMs } = task.spec;
  for (let run = 0; (opts.forever || run < task.spec.count) && !opts.signal?.aborted; run++) {
    // A run already due (always so with intervalMs 0) starts without a timer, and takes a
    // free slot without a promise: the cost per run stays the run's own.
    const due = start + run * intervalMs;
    if (opts.until !== undefined && Math.max(due, performance.now()) >= opts.until) break;
    if (intervalMs > 0) {
      const ms = due - performance.now();
      if (ms > 0) await waitUntil(ms, opts.signal);
      if (opts.signal?.aborted) break;
    }
    if (!slots.tryAcquire()) await slots.acquire();
    let pending: unknown;
    try {
      const ran = opts.taskFor?.(task, run) ?? task;
      const record = await runTask(ran, { probe: opts.probe, pool: opts.pool, run });
      // a probe that runs for good keeps nothing in memory
      if (!opts.forever && opts.keep !== false) results.push(record);
      pending = opts.onResult?.(record, ran);
    } finally {
      slots.release();
    }
    if (pending instanceof Promise) await pending;
  }
  return results;
}

/** Runs every task's schedule; resolves with all results once every schedule is done. */
export async function runSchedules(tasks: RunnableTask[], opts: ScheduleOptions): Promise<ResultRecord[]> {
  const slots = opts.slots ?? new Semaphore(opts.concurrency ?? 64);
  const all = await Promise.all(tasks.map((task) => runSchedule(task, slots, opts)));
  return all.flat();
}
