// Incoming result records: the shape the collector accepts (DESIGN.md "Result record"), and
// why a message was rejected. Unknown extra fields are allowed and not stored, so newer
// probes can add fields without being rejected by an older collector. A timing field a
// device does not measure may be absent: absent means null.

import { ID_PATTERN } from "./id.js";
import { LIMITS, MAX_BATCH, MAX_MESSAGE_BYTES, PHASES, TS_EARLIEST, tsLatest, type StoredRecord, type TlsFacts } from "./record.js";
import { parseResultTopic } from "./topics.js";

export type RejectReason =
  | "bad_topic" | "too_large" | "not_json" | "empty_batch" | "batch_too_large"
  | "bad_record" | "bad_code" | "topic_mismatch" | "bad_status";

export const REJECT_REASONS: RejectReason[] = [
  "bad_topic", "too_large", "not_json", "empty_batch", "batch_too_large", "bad_record", "bad_code", "topic_mismatch",
  "bad_status",
];

const DAY_MS = 86_400_000;

const isMs = (v: unknown): v is number => typeof v === "number" && v >= 0 && v <= DAY_MS;
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isText = (v: unknown, max: number): v is string => typeof v === "string" && v.length <= max;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A NUL or a surrogate: the one test most texts need (a surrogate may still be half of a pair). */
const SUSPECT = /[\u0000\uD800-\uDFFF]/;

/**
 * Why a text cannot be stored as it is, or null. PostgreSQL text refuses U+0000 (and would fail
 * every commit of the batch, for ever on re-delivery), and stores a lone surrogate as U+FFFD, so
 * the stored id would differ from the one acknowledged. ES2024's isWellFormed (Node 20) is only
 * asked when the cheap test matched.
 */
function textProblem(s: string): string | null {
  if (!SUSPECT.test(s)) return null;
  if (s.includes("\u0000")) return "contains U+0000";
  return (s as string & { isWellFormed(): boolean }).isWellFormed() ? null : "not well-formed Unicode (a lone surrogate)";
}

function labelsError(v: unknown): string | null {
  if (!isObject(v)) return "labels: expected an object of texts";
  const entries = Object.entries(v);
  if (entries.length > LIMITS.labels) return `labels: ${entries.length} labels, at most ${LIMITS.labels}`;
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > LIMITS.labelKey) return `labels: a key of 1–${LIMITS.labelKey} characters expected`;
    const keyProblem = textProblem(key);
    if (keyProblem) return `labels (a key): ${keyProblem}`;
    if (!isText(value, LIMITS.labelValue)) return `labels.${key.slice(0, 64)}: expected text of at most ${LIMITS.labelValue} characters`;
    const valueProblem = textProblem(value);
    if (valueProblem) return `labels.${key}: ${valueProblem}`;
  }
  return null;
}

function tlsError(v: unknown): string | null {
  if (!isObject(v)) return "tls: expected an object";
  for (const key of ["version", "subject", "issuer", "notAfter"] as const) {
    const text = v[key];
    if (text === undefined || text === null) continue;
    if (!isText(text, LIMITS.tlsText)) return `tls.${key}: expected text or null`;
    const problem = textProblem(text);
    if (problem) return `tls.${key}: ${problem}`;
  }
  const days = v.daysLeft;
  if (days !== undefined && days !== null && !(Number.isInteger(days) && Math.abs(days as number) <= 1e6)) {
    return "tls.daysLeft: expected whole days or null";
  }
  return null;
}

/**
 * Checks a record's shape field by field (hand-written rather than a schema library: this runs
 * for every message and is the collector's hot path). Returns what is wrong, or null.
 */
function shapeError(value: unknown, now: number): string | null {
  if (!isObject(value)) return "record: not an object";
  const r = value;
  if (r.v !== 1) return `v: expected 1, got ${JSON.stringify(r.v)}`;
  if (typeof r.id !== "string" || r.id.length === 0 || r.id.length > LIMITS.id) return `id: expected 1–${LIMITS.id} characters`;
  const idProblem = textProblem(r.id);
  if (idProblem) return `id: ${idProblem}`;
  if (typeof r.probe !== "string" || !ID_PATTERN.test(r.probe)) return "probe: not a valid id";
  if (typeof r.task !== "string" || !ID_PATTERN.test(r.task)) return "task: not a valid id";
  if (!isCount(r.ts) || r.ts < TS_EARLIEST || r.ts > tsLatest(now)) {
    return `ts: expected epoch milliseconds from 2020-01-01 to one day ahead, got ${String(r.ts).slice(0, 32)}`;
  }
  if (typeof r.ok !== "boolean") return "ok: expected true or false";
  if (r.code !== null && !Number.isInteger(r.code)) return "code: expected a number or null";
  if (r.step !== null && !(isCount(r.step) && (r.step as number) <= 10_000)) return "step: expected an index or null";
  if (r.message !== null) {
    if (!isText(r.message, LIMITS.message)) return `message: expected text of at most ${LIMITS.message} characters, or null`;
    const problem = textProblem(r.message);
    if (problem) return `message: ${problem}`;
  }
  const t = r.timings;
  if (!isObject(t)) return "timings: expected an object";
  for (const phase of PHASES) {
    if (t[phase] !== undefined && t[phase] !== null && !isMs(t[phase])) return `timings.${phase}: expected ms or null`;
  }
  if (!isMs(t.totalMs)) return "timings.totalMs: expected ms";
  if (!isCount(r.bytesSent) || !isCount(r.bytesReceived)) return "bytesSent/bytesReceived: expected byte counts";
  if (r.labels !== undefined) {
    const problem = labelsError(r.labels);
    if (problem) return problem;
  }
  if (r.tls !== undefined) return tlsError(r.tls);
  return null;
}

/** The stored fields only: extra fields a newer probe sends are not kept; absent timings are null. */
function pick(r: StoredRecord): StoredRecord {
  const t = r.timings;
  const out: StoredRecord = {
    v: 1, id: r.id, probe: r.probe, task: r.task, ts: r.ts, ok: r.ok, code: r.code, step: r.step, message: r.message,
    timings: { dnsMs: t.dnsMs ?? null, connectMs: t.connectMs ?? null, tlsMs: t.tlsMs ?? null, sendMs: t.sendMs ?? null,
      firstByteMs: t.firstByteMs ?? null, receiveMs: t.receiveMs ?? null, totalMs: t.totalMs },
    bytesSent: r.bytesSent, bytesReceived: r.bytesReceived,
  };
  if (r.labels) out.labels = r.labels;
  if (r.tls) out.tls = pickTls(r.tls);
  return out;
}

function pickTls(t: TlsFacts): TlsFacts {
  return { version: t.version ?? null, subject: t.subject ?? null, issuer: t.issuer ?? null,
    notAfter: t.notAfter ?? null, daysLeft: t.daysLeft ?? null };
}

export interface Rejection {
  reason: RejectReason;
  detail: string;
}

export interface ParsedMessage {
  records: StoredRecord[];
  rejected: Rejection[];
}

function checkRecord(value: unknown, probe: string, task: string, now: number): StoredRecord | Rejection {
  const problem = shapeError(value, now);
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
export function parseMessage(topic: string, payload: Buffer, now = Date.now()): ParsedMessage {
  const reject = (reason: RejectReason, detail: string): ParsedMessage => ({ records: [], rejected: [{ reason, detail }] });
  const where = parseResultTopic(topic);
  if (!where) return reject("bad_topic", topic.slice(0, 200));
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
    const checked = checkRecord(item, where.probe, where.task, now);
    if ("reason" in checked) out.rejected.push(checked);
    else out.records.push(checked);
  }
  return out;
}
