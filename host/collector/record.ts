// Incoming result records: the shape the collector accepts (DESIGN.md "Result record"), and
// why a message was rejected. Unknown extra fields are allowed and not stored, so newer
// probes can add fields without being rejected by an older collector.

import type { ResultRecord } from "../probe/result.js";
import { ID_PATTERN } from "../task/schema.js";

/** Bytes per MQTT message the collector reads at most; larger messages are rejected. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** Records per batch message at most. */
export const MAX_BATCH = 1000;

export type RejectReason =
  | "bad_topic" | "too_large" | "not_json" | "empty_batch" | "batch_too_large"
  | "bad_record" | "bad_code" | "topic_mismatch";

export const REJECT_REASONS: RejectReason[] = [
  "bad_topic", "too_large", "not_json", "empty_batch", "batch_too_large", "bad_record", "bad_code", "topic_mismatch",
];

/** A result record as stored: the probe's record without the fields the collector does not keep. */
export type StoredRecord = Omit<ResultRecord, "address" | "tls" | "labels">;

const DAY_MS = 86_400_000;
const PHASES = ["dnsMs", "connectMs", "tlsMs", "sendMs", "firstByteMs", "receiveMs"] as const;

const isMs = (v: unknown): v is number => typeof v === "number" && v >= 0 && v <= DAY_MS;
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * Checks a record's shape field by field (hand-written rather than a schema library: this runs
 * for every message and is the collector's hot path). Returns what is wrong, or null.
 */
function shapeError(value: unknown): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "record: not an object";
  const r = value as Record<string, unknown>;
  if (r.v !== 1) return `v: expected 1, got ${JSON.stringify(r.v)}`;
  if (typeof r.id !== "string" || r.id.length === 0 || r.id.length > 300) return "id: expected 1–300 characters";
  if (typeof r.probe !== "string" || !ID_PATTERN.test(r.probe)) return "probe: not a valid id";
  if (typeof r.task !== "string" || !ID_PATTERN.test(r.task)) return "task: not a valid id";
  if (!isCount(r.ts)) return "ts: expected epoch milliseconds";
  if (typeof r.ok !== "boolean") return "ok: expected true or false";
  if (r.code !== null && !Number.isInteger(r.code)) return "code: expected a number or null";
  if (r.step !== null && !(isCount(r.step) && (r.step as number) <= 10_000)) return "step: expected an index or null";
  if (r.message !== null && !(typeof r.message === "string" && r.message.length <= 4096)) return "message: expected text or null";
  const t = r.timings as Record<string, unknown> | null;
  if (typeof t !== "object" || t === null) return "timings: expected an object";
  for (const phase of PHASES) if (t[phase] !== null && !isMs(t[phase])) return `timings.${phase}: expected ms or null`;
  if (!isMs(t.totalMs)) return "timings.totalMs: expected ms";
  if (!isCount(r.bytesSent) || !isCount(r.bytesReceived)) return "bytesSent/bytesReceived: expected byte counts";
  return null;
}

/** The stored fields only: extra fields a newer probe sends are not kept. */
function pick(r: StoredRecord): StoredRecord {
  const t = r.timings;
  return {
    v: 1, id: r.id, probe: r.probe, task: r.task, ts: r.ts, ok: r.ok, code: r.code, step: r.step, message: r.message,
    timings: { dnsMs: t.dnsMs, connectMs: t.connectMs, tlsMs: t.tlsMs, sendMs: t.sendMs, firstByteMs: t.firstByteMs,
      receiveMs: t.receiveMs, totalMs: t.totalMs },
    bytesSent: r.bytesSent, bytesReceived: r.bytesReceived,
  };
}

export interface Rejection {
  reason: RejectReason;
  detail: string;
}

export interface ParsedMessage {
  records: StoredRecord[];
  rejected: Rejection[];
}

const TOPIC = /^catprobe\/v1\/results\/([^/]+)\/([^/]+)$/;

function checkRecord(value: unknown, probe: string, task: string): StoredRecord | Rejection {
  const problem = shapeError(value);
  if (problem) return { reason: "bad_record", detail: problem };
  const r = pick(value as StoredRecord);
  const codeOk = r.ok ? r.code === null : r.code !== null && r.code >= 600 && r.code <= 609;
  if (!codeOk) return { reason: "bad_code", detail: `ok ${r.ok} with code ${r.code}` };
  if (r.probe !== probe || r.task !== task) {
    return { reason: "topic_mismatch", detail: `record ${r.probe}/${r.task} on topic ${probe}/${task}` };
  }
  return r;
}

/** Splits one message into the records to store and the reasons for what was rejected. */
export function parseMessage(topic: string, payload: Buffer): ParsedMessage {
  const reject = (reason: RejectReason, detail: string): ParsedMessage => ({ records: [], rejected: [{ reason, detail }] });
  const m = TOPIC.exec(topic);
  if (!m || !ID_PATTERN.test(m[1]) || !ID_PATTERN.test(m[2])) return reject("bad_topic", topic.slice(0, 200));
  if (payload.length > MAX_MESSAGE_BYTES) return reject("too_large", `${payload.length} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(payload.toString("utf8"));
  } catch (err) {
    return reject("not_json", (err as Error).message);
  }
  const items = Array.isArray(json) ? json : [json];
  if (items.length === 0) return reject("empty_batch", "[]");
  if (items.length > MAX_BATCH) return reject("batch_too_large", `${items.length} records`);
  const out: ParsedMessage = { records: [], rejected: [] };
  for (const item of items) {
    const checked = checkRecord(item, m[1], m[2]);
    if ("reason" in checked) out.rejected.push(checked);
    else out.records.push(checked);
  }
  return out;
}
