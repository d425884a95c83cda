// Time limits of a run. Several scopes can be running at once (the DNS or connect limit, the
// step, the task); the earliest deadline to pass decides, and when several pass at the same
// moment the narrowest scope wins (DESIGN.md: response over step over task). Deadlines are
// compared by their values, not by when a timer happened to fire, so a late event loop
// cannot change which fault is reported.

import type { RunFault } from "./fault.js";

export interface Deadline {
  /** performance.now() milliseconds */
  at: number;
  fault(): RunFault;
}

/** The deadline that decides: the earliest, and at a tie the first listed (list narrowest first). */
export function earliest(deadlines: Deadline[]): Deadline {
  let best = deadlines[0];
  for (const d of deadlines) if (d.at < best.at) best = d;
  return best;
}

/** The deadline that has passed by `now`, if any. */
export function passed(deadlines: Deadline[], now = performance.now()): Deadline | undefined {
  const d = earliest(deadlines);
  return d.at <= now ? d : undefined;
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
    }, Math.max(0, d.at - performance.now()));
    work.then(
      (value) => { clearTimeout(timer); resolve(value); },
      (err) => { clearTimeout(timer); reject(err); },
    );
  });
}
