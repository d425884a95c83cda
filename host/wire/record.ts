// The result record (DESIGN.md "Result record"): one per run, printed by `run --json` and
// published over MQTT, and its bounds on the wire: the collector rejects what lies outside them
// (validate.ts), and the probe shortens its records to lie inside them (fit.ts), so a result is
// never lost for being too large.

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

/** A result record as the collector stores it: without the address the probe connected to. */
export type StoredRecord = Omit<ResultRecord, "address">;

/** The phases a record may time; `totalMs` is required, the others may be null or absent. */
export const PHASES = ["dnsMs", "connectMs", "tlsMs", "sendMs", "firstByteMs", "receiveMs"] as const;
export type Phase = (typeof PHASES)[number] | "totalMs";

/** The stored column of a timing field: dnsMs → dns_ms. */
export const phaseColumn = (phase: Phase) => phase.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Bytes of one MQTT message (a record or a batch) at most. */
export const MAX_MESSAGE_BYTES = 1 << 20;
/** The largest MQTT packet a collector takes: a message of MAX_MESSAGE_BYTES and its topic. */
export const MAX_PACKET_BYTES = MAX_MESSAGE_BYTES + 4096;
/** Records in one batch message at most. */
export const MAX_BATCH = 1000;

/** Lengths in characters (JavaScript string length) and counts. */
export const LIMITS = {
  id: 300,
  message: 4096,
  labels: 32,
  labelKey: 64,
  labelValue: 1024,
  /** each text field of `tls` */
  tlsText: 1024,
} as const;

const DAY_MS = 86_400_000;
/** `ts` must lie between 2020-01-01 and one day after the collector's clock. */
export const TS_EARLIEST = Date.UTC(2020, 0, 1);
export const tsLatest = (now: number) => now + DAY_MS;
