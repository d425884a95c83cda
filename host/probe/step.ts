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
import { type Deadline, Limit, earliest, timerDelay, within } from "./deadline.js";
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

export async function runStep(
  conn: Connection, step: PreparedStep, pool: CorePool, task: Deadline, times: StepTimes,
): Promise<void> {
  const started = performance.now();
  const limit = new Limit(step.timeoutMs, 609, `step ${step.index + 1} did not complete within ${step.timeoutMs} ms`, step.index);
  // The response timer starts once the data is written, or with the step when it sends nothing.
  let replyFrom = started;
  if (step.send) {
    conn.discardLeftover();
    await within(conn.write(step.send, step.index), [limit, task]);
    replyFrom = performance.now();
    times.sendMs = (times.sendMs ?? 0) + replyFrom - started;
  }
  await readReply(conn, step, pool, replyFrom, [limit, task], times);
}

function readReply(
  conn: Connection, step: PreparedStep, pool: CorePool, replyFrom: number, outer: Deadline[], times: StepTimes,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    new ReplyReader(conn, step, pool, replyFrom, outer, times, resolve, reject).start();
  });
}

/**
 * Reads one reply. The reply's own scope has one deadline at a time: the response timeout
 * until the first byte, then the idle timeout, which ends the reply rather than failing it.
 * One timer is kept armed at the earliest of that and the outer (step, task) deadlines.
 */
class ReplyReader {
  private readonly verifier: Verifier;
  /** the reply's first bytes, for a 607 message */
  private readonly head = Buffer.allocUnsafe(QUOTED_BYTES);
  private readonly where: string;
  private readonly responseAt: number;
  private idleAt = Infinity;
  private received = 0;
  private firstAt: number | null = null;
  private timer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    private readonly conn: Connection,
    private readonly step: PreparedStep,
    private readonly pool: CorePool,
    private readonly replyFrom: number,
    private readonly outer: Deadline[],
    private readonly times: StepTimes,
    private readonly resolve: () => void,
    private readonly reject: (fault: RunFault) => void,
  ) {
    this.verifier = pool.createVerifier(step.verify);
    this.where = `step ${step.index + 1}`;
    this.responseAt = replyFrom + step.responseTimeoutMs;
  }

  start(): void {
    this.conn.listen(this);
    if (!this.done) this.arm();
  }

  /** The reply-scope deadline now in force: response before the first byte, idle after. */
  private get replyAt(): number {
    return this.firstAt === null ? this.responseAt : this.idleAt;
  }

  /** Acts on the deciding deadline if it has passed by `now` (ties: the reply scope first). */
  private expire(now: number): boolean {
    const outer = earliest(this.outer);
    if (this.replyAt <= outer.at) {
      if (this.replyAt > now) return false;
      if (this.firstAt !== null) this.endReply(`no byte for ${this.step.idleMs} ms`);
      else this.finish(new RunFault(603, `${this.where}: no reply within ${this.step.responseTimeoutMs} ms`, this.step.index));
      return true;
    }
    if (outer.at > now) return false;
    this.finish(outer.fault());
    return true;
  }

  private arm(): void {
    clearTimeout(this.timer);
    const at = Math.min(this.replyAt, earliest(this.outer).at);
    this.timer = setTimeout(() => {
      if (!this.expire(performance.now())) this.arm();
    }, timerDelay(at));
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
    const part = chunk.subarray(0, this.step.maxResponseBytes - before);
    if (before < QUOTED_BYTES) part.copy(this.head, before);
    this.received += part.length;
    const verdict = this.verifier.push(part);
    if (verdict === "pass") {
      this.conn.keep(chunk.subarray(this.verifier.decidedAt - before));
      this.finish();
    } else if (verdict === "fail") {
      this.finish(new RunFault(607, `${this.where}: ${this.failure(false)}`, this.step.index));
    } else if (this.received >= this.step.maxResponseBytes) {
      this.endReply(`maxResponseBytes ${this.step.maxResponseBytes} reached`);
    } else {
      this.arm();
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
    if (this.verifier.end() === "pass") return this.finish();
    this.finish(new RunFault(607, `${this.where}: ${this.failure(true)} (${why})`, this.step.index));
  }

  private finish(fault?: RunFault): void {
    this.done = true;
    clearTimeout(this.timer);
    this.conn.listen(null);
    this.verifier.release();
    if (this.firstAt !== null) this.times.receiveMs = (this.times.receiveMs ?? 0) + performance.now() - this.firstAt;
    if (fault) this.reject(fault);
    else this.resolve();
  }

  private failure(atEnd: boolean): string {
    const { step, received } = this;
    const head = this.head.subarray(0, Math.min(received, QUOTED_BYTES));
    const reply = `${plural(received, "byte")} of reply ${showData(this.pool.primary, head, step.format, QUOTED_BYTES, received)}`;
    return verifyFailure(step, this.verifier, this.pool, reply, atEnd);
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
