// Shortening a result to fit a message and a spool (DESIGN.md "MQTT": a result is shortened,
// never refused or dropped whole).

import { LIMITS, type ResultRecord } from "./record.js";

/** `s` cut to at most `max` characters, marked with "…", never splitting a surrogate pair. */
export function shorten(s: string, max: number): string {
  if (s.length <= max) return s;
  let end = Math.max(0, max - 1);
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${s.slice(0, end)}…`;
}

const SUSPECT = /[\u0000\uD800-\uDFFF]/;

/**
 * `s` as the collector accepts it (validate.ts): U+0000 shown as the six characters \u0000 and
 * a lone surrogate as U+FFFD. A peer's certificate name, and the TLS error quoting it, may hold
 * a NUL; the record would be rejected whole.
 */
export function storable(s: string): string {
  if (!SUSPECT.test(s)) return s;
  return (s.replaceAll("\u0000", "\\u0000") as string & { toWellFormed(): string }).toWellFormed();
}

const storableOrNull = (s: string | null) => (s === null ? null : storable(s));

/** A copy of the record with every free text within its limit and within `cap` characters. */
function capped(r: ResultRecord, cap: number): ResultRecord {
  const out: ResultRecord = { ...r, timings: { ...r.timings } };
  const cut = (s: string, limit: number) => shorten(s, Math.min(limit, cap));
  if (r.message !== null) out.message = cut(storable(r.message), LIMITS.message);
  if (r.labels) {
    out.labels = Object.fromEntries(Object.entries(r.labels).map(([k, v]) => [storable(k), cut(storable(v), LIMITS.labelValue)]));
  }
  if (r.tls) {
    out.tls = { ...r.tls, version: storableOrNull(r.tls.version), notAfter: storableOrNull(r.tls.notAfter) };
    if (r.tls.subject !== null) out.tls.subject = cut(storable(r.tls.subject), LIMITS.tlsText);
    if (r.tls.issuer !== null) out.tls.issuer = cut(storable(r.tls.issuer), LIMITS.tlsText);
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
