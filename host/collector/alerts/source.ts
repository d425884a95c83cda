// The alert evaluator's AlertSource on the collector's database (SqlDb, SQLite or PostgreSQL):
// counts from the `minutes` table for the window's whole minutes and from raw `results` for the
// partial minutes at its edges (exact, as stats.ts counts), probe states from `probes`, and the
// newest TLS facts per task and probe from `results.tls`. Plain SQL both dialects run; label
// scopes are applied by the evaluator, so no array parameter is needed.

import type { SqlDb } from "../db/sql.js";
import type { TlsFacts } from "../../wire/record.js";
import type { AlertSource, CountRow, ProbeRow, Scope, TlsRow } from "./evaluate.js";

const MINUTE_MS = 60_000;

function where(scope: Scope, params: unknown[]): string {
  let sql = "";
  if (scope.task) { sql += " AND task = ?"; params.push(scope.task); }
  if (scope.probe) { sql += " AND probe = ?"; params.push(scope.probe); }
  return sql;
}

export class SqlAlertSource implements AlertSource {
  constructor(private readonly db: SqlDb) {}

  async counts(from: number, to: number, scope: Scope): Promise<CountRow[]> {
    const mFrom = Math.ceil(from / MINUTE_MS) * MINUTE_MS;
    const mTo = Math.floor(to / MINUTE_MS) * MINUTE_MS;
    const raw: [number, number][] = mFrom >= mTo ? [[from, to]] : [[from, mFrom], [mTo, to]];
    const parts: string[] = [];
    const params: unknown[] = [];
    if (mFrom < mTo) {
      params.push(mFrom / MINUTE_MS, mTo / MINUTE_MS);
      parts.push(`SELECT task, probe, code, n FROM minutes WHERE minute >= ? AND minute < ?${where(scope, params)}`);
    }
    for (const [a, b] of raw) {
      if (a >= b) continue;
      params.push(a, b);
      parts.push(`SELECT task, probe, coalesce(code, 0) AS code, 1 AS n FROM results WHERE ts >= ? AND ts < ?${where(scope, params)}`);
    }
    const rows = await this.db.all<{ task: string; probe: string; code: number | string; n: number | string }>(
      `SELECT task, probe, code, sum(n) AS n FROM (${parts.join(" UNION ALL ")}) AS w GROUP BY task, probe, code`, params);
    return rows.map((r) => ({ task: r.task, probe: r.probe, code: Number(r.code), n: Number(r.n) }));
  }

  async probes(): Promise<ProbeRow[]> {
    const rows = await this.db.all<{ probe: string; state: "online" | "offline"; labels: unknown; last_seen: number | string }>(
      "SELECT probe, state, labels, last_seen FROM probes");
    return rows.map((r) => ({ probe: r.probe, state: r.state, labels: parseObject(r.labels), lastSeen: Number(r.last_seen) }));
  }

  async latestTls(from: number, to: number, scope: Scope): Promise<TlsRow[]> {
    const params: unknown[] = [from, to];
    const inner = `SELECT task, probe, max(ts) AS ts FROM results WHERE ts >= ? AND ts < ? AND tls IS NOT NULL${where(scope, params)} GROUP BY task, probe`;
    const rows = await this.db.all<{ task: string; probe: string; ts: number | string; tls: unknown }>(
      `SELECT r.task, r.probe, r.ts, r.tls FROM results r JOIN (${inner}) m
        ON r.task = m.task AND r.probe = m.probe AND r.ts = m.ts WHERE r.tls IS NOT NULL`, params);
    const seen = new Set<string>(); // two runs of one task and probe in the same millisecond: the first
    const out: TlsRow[] = [];
    for (const r of rows) {
      const key = `${r.task}\u0000${r.probe}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const tls = parseObject(r.tls) as unknown as TlsFacts;
      out.push({ task: r.task, probe: r.probe, ts: Number(r.ts), tls: { version: tls.version ?? null, subject: tls.subject ?? null,
        issuer: tls.issuer ?? null, notAfter: tls.notAfter ?? null, daysLeft: tls.daysLeft ?? null } });
    }
    return out;
  }
}

/** A JSON column: text on SQLite, text or already parsed (json/jsonb) on PostgreSQL. */
function parseObject(text: unknown): Record<string, string> {
  try {
    const v = typeof text === "string" ? JSON.parse(text) : text ?? {};
    return v && typeof v === "object" && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}
