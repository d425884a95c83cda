// One run of a task: DNS, connect, TLS, then the steps, into exactly one result record.
// Every socket and timer of the run is released before the record is returned.

import type { CorePool } from "../core/pool.js";
import type { LoadedTask } from "../task/load.js";
import type { TaskSpec } from "../task/schema.js";
import { Connection } from "./connection.js";
import { connectTarget } from "./connect.js";
import { TaskLimit } from "./deadline.js";
import { literalTarget, resolveTarget } from "./dns.js";
import { RunFault } from "./fault.js";
import { prepareTask, type PreparedStep } from "./prepare.js";
import type { ResultRecord, TlsFacts, Timings } from "../wire/record.js";
import { runStep } from "./step.js";
import { handshake, readTlsFiles, tlsFacts, type TlsFiles } from "./tls.js";

/** A task ready to run: its data converted and checked, its TLS files read. */
export interface RunnableTask {
  file: string;
  spec: TaskSpec;
  steps: PreparedStep[];
  invalid: RunFault | null;
  tls: TlsFiles;
}

export function makeRunnable(loaded: LoadedTask, pool: CorePool): RunnableTask {
  const prepared = prepareTask(pool.primary, loaded.spec);
  return { file: loaded.file, ...prepared, tls: readTlsFiles(loaded.spec, loaded.file) };
}

export interface RunOptions {
  probe: string;
  pool: CorePool;
  /** which run of the schedule this is; part of the result id */
  run: number;
  /**
   * called once, when the run first waits on its peer with the connection made: the first
   * step's data was handed to the socket (or, sending nothing, it began to read). Work done
   * then overlaps the peer's reply rather than adding to the run (host/probe/hand-over.ts).
   */
  whileWaiting?: () => void;
}

export async function runTask(task: RunnableTask, opts: RunOptions): Promise<ResultRecord> {
  const { spec } = task;
  const ts = Date.now();
  const started = performance.now();
  const deadline = new TaskLimit(spec.taskTimeoutMs, started);
  const timings: Omit<Timings, "totalMs"> = {
    dnsMs: null, connectMs: null, tlsMs: null, sendMs: null, firstByteMs: null, receiveMs: null,
  };
  let address: string | null = null;
  let tls: TlsFacts | undefined;
  let conn: Connection | undefined;
  let fault: RunFault | null = null;

  try {
    if (task.invalid) throw task.invalid;
    // An IP literal needs no lookup: no promise, no turn of the event loop.
    let t = started; // when the phase began
    let resolved = literalTarget(spec.target.host);
    if (!resolved) {
      resolved = await resolveTarget(spec, deadline);
      const now = performance.now();
      timings.dnsMs = now - t;
      t = now;
    }
    address = resolved.address;

    deadline.phase = "connect";
    conn = new Connection(await connectTarget(spec, resolved, deadline, t));
    let now = performance.now();
    timings.connectMs = now - t;

    if (spec.target.tls) {
      deadline.phase = "TLS handshake";
      t = now;
      const secure = await handshake(conn.detach(), spec, task.tls, deadline);
      conn.adopt(secure);
      now = performance.now();
      timings.tlsMs = now - t;
      tls = tlsFacts(secure);
    }

    let first = true;
    for (const prepared of task.steps) {
      deadline.step = prepared.index;
      deadline.phase = stepPhase(prepared.index);
      // the first step starts as the connection is ready: no second clock reading
      await runStep(conn, prepared, opts.pool, deadline, timings, first ? now : performance.now(),
        first ? opts.whileWaiting : undefined);
      first = false;
      if (prepared.starttls) {
        deadline.phase = `STARTTLS after step ${prepared.index + 1}`;
        t = performance.now();
        const secure = await handshake(conn.detach(), spec, task.tls, deadline, prepared.index);
        conn.adopt(secure);
        timings.tlsMs = (timings.tlsMs ?? 0) + performance.now() - t;
        tls = tlsFacts(secure);
      }
    }
  } catch (err) {
    if (!(err instanceof RunFault)) throw err;
    fault = err;
    tls = err.tls ?? tls; // a failed handshake's certificate
  } finally {
    conn?.destroy();
  }

  const record: ResultRecord = {
    v: 1,
    id: `${opts.probe}/${spec.id}/${ts}/${opts.run}`,
    probe: opts.probe,
    task: spec.id,
    ts,
    ok: fault === null,
    code: fault?.code ?? null,
    step: fault ? fault.step ?? deadline.step : null,
    message: fault?.message ?? null,
    address,
    timings: {
      dnsMs: round(timings.dnsMs), connectMs: round(timings.connectMs), tlsMs: round(timings.tlsMs),
      sendMs: round(timings.sendMs), firstByteMs: round(timings.firstByteMs),
      receiveMs: round(timings.receiveMs), totalMs: roundMs(performance.now() - started),
    },
    bytesSent: conn?.bytesSent ?? 0,
    bytesReceived: conn?.bytesReceived ?? 0,
  };
  if (tls) record.tls = tls;
  if (spec.labels) record.labels = spec.labels;
  return record;
}

/** "step 1", "step 2", …: made once for each step index, not once for each run. */
const STEP_PHASES: string[] = [];
function stepPhase(index: number): string {
  return (STEP_PHASES[index] ??= `step ${index + 1}`);
}

function round(ms: number | null): number | null {
  return ms === null ? null : roundMs(ms);
}

/** Milliseconds rounded to 0.01, for records that stay small and readable. */
function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}
