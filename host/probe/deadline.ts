// Time limits of a run. Several scopes can be running at once (the DNS or connect limit, the
// step, the task); the earliest deadline to pass decides, and when several pass at the same
// moment the narrowest scope wins (DESIGN.md: response over step over task). Deadlines are
// compared by their values, not by when a timer happened to fire, so a late event loop
// cannot change which fault is reported.

import type { ErrorCode } from "../codes.js";
import { RunFault } from "./fault.js";

export interface Deadline {
  /** performance.now() milliseconds */
  at: number;
  fault(): RunFault;
}

/** A phase's or a step's limit: `ms` from now, failing with `code` and `message`. */
export class Limit implements Deadline {
  readonly at: number;
  /**
   * `message` may be a function: the text is then made only when the limit passes (a run's
   * limits rarely do, and the hot path builds no string for them).
   */
  constructor(ms: number, private readonly code: ErrorCode, private readonly message: string | (() => string),
    private readonly step: number | null = null, now = performance.now()) {
    this.at = now + ms;
  }
  fault(): RunFault {
    const { message } = this;
    return new RunFault(this.code, typeof message === "string" ? message : message(), this.step);
  }
}

/** The task's limit (604); its message names the phase the run was in when it passed. */
export class TaskLimit implements Deadline {
  readonly at: number;
  phase = "DNS";
  step: number | null = null;
  constructor(private readonly ms: number, now = performance.now()) {
    this.at = now + ms;
  }
  fault(): RunFault {
    return new RunFault(604, `task did not complete within ${this.ms} ms (during ${this.phase})`, this.step);
  }
}

/** The deadline that decides: the earliest, and at a tie the first listed (list narrowest first). */
export function earliest(deadlines: Deadline[]): Deadline {
  let best = deadlines[0];
  for (let i = 1; i < deadlines.length; i++) if (deadlines[i].at < best.at) best = deadlines[i];
  return best;
}

/** `earliest([a, b])` without the array: `a` at a tie (list the narrower scope first). */
export function earlier(a: Deadline, b: Deadline): Deadline {
  return b.at < a.at ? b : a;
}

/**
 * Milliseconds until `at`, rounded up to a whole millisecond. Node keeps one timer list per
 * distinct delay, so fractional delays would give every timer a list of its own.
 */
export function timerDelay(at: number): number {
  return Math.max(0, Math.ceil(at - performance.now()));
}

/** Delays with a keeper (see deadlineTimer); a bound on how many distinct ones there can be. */
const keepers = new Map<number, NodeJS.Timeout>();
const MAX_KEEPERS = 32;
const noop = () => {};

/**
 * setTimeout(fn) at `at`, for a limit armed as it starts, so with the limit's own delay.
 * Node keeps one timer list per delay and drops a list once its last timer is cleared: a
 * sequential run's timer, the only one of its delay, would make and drop a list (and re-arm
 * the loop's timer) each time. An unref'd interval of the same delay, one per delay, keeps
 * that list: it holds nothing open and fires once per delay, doing nothing.
 */
export function deadlineTimer(fn: () => void, at: number): NodeJS.Timeout {
  const delay = timerDelay(at);
  if (delay > 0 && !keepers.has(delay) && keepers.size < MAX_KEEPERS) keepers.set(delay, setInterval(noop, delay).unref());
  return setTimeout(fn, delay);
}

/**
 * Settles with `work`, or rejects with the fault of the deciding deadline once it passes;
 * `onTimeout` cleans up the abandoned work (cancel a lookup, destroy a socket).
 */
export function within<T>(work: Promise<T>, deadlines: Deadline[], onTimeout: () => void = () => {}): Promise<T> {
  const d = earliest(deadlines);
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout();
      reject(d.fault());
    }, timerDelay(d.at));
    work.then(
      (value) => { clearTimeout(timer); resolve(value); },
      (err) => { clearTimeout(timer); reject(err); },
    );
  });
}
