// Phase 4, once per step: send the step's data, then read its reply through a streaming
// verifier in the core until a verdict, the end of the reply, or a deadline.
//   602 the data could not be written       603 no first byte in time, or closed before it
//   607 the reply did not verify            609 the step took longer than its limit
// A reply ends when the peer closes, at maxResponseBytes, or after idleMs without a byte.
// A 607 message quotes the start of the reply (DESIGN.md: its first 64 bytes).

import type { CorePool } from "../core/pool.js";
import { bytesToHex } from "../core/hex.js";
import type { Verifier } from "../core/verifier.js";
import type { Connection } from "./connection.js";
import { type Deadline, Limit, deadlineTimer, earlier, timerDelay } from "./deadline.js";
import { RunFault, describeError, isTlsError } from "./fault.js";
import { showData, type PreparedStep } from "./prepare.js";
import { plural } from "../text/plural.js";

/** Bytes of a reply quoted in a 607 message at most. */
const QUOTED_BYTES = 64;

/** Step timings the runner sums into the result. */
export interface StepTimes {
  sendMs: number | null;
  firstByteMs: number | null;
  receiveMs: number | null;
}

/**
 * Runs one step: resolves once its reply verified, rejects with its fault. One promise and at
 * most one armed timer for the whole step (StepRun); `now` is the step's start. `waiting` is
 * called once the step waits on the peer: its data was handed to the socket, or, sending
 * nothing, it has begun to read.
 */
export function runStep(
  conn: Connection, step: PreparedStep, pool: CorePool, task: Deadline, times: StepTimes, now = performance.now(),
  waiting?: () => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    new StepRun(conn, step, pool, task, times, now, resolve, reject).start();
    waiting?.();
  });
}

/**
 * One step: the send, then the reply. The step's limit and the task's are in force
 * throughout; the reply's own scope has one deadline at a time: the response timeout until
 * the first byte, then the idle timeout, which ends the reply rather than failing it.
 * One timer is kept armed no later than the earliest deadline in force: it is re-armed only
 * when that deadline moves earlier; a timer that fires early finds, by value, that nothing
 * has passed, and is armed again at the deadline then in force.
 */
class StepRun {
  private readonly limit: Limit;
  private verifier: Verifier | null = null;
  /** the reply's first bytes, for a 607 message: made once a chunk leaves the verdict open */
  private head: Buffer | null = null;
  private replyFrom: number;
  private responseAt = Infinity;
  private idleAt = Infinity;
  private received = 0;
  private firstAt: number | null = null;
  /** the data is being written: the reply is not read yet */
  private sending = false;
  private timer: NodeJS.Timeout | undefined;
  /** when the armed timer is due (performance.now() ms) */
  private armedAt = Infinity;
  private done = false;
  private readonly onTimer = this.timerFired.bind(this);
  private readonly onSent = this.sent.bind(this);

  constructor(
    private readonly conn: Connection,
    private readonly step: PreparedStep,
    private readonly pool: CorePool,
    private readonly task: Deadline,
    private readonly times: StepTimes,
    private readonly started: number,
    private readonly resolve: () => void,
    private readonly reject: (fault: RunFault) => void,
  ) {
    const { index, timeoutMs } = step;
    this.limit = new Limit(timeoutMs, 609, () => `step ${index + 1} did not complete within ${timeoutMs} ms`, index, started);
    this.replyFrom = started;
  }

  /** The deciding outer deadline (step over task at a tie). */
  private get outer(): Deadline {
    return earlier(this.limit, this.task);
  }

  start(): void {
    const { step, conn } = this;
    if (!step.send) return this.read();
    this.sending = true;
    conn.discardLeftover();
    // The data goes out before the timer is armed, so the peer works on it meanwhile: both
    // happen in this turn, before any event, and the deadlines are values from `started`.
    conn.send(step.send, step.index, this.onSent);
    if (this.done || this.timer !== undefined) return; // failed at once: the connection had ended
    // The response timer starts once the data is written: it cannot pass before
    // started + responseTimeoutMs, so the timer armed now serves the reply too.
    this.timer = deadlineTimer(this.onTimer, this.armedAt = Math.min(this.outer.at, this.started + step.responseTimeoutMs));
  }

  private sent(fault: RunFault | null): void {
    if (this.done) return; // the step's time ran out first
    if (fault) return this.finish(fault);
    this.sending = false;
    this.replyFrom = performance.now();
    this.times.sendMs = (this.times.sendMs ?? 0) + this.replyFrom - this.started;
    this.read();
  }

  /** Starts reading the reply (the response timer starts at replyFrom). */
  private read(): void {
    try {
      this.verifier = this.pool.createVerifier(this.step.verify);
    } catch (err) {
      this.done = true;
      this.clearTimer();
      (this.reject as (err: unknown) => void)(err);
      return;
    }
    this.responseAt = this.replyFrom + this.step.responseTimeoutMs;
    this.conn.listen(this);
    if (this.done) return;
    if (this.timer === undefined) {
      // a step that sends nothing: its limits start now
      this.timer = deadlineTimer(this.onTimer, this.armedAt = Math.min(this.replyAt, this.outer.at));
    } else {
      this.arm(Math.min(this.replyAt, this.outer.at));
    }
  }

  private get where(): string {
    return `step ${this.step.index + 1}`;
  }

  /** The reply-scope deadline now in force: response before the first byte, idle after. */
  private get replyAt(): number {
    return this.firstAt === null ? this.responseAt : this.idleAt;
  }

