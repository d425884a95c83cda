// Runs tasks on their schedules: each task's `count` runs, `intervalMs` apart (or for good,
// still `intervalMs` apart), all tasks at once with at most `concurrency` runs in flight. A run
// still going when the next one of the same task is due delays it: runs of one task never
// overlap. A Scheduler takes tasks while it runs (a managed probe applying a new config): each
// schedule starts and stops on its own, sharing the one concurrency limit; runSchedules runs a
// fixed set to the end.

import { setTimeout as sleep } from "node:timers/promises";
import type { CorePool } from "../core/pool.js";
import type { ResultRecord } from "../wire/record.js";
import { type RunnableTask, runTask } from "./runner.js";
import { HandOver, type OnResult } from "./hand-over.js";
import { Semaphore } from "./semaphore.js";

export interface SchedulerOptions {
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
   * called with each result, the task that ran and the scheduled one, as its run ends (see
   * holdResults); when it returns a promise (output backpressure), no further run of the
   * schedule starts until it settles
   */
  onResult?: OnResult;
  /**
   * hand each result on once the schedule's next run waits for its reply rather than as its
   * run ends (hand-over.ts): for output nobody keeps (`catprobe run`'s lines), where work
   * between sequential runs would add to every run; default false (a spool takes each at once)
   */
  holdResults?: boolean;
  /** stops scheduling further runs of every schedule; runs in flight finish */
  signal?: AbortSignal;
  /**
   * no run starts at or after this time (performance.now() ms): compared with each run's due
   * time by value, so a run due exactly then does not start, however the timers fall
   */
  until?: number;
  /** start each schedule over when it ends, until stopped (a probe that runs for good) */
  forever?: boolean;
}

/** One task's schedule in a Scheduler. */
export interface Schedule {
  readonly task: RunnableTask;
  /** resolves once the schedule has ended and its last run's result was handed to onResult */
  readonly done: Promise<void>;
  /** schedules no further run (the one in flight finishes); resolves as `done` */
  stop(): Promise<void>;
}

async function waitUntil(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => {});
}

export class Scheduler {
  private readonly slots: Semaphore;
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly opts: SchedulerOptions) {
    this.slots = opts.slots ?? new Semaphore(opts.concurrency ?? 64);
  }

  /** Starts the task's schedule, its first run due now (or once `after` resolves, whichever is later). */
  start(task: RunnableTask, after?: Promise<void>): Schedule {
    const stopper = new AbortController();
    const signal = this.opts.signal ? AbortSignal.any([this.opts.signal, stopper.signal]) : stopper.signal;
    const done: Promise<void> = this.loop(task, signal, after).finally(() => this.running.delete(done));
    this.running.add(done);
    return { task, done, stop: () => (stopper.abort(), done) };
  }

  /**
   * Stops `old` and starts `task` in its place, on a schedule of its own from now; its first
   * run waits for the old one's run in flight, so the two never overlap.
   */
  replace(old: Schedule, task: RunnableTask): Schedule {
    return this.start(task, old.stop());
  }

  /** Resolves once every schedule has ended (those started meanwhile included). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  private async loop(task: RunnableTask, signal: AbortSignal, after?: Promise<void>): Promise<void> {
    const { opts, slots } = this;
    const start = performance.now();
    if (after) await after;
    const { intervalMs } = task.spec;
    const results = new HandOver(opts.onResult, opts.holdResults ?? false);
    try {
      for (let run = 0; (opts.forever || run < task.spec.count) && !signal.aborted; run++) {
        // A run already due (always so with intervalMs 0) starts without a timer, and takes a
        // free slot without a promise: the cost per run stays the run's own.
        const due = start + run * intervalMs;
        if (opts.until !== undefined && Math.max(due, performance.now()) >= opts.until) break;
        const backpressure = results.settle(false);
        if (backpressure) await backpressure; // not `await undefined`: that too would cost a turn
        if (intervalMs > 0) {
          const ms = due - performance.now();
          if (ms > 0) {
            await results.settle(true); // not held while the schedule sleeps
            await waitUntil(ms, signal);
          }
          if (signal.aborted) break;
        }
        if (!slots.tryAcquire()) {
          await results.settle(true);
          await slots.acquire();
          // stopped while it waited for a slot: a removed task must not start one more run
          if (signal.aborted) {
            slots.release();
            break;
          }
        }
        let ran = task;
        let record: ResultRecord;
        try {
          ran = opts.taskFor?.(task, run) ?? task;
          record = await runTask(ran, { probe: opts.probe, pool: opts.pool, run, whileWaiting: results.flush });
        } finally {
          slots.release();
        }
        results.take(record, ran, task);
      }
    } finally {
      results.flush(); // a run's result is handed on even when the next one threw
    }
    await results.settle(true);
  }
}

export interface ScheduleOptions extends SchedulerOptions {
  /** false: resolve with no results (the caller sees each one through onResult) */
  keep?: boolean;
}

/** Runs every task's schedule; resolves with all results, task by task, once every schedule is done. */
export async function runSchedules(tasks: RunnableTask[], opts: ScheduleOptions): Promise<ResultRecord[]> {
  // a probe that runs for good keeps nothing in memory
  const keep = !opts.forever && opts.keep !== false;
  const kept = new Map<RunnableTask, ResultRecord[]>(tasks.map((t) => [t, []]));
  const scheduler = new Scheduler(!keep ? opts : {
    ...opts,
    onResult: (record, ran, scheduled) => {
      kept.get(scheduled)!.push(record);
      return opts.onResult?.(record, ran, scheduled);
    },
  });
  for (const task of tasks) scheduler.start(task);
  await scheduler.idle();
  return [...kept.values()].flat();
}
