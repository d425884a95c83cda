// The result record's bounds on the wire (DESIGN.md "Result record", "MQTT"): the collector
// rejects what lies outside them, and the probe shortens its records to lie inside them, so a
// result is never lost for being too large.

import type { ResultRecord } from "../probe/result.js";

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

/** `s` cut to at most `max` characters, marked with "…", never splitting a surrogate pair. */
export function shorten(s: string, max: number): string {
  if (s.length <= max) return s;
  let end = Math.max(0, max - 1);
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${s.slice(0, end)}…`;
}

interface TextField {
  value: string;
  set(value: string): void;
}

/** The record's free-text fields, which may be shortened without changing what the run was. */
function textFields(r: ResultRecord): TextField[] {
  const fields: TextField[] = [];
  if (r.message !== null) fields.push({ value: r.message, set: (v) => (r.message = v) });
  for (const key of Object.keys(r.labels ?? {})) {
    fields.push({ value: r.labels![key], set: (v) => (r.labels![key] = v) });
  }
  const tls = r.tls;
  if (tls) {
    for (const key of ["subject", "issuer"] as const) {
      const value = tls[key];
      if (value !== null) fields.push({ value, set: (v) => (tls[key] = v) });
    }
  }
  return fields;
}

/**
 * The record as JSON of at most `maxBytes` UTF-8 bytes, within LIMITS: `message`, `labels`
 * values and certificate names are shortened (longest first) until it fits. Throws only when
 * even empty texts do not fit, which a bound of a few KiB rules out.
 */
export function fitRecord(record: ResultRecord, maxBytes: number): string {
  const r: ResultRecord = structuredClone(record);
  if (r.message !== null) r.message = shorten(r.message, LIMITS.message);
  if (r.labels) for (const key of Object.keys(r.labels)) r.labels[key] = shorten(r.labels[key], LIMITS.labelValue);
  if (r.tls) {
    if (r.tls.subject !== null) r.tls.subject = shorten(r.tls.subject, LIMITS.tlsText);
    if (r.tls.issuer !== null) r.tls.issuer = shorten(r.tls.issuer, LIMITS.tlsText);
  }
  for (;;) {
    const json = JSON.stringify(r);
    const excess = Buffer.byteLength(json) - maxBytes;
    if (excess <= 0) return json;
    const longest = textFields(r).reduce<TextField | null>((a, f) => (a && a.value.length >= f.value.length ? a : f), null);
    if (!longest || longest.value.length <= 1) throw new Error(`result ${r.id} cannot be made to fit ${maxBytes} bytes`);
    // Each character is at least one byte of JSON, and "…" three: this removes `excess` at least.
    longest.set(shorten(longest.value, Math.max(1, longest.value.length - excess - 3)));
  }
}
