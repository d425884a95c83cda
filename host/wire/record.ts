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

/** A copy of the record with every free text within its limit and within `cap` characters. */
function capped(r: ResultRecord, cap: number): ResultRecord {
  const out: ResultRecord = { ...r, timings: { ...r.timings } };
  const cut = (s: string, limit: number) => shorten(s, Math.min(limit, cap));
  if (r.message !== null) out.message = cut(r.message, LIMITS.message);
  if (r.labels) out.labels = Object.fromEntries(Object.entries(r.labels).map(([k, v]) => [k, cut(v, LIMITS.labelValue)]));
  if (r.tls) {
    out.tls = { ...r.tls };
    if (r.tls.subject !== null) out.tls.subject = cut(r.tls.subject, LIMITS.tlsText);
    if (r.tls.issuer !== null) out.tls.issuer = cut(r.tls.issuer, LIMITS.tlsText);
  }
  return out;
}

/**
 * The record as JSON of at most `maxBytes` UTF-8 bytes, within LIMITS: when it is too large,
 * `message`, `labels` values and certificate names are cut to the longest common length that
 * fits (so the longest texts are shortened first). Throws only when even one-character texts do
 * not fit, which a bound of a few KiB rules out.
 */
export function fitRecord(record: ResultRecord, maxBytes: number): string {
  const attempt = (cap: number) => {
    const json = JSON.stringify(capped(record, cap));
    return Buffer.byteLength(json) <= maxBytes ? json : null;
  };
  const whole = attempt(LIMITS.message);
  if (whole) return whole;
  let fits = 1; // binary search for the largest cap that fits
  let best = attempt(fits);
  if (!best) throw new Error(`result ${record.id} cannot be made to fit ${maxBytes} bytes`);
  let tooLarge: number = LIMITS.message;
  while (tooLarge - fits > 1) {
    const mid = (fits + tooLarge) >> 1;
    const json = attempt(mid);
    if (json) [fits, best] = [mid, json];
    else tooLarge = mid;
  }
  return best;
}
