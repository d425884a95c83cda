// Hand-made result records for collector tests.

import type { ErrorCode } from "../../host/codes.js";
import type { StoredRecord } from "../../host/wire/record.js";

let serial = 0;

export function record(probe: string, task: string, ts: number, code: number | null): StoredRecord {
  return {
    v: 1, id: `${probe}/${task}/${ts}/${serial++}`, probe, task, ts, ok: code === null, code: code as ErrorCode | null,
    step: code === null ? null : 0, message: code === null ? null : `fault ${code}`,
    timings: { dnsMs: 1, connectMs: 2, tlsMs: null, sendMs: 0.5, firstByteMs: 3, receiveMs: 0.5, totalMs: 7 },
    bytesSent: 6, bytesReceived: 7,
  };
}

/** `n` records of one code, one per `stepMs` from `ts`. */
export function many(n: number, probe: string, task: string, ts: number, code: number | null, stepMs = 1): StoredRecord[] {
  return Array.from({ length: n }, (_, i) => record(probe, task, ts + i * stepMs, code));
}
