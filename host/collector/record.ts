// Incoming result records: the shape the collector accepts (DESIGN.md "Result record"), and
// why a message was rejected. Unknown extra fields are allowed and not stored, so newer
// probes can add fields without being rejected by an older collector.

import { z } from "zod";
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

const ms = z.number().finite().min(0).max(86_400_000).nullable();
const id = z.string().regex(ID_PATTERN);

const recordSchema = z.object({
  v: z.literal(1),
  id: z.string().min(1).max(300),
  probe: id,
  task: id,
  ts: z.number().int().min(0).max(8.64e15),
  ok: z.boolean(),
  code: z.number().int().nullable(),
  step: z.number().int().min(0).max(10_000).nullable(),
  message: z.string().max(4096).nullable(),
  timings: z.object({
    dnsMs: ms, connectMs: ms, tlsMs: ms, sendMs: ms, firstByteMs: ms, receiveMs: ms,
    totalMs: z.number().finite().min(0).max(86_400_000),
  }),
  bytesSent: z.number().int().min(0),
  bytesReceived: z.number().int().min(0),
});

export type StoredRecord = z.output<typeof recordSchema>;

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
  const parsed = recordSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { reason: "bad_record", detail: `${issue.path.join(".") || "record"}: ${issue.message}` };
  }
  const r = parsed.data;
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
