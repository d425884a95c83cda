// Phase 4, once per step: send the step's data, then read its reply through a streaming
// verifier in the core until a verdict, the end of the reply, or a deadline.
//   602 the data could not be written       603 no first byte in time, or closed before it
//   607 the reply did not verify            609 the step took longer than its limit
// A reply ends when the peer closes, at maxResponseBytes, or after idleMs without a byte.

import type { CorePool } from "../core/pool.js";
import { bytesToHex } from "../core/hex.js";
import type { Verifier } from "../core/verifier.js";
import type { Connection } from "./connection.js";
import { type Deadline, earliest, within } from "./deadline.js";
import { RunFault } from "./fault.js";
import type { PreparedStep } from "./prepare.js";

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
  const limit: Deadline = {
    at: started + step.timeoutMs,
    fault: () => new RunFault(609, `step ${step.index + 1} did not complete within ${step.timeoutMs} ms`, step.index),
  };
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
  const where = `step ${step.index + 1}`;
  const response: Deadline = {
    at: replyFrom + step.responseTimeoutMs,
    fault: () => new RunFault(603, `${where}: no reply within ${step.responseTimeoutMs} ms`, step.index),
  };
  // Silence after the first byte ends the reply; it is a deadline of the reply's own scope.
  const idle: Deadline = { at: Infinity, fault: () => response.fault() };
  const verifier = pool.createVerifier(step.verify);
  let received = 0;
  let firstAt: number | null = null;
  let timer: NodeJS.Timeout | undefined;
  let done = false;

  return new Promise<void>((resolve, reject) => {
    const finish = (fault?: RunFault) => {
      done = true;
      clearTimeout(timer);
      conn.listen(null);
      verifier.release();
      if (firstAt !== null) times.receiveMs = (times.receiveMs ?? 0) + performance.now() - firstAt;
      if (fault) reject(fault);
      else resolve();
    };
    const deadlines = () => [firstAt === null ? response : idle, ...outer];
    const endReply = (why: string) => {
      if (verifier.end() === "pass") return finish();
      finish(new RunFault(607, `${where}: ${verifyFailure(step, verifier, pool, received, true)} (${why})`, step.index));
    };
    /** Acts on a deadline that has passed; returns false when none has. */
    const expire = (now: number): boolean => {
      const d = earliest(deadlines());
      if (d.at > now) return false;
      if (d === idle) endReply(`no byte for ${step.idleMs} ms`);
      else finish(d.fault());
      return true;
    };
    const arm = () => {
      clearTimeout(timer);
      const at = earliest(deadlines()).at;
      timer = setTimeout(() => { if (!expire(performance.now())) arm(); }, Math.max(0, at - performance.now()));
    };

    conn.listen({
      data(chunk) {
        const now = performance.now();
        if (expire(now)) {
          conn.keep(chunk); // arrived after this reply was over
          return;
        }
        if (firstAt === null) {
          firstAt = now;
          times.firstByteMs ??= now - replyFrom;
        }
        idle.at = now + step.idleMs;
        const part = chunk.subarray(0, step.maxResponseBytes - received);
        const before = received;
        received += part.length;
        const verdict = verifier.push(part);
        if (verdict === "pass") {
          conn.keep(chunk.subarray(verifier.decidedAt - before));
          return finish();
        }
        if (verdict === "fail") {
          return finish(new RunFault(607, `${where}: ${verifyFailure(step, verifier, pool, received, false)}`, step.index));
        }
        if (received >= step.maxResponseBytes) return endReply(`maxResponseBytes ${step.maxResponseBytes} reached`);
        arm();
      },
      end() {
        if (received > 0) return endReply(`connection ${conn.ended} by peer`);
        finish(new RunFault(603, `${where}: connection ${conn.ended} by peer before the first byte of the reply`, step.index));
      },
    });
    if (!done) arm();
  });
}

/** Why a reply failed verification, in words; `atEnd` when the reply's end decided it. */
function verifyFailure(step: PreparedStep, verifier: Verifier, pool: CorePool, received: number, atEnd: boolean): string {
  const spec = step.verify;
  switch (spec.mode) {
    case "partial":
      return `${step.expectLabel} not found in ${received} bytes of reply`;
    case "full":
      return atEnd
        ? `reply ended after ${received} of ${spec.expected.length} expected bytes`
        : `reply differs from the ${step.expectLabel} at byte ${verifier.decidedAt - 1}`;
    case "md5":
      return `MD5 of the ${received}-byte reply is ${bytesToHex(pool.primary, verifier.replyDigest!)}, ` +
        `expected ${bytesToHex(pool.primary, spec.digest)}`;
    case "none":
      return "no reply";
  }
}
