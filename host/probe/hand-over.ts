// One schedule's results on their way to onResult: at once as each run ends, or, holding,
// later. Sequential runs of a task are paced by the round trip: whatever the process does
// between one run's reply and the next run's data reaching the peer adds to every run, while
// the same work done as the next run waits for its reply overlaps the peer's time. Measured
// against a loopback echo server in its own process (test/bench/run-command.ts):
// JSON.stringify of a record between two runs cost 11 % of the rate; the same work done as
// the next run waited, nothing measurable. Holding, a result is handed on at the first of:
// the next run of its schedule waits on its peer (RunOptions.whileWaiting), the next run
// ends, the schedule waits (interval, a slot) or ends. That suits output nobody keeps (the
// lines `catprobe run` prints); a result meant to be kept goes to its spool at once, so a
// kill during the next run cannot take it too.

import type { ResultRecord } from "../wire/record.js";
import type { RunnableTask } from "./runner.js";

/** SchedulerOptions.onResult */
export type OnResult = (record: ResultRecord, ran: RunnableTask, scheduled: RunnableTask) => unknown;

interface Held {
  record: ResultRecord;
  ran: RunnableTask;
  scheduled: RunnableTask;
}

export class HandOver {
  private held: Held | null = null;
  /** what onResult returned for the result handed on last, while it is an unsettled promise */
  private pending: Promise<unknown> | null = null;
  /** onResult's error: thrown to the schedule at its next settle() */
  private failure: { error: unknown } | null = null;

  /** `hold`: hand each result on as the next run waits (see above), not as its run ends */
  constructor(private readonly onResult: OnResult | undefined, private readonly hold: boolean) {}

  /** Hands on the held result now, if one is held; bound, to be passed as RunOptions.whileWaiting. */
  readonly flush = (): void => {
    const held = this.held;
    if (!held || this.failure) return; // after an error of onResult the schedule ends with it
    this.held = null;
    let returned: unknown;
    try {
      returned = this.onResult?.(held.record, held.ran, held.scheduled);
    } catch (error) {
      this.failure ??= { error };
      return;
    }
    if (returned instanceof Promise) {
      const pending: Promise<unknown> = returned.then(
        () => { if (this.pending === pending) this.pending = null; },
        (error) => { this.failure ??= { error }; },
      );
      this.pending = pending;
    }
  };

  /** Takes a run's result: hands it on, or holds it (handing on the one held before, if the run never waited). */
  take(record: ResultRecord, ran: RunnableTask, scheduled: RunnableTask): void {
    this.flush();
    this.held = { record, ran, scheduled };
    if (!this.hold) this.flush();
  }

  /**
   * Resolves once onResult's last promise (output backpressure) has settled, and rejects with
   * its error, or a throw of onResult; with `flush`, hands on the held result first. No
   * promise is made when there is nothing to wait for.
   */
  settle(flush: boolean): Promise<void> | undefined {
    if (flush) this.flush();
    if (this.pending) return this.pending.then(() => this.settle(false));
    if (this.failure) throw this.failure.error;
    return undefined;
  }
}
