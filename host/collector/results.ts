// `GET /api/results` (DESIGN.md "Fleet control plane"): the runs of a window, newest first, so
// that failures can be read with their messages.

import { PHASES, phaseColumn, type StoredRecord } from "../wire/record.js";
import { QueryError, filters, type Filter } from "./stats.js";
import type { Store } from "./store.js";

/** Rows one answer holds at most. */
export const MAX_RESULTS = 1000;
const DEFAULT_RESULTS = 100;

/** A code filter: one code, every failure, or successes only. */
export type CodeFilter = number | "failed" | "ok";

/** `code=` (600–609, `failed` or `ok`) and `limit=` (1–MAX_RESULTS, default 100) of a query. */
export function resultsQuery(query: URLSearchParams): { code?: CodeFilter; limit: number } {
  const code = query.get("code");
  const limit = query.get("limit");
  if (code !== null && !/^(60\d|failed|ok)$/.test(code)) throw new QueryError(`code must be 600–609, failed or ok (got "${code.slice(0, 40)}")`);
  if (limit !== null && !(/^\d{1,4}$/.test(limit) && Number(limit) >= 1 && Number(limit) <= MAX_RESULTS)) {
    throw new QueryError(`limit must be 1–${MAX_RESULTS} (got "${limit.slice(0, 40)}")`);
  }
  return {
    code: code === null ? undefined : code === "failed" || code === "ok" ? code : Number(code),
    limit: limit === null ? DEFAULT_RESULTS : Number(limit),
  };
}

interface Row {
  id: string; probe: string; task: string; ts: number; code: number | null; step: number | null; message: string | null;
  total_ms: number; bytes_sent: number; bytes_received: number; labels: string | null; tls: string | null;
  [phase: string]: unknown;
}

function toRecord(r: Row): StoredRecord {
  const out: StoredRecord = {
    v: 1, id: r.id, probe: r.probe, task: r.task, ts: r.ts, ok: r.code === null, code: r.code as StoredRecord["code"],
    step: r.step, message: r.message,
    timings: { ...Object.fromEntries(PHASES.map((p) => [p, r[phaseColumn(p)] as number | null])), totalMs: r.total_ms } as StoredRecord["timings"],
    bytesSent: r.bytes_sent, bytesReceived: r.bytes_received,
  };
  if (r.labels) out.labels = JSON.parse(r.labels);
  if (r.tls) out.tls = JSON.parse(r.tls);
  return out;
}

/** The newest `limit` results of the window that pass the filters, newest first. */
export async function listResults(store: Store, f: Filter, code: CodeFilter | undefined, limit: number): Promise<StoredRecord[]> {
  const params: unknown[] = [f.from, f.to];
  let sql = `SELECT * FROM results WHERE ts >= ? AND ts < ?${filters(f, params, store.db.dialect)}`;
  if (code === "ok") sql += " AND code IS NULL";
  else if (code === "failed") sql += " AND code IS NOT NULL";
  else if (code !== undefined) { sql += " AND code = ?"; params.push(code); }
  params.push(limit);
  return (await store.db.all<Row>(`${sql} ORDER BY ts DESC, id DESC LIMIT ?`, params)).map(toRecord);
}
