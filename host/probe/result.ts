// The result record (DESIGN.md "Result record"): one per run, printed by `run --json` and
// published over MQTT.

import type { ErrorCode } from "../codes.js";

export interface Timings {
  dnsMs: number | null;
  connectMs: number | null;
  tlsMs: number | null;
  /** writing every step's data to the local TCP stack, summed */
  sendMs: number | null;
  /** data of the first step written → first byte of its reply */
  firstByteMs: number | null;
  /** first byte of each reply → its verdict, summed over steps */
  receiveMs: number | null;
  totalMs: number;
}

export interface TlsFacts {
  version: string | null;
  subject: string | null;
  issuer: string | null;
  /** ISO 8601 */
  notAfter: string | null;
  daysLeft: number | null;
}

export interface ResultRecord {
  v: 1;
  /** probe/task/ts/run: unique per run, stable across re-delivery */
  id: string;
  probe: string;
  task: string;
  /** the run's start, epoch ms */
  ts: number;
  ok: boolean;
  code: ErrorCode | null;
  /** index of the failing step, or null */
  step: number | null;
  message: string | null;
  /** the address connected to, when DNS got that far */
  address: string | null;
  timings: Timings;
  bytesSent: number;
  bytesReceived: number;
  tls?: TlsFacts;
  labels?: Record<string, string>;
}

/** Milliseconds rounded to 0.01, for records that stay small and readable. */
export function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}