  /** Acts on the deciding deadline if it has passed by `now` (ties: the reply scope first). */
  private expire(now: number): boolean {
    const outer = this.outer;
    const replyAt = this.replyAt;
    if (replyAt <= outer.at) {
      if (replyAt > now) return false;
      if (this.firstAt !== null) this.endReply(`no byte for ${this.step.idleMs} ms`);
      else this.finish(new RunFault(603, `${this.where}: no reply within ${this.step.responseTimeoutMs} ms`, this.step.index));
      return true;
    }
    if (outer.at > now) return false;
    this.finish(outer.fault());
    return true;
  }

  /** Has the timer armed no later than `at`. */
  private arm(at: number): void {
    if (this.timer !== undefined) {
      if (this.armedAt <= at) return;
      clearTimeout(this.timer);
    }
    this.armedAt = at;
    this.timer = setTimeout(this.onTimer, timerDelay(at));
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private timerFired(): void {
    this.timer = undefined;
    if (this.done) return;
    if (this.sending) {
      // While the data is written only the outer deadlines are in force; a timer armed for
      // one of them decides, as a timer armed for the reply's response timeout cannot.
      const outer = this.outer;
      if (this.armedAt >= outer.at) return this.finish(outer.fault());
      return this.arm(outer.at);
    }
    if (!this.expire(performance.now())) this.arm(Math.min(this.replyAt, this.outer.at));
  }

  data(chunk: Buffer): void {
    const now = performance.now();
    if (this.expire(now)) {
      this.conn.keep(chunk); // arrived after this reply was over
      return;
    }
    if (this.firstAt === null) {
      this.firstAt = now;
      this.times.firstByteMs ??= now - this.replyFrom;
    }
    this.idleAt = now + this.step.idleMs;
    const before = this.received;
    const room = this.step.maxResponseBytes - before;
    const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.received += part.length;
    const verifier = this.verifier!;
    const verdict = verifier.push(part);
    if (verdict === "pass") {
      const rest = verifier.decidedAt - before;
      if (rest < chunk.length) this.conn.keep(chunk.subarray(rest));
      return this.finish();
    }
    // A reply that passes is never quoted: no copy of its head is made for it.
    if (before < QUOTED_BYTES) part.copy(this.head ??= Buffer.allocUnsafe(QUOTED_BYTES), before);
    if (verdict === "fail") {
      this.finish(new RunFault(607, `${this.where}: ${this.failure(false)}`, this.step.index));
    } else if (this.received >= this.step.maxResponseBytes) {
      this.endReply(`maxResponseBytes ${this.step.maxResponseBytes} reached`);
    } else {
      this.arm(Math.min(this.idleAt, this.outer.at));
    }
  }

  end(): void {
    // In TLS 1.3 a server rejects a client certificate after the client's handshake is done:
    // the alert arrives here, and it is still a handshake failure.
    if (this.conn.error && isTlsError(this.conn.error)) {
      return this.finish(new RunFault(608, `${this.where}: TLS failure: ${describeError(this.conn.error)}`, this.step.index));
    }
    if (this.received > 0) return this.endReply(`connection ${this.conn.ended} by peer`);
    this.finish(new RunFault(603,
      `${this.where}: connection ${this.conn.ended} by peer before the first byte of the reply`, this.step.index));
  }

  private endReply(why: string): void {
    if (this.verifier!.end() === "pass") return this.finish();
    this.finish(new RunFault(607, `${this.where}: ${this.failure(true)} (${why})`, this.step.index));
  }

  private finish(fault?: RunFault): void {
    this.done = true;
    this.clearTimer();
    this.conn.listen(null);
    this.verifier?.release();
    if (this.firstAt !== null) this.times.receiveMs = (this.times.receiveMs ?? 0) + performance.now() - this.firstAt;
    if (fault) this.reject(fault);
    else this.resolve();
  }

  private failure(atEnd: boolean): string {
    const { step, received } = this;
    const head = this.head?.subarray(0, Math.min(received, QUOTED_BYTES)) ?? Buffer.alloc(0);
    const reply = `${plural(received, "byte")} of reply ${showData(this.pool.primary, head, step.format, QUOTED_BYTES, received)}`;
    return verifyFailure(step, this.verifier!, this.pool, reply, atEnd);
  }
}

/**
 * Why a reply failed verification, in words; `reply` quotes it ("6 bytes of reply …") and
 * `atEnd` says the reply's end decided.
 */
function verifyFailure(step: PreparedStep, verifier: Verifier, pool: CorePool, reply: string, atEnd: boolean): string {
  const spec = step.verify;
  switch (spec.mode) {
    case "partial":
      return `${step.expectLabel} not found in ${reply}`;
    case "full":
    case "prefix": {
      const expected = `the ${step.expectLabel} (${plural(spec.expected.length, "byte")})`;
      if (atEnd) return `reply is shorter than ${expected}: ${reply}`;
      const at = verifier.decidedAt - 1;
      if (at === spec.expected.length) return `reply is longer than ${expected}: ${reply}`;
      return `reply differs from the ${step.expectLabel} at byte ${at}: ${reply}`;
    }
    case "md5":
      return `MD5 of ${reply} is ${bytesToHex(pool.primary, verifier.replyDigest!)}, ` +
        `expected ${bytesToHex(pool.primary, spec.digest)}`;
    case "none":
      return `no reply: ${reply}`;
  }
}
