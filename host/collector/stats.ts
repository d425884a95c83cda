// Statistics over a time window: the top five error types (DESIGN.md "Collector HTTP API"),
// success rates, per-task and per-probe tables, phase averages, a success-rate series.
// Counts come from the hour and minute tables for whole hours and minutes, and from raw results
// for the partial minutes at the window's edges, so every answer is exact. A label filter
// selects probes, so it reads the minute table (kept per probe) instead of the hour table: a
// long window with `label=` costs one row per minute, task, probe and code in it.

import { errorCodeInfo, type ErrorCode } from "../codes.js";
import { PHASES, phaseColumn } from "../wire/record.js";
import { oneOf } from "./db/dialect.js";
import type { Dialect } from "./db/sql.js";
import { HOUR_MS, MINUTE_MS, type Store } from "./store.js";

export interface Window {
  from: number;
  to: number;
}

export interface Filter extends Window {
  task?: string;
  probe?: string;
  /** only these probes (those whose last reported labels include a `label=` pair) */
  probes?: string[];
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export class QueryError extends Error {}

/** The longest span a query may cover, `window` or `from`/`to`. */
export const MAX_WINDOW_DAYS = 400;

/** `window=1h` (s, m, h, d units), or `from`/`to` epoch ms; `to` defaults to now. */
export function parseWindow(query: URLSearchParams, now = Date.now()): Window {
  const from = query.get("from");
  const to = query.get("to");
  if (from !== null || to !== null) {
    const f = epochMs(from);
    const t = to === null ? now : epochMs(to);
    if (f === null || t === null || t <= f) {
      throw new QueryError(`from/to must be epoch milliseconds in decimal digits with from < to (got from=${from} to=${to})`);
    }
    return bounded({ from: f, to: t }, `from=${from} to=${to ?? "now"}`);
  }
  const window = query.get("window") ?? "1h";
  const m = /^(\d{1,6})(s|m|h|d)$/.exec(window);
  if (!m || Number(m[1]) === 0) throw new QueryError(`window must look like 5m, 1h, 24h or 7d (got "${window}")`);
  return bounded({ from: Math.max(0, now - Number(m[1]) * UNITS[m[2]]), to: now }, `"${window}"`);
}

/** Decimal digits only: Number() also takes "0x10", "1e3", " 5" and "". */
function epochMs(text: string | null): number | null {
  return text !== null && /^\d{1,15}$/.test(text) ? Number(text) : null;
}

function bounded(w: Window, got: string): Window {
  if (w.to - w.from > MAX_WINDOW_DAYS * UNITS.d) throw new QueryError(`a window spans at most ${MAX_WINDOW_DAYS} days (got ${got})`);
  return w;
}

type Range = [number, number];

/**
 * The window as whole hours (read from the hour table), whole minutes (the minute table) and
 * the partial minutes at its edges (raw results). Hours are used only without a probe or
 * label filter.
 */
function split({ from, to }: Window, useHours: boolean): { hours: Range[]; minutes: Range[]; raw: Range[] } {
  const out = { hours: [] as Range[], minutes: [] as Range[], raw: [] as Range[] };
  const mFrom = Math.ceil(from / MINUTE_MS) * MINUTE_MS;
  const mTo = Math.floor(to / MINUTE_MS) * MINUTE_MS;
  if (mFrom >= mTo) {
    out.raw.push([from, to]);
    return out;
  }
  if (from < mFrom) out.raw.push([from, mFrom]);
  if (mTo < to) out.raw.push([mTo, to]);
  const hFrom = Math.ceil(mFrom / HOUR_MS) * HOUR_MS;
  const hTo = Math.floor(mTo / HOUR_MS) * HOUR_MS;
  if (!useHours || hFrom >= hTo) {
    out.minutes.push([mFrom, mTo]);
    return out;
  }
  out.hours.push([hFrom, hTo]);
  if (mFrom < hFrom) out.minutes.push([mFrom, hFrom]);
  if (hTo < mTo) out.minutes.push([hTo, mTo]);
  return out;
}

/** The SQL conditions (" AND …") of a filter's task, probe and probes; their values go to `params`. */
export function filters(f: Filter, params: unknown[], dialect: Dialect): string {
  let sql = "";
  if (f.task) { sql += " AND task = ?"; params.push(f.task); }
  if (f.probe) { sql += " AND probe = ?"; params.push(f.probe); }
  if (f.probes) sql += ` AND ${oneOf(dialect, "probe", f.probes, params)}`;
  return sql;
}

export interface GroupCount {
  key: string;
  code: number; // 0 for success
  n: number;
}

/** Counts per code (0 = success), optionally grouped by task or probe, exact over the window. */
export function counts(store: Store, f: Filter, groupBy: "none" | "task" | "probe" = "none"): Promise<GroupCount[]> {
  const key = groupBy === "none" ? "''" : groupBy;
  const parts: string[] = [];
  const params: unknown[] = [];
  const { hours, minutes, raw } = split(f, !f.probe && !f.probes && groupBy !== "probe");
  for (const [a, b] of hours) {
    params.push(a / HOUR_MS, b / HOUR_MS);
    parts.push(`SELECT ${key} AS key, code, n FROM hours WHERE hour >= ? AND hour < ?${filters(f, params, store.db.dialect)}`);
  }
  for (const [a, b] of minutes) {
    params.push(a / MINUTE_MS, b / MINUTE_MS);
    parts.push(`SELECT ${key} AS key, code, n FROM minutes WHERE minute >= ? AND minute < ?${filters(f, params, store.db.dialect)}`);
  }
  for (const [a, b] of raw) {
    params.push(a, b);
    parts.push(`SELECT ${key} AS key, coalesce(code, 0) AS code, 1 AS n FROM results WHERE ts >= ? AND ts < ?${filters(f, params, store.db.dialect)}`);
  }
  // the subquery's alias: PostgreSQL requires one
  const sql = `SELECT key, code, sum(n) AS n FROM (${parts.join(" UNION ALL ")}) AS counted GROUP BY key, code`;
  return store.db.all<GroupCount>(sql, params);
}

export interface TopError {
  code: ErrorCode;
  definition: string;
  count: number;
  shareOfFailures: number;
  shareOfResults: number;
}

export interface TopErrors extends Window {
  total: number;
  failed: number;
  top: TopError[];
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

/** Failure counts by code, out of `total` results, as at most five entries: by count, then code. */
export function rankTop(byCode: Map<number, number>, total: number): Omit<TopErrors, "from" | "to"> {
  const failed = [...byCode.values()].reduce((a, b) => a + b, 0);
  const top = [...byCode].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 5).map(([code, count]) => ({
    code: code as ErrorCode,
    definition: errorCodeInfo(code as ErrorCode).definition,
    count,
    shareOfFailures: round4(count / failed),
    shareOfResults: round4(count / total),
  }));
  return { total, failed, top };
}

/** The top five error types of a window (DESIGN.md "Collector HTTP API"). */
export async function topErrors(store: Store, f: Filter): Promise<TopErrors> {
  let total = 0;
  const byCode = new Map<number, number>();
  for (const { code, n } of await counts(store, f)) {
    total += n;
    if (code !== 0) byCode.set(code, (byCode.get(code) ?? 0) + n);
  }
  return { from: f.from, to: f.to, ...rankTop(byCode, total) };
}

interface Row { total: number; failed: number; byCode: Map<number, number> }

function tally(rows: GroupCount[]): Map<string, Row> {
  const out = new Map<string, Row>();
  for (const { key, code, n } of rows) {
    let row = out.get(key);
    if (!row) out.set(key, (row = { total: 0, failed: 0, byCode: new Map() }));
    row.total += n;
    if (code !== 0) {
      row.failed += n;
      row.byCode.set(code, (row.byCode.get(code) ?? 0) + n);
    }
  }
  return out;
}

const rate = (total: number, failed: number) => (total ? round4((total - failed) / total) : null);

function mostFrequent(byCode: Map<number, number>): number | null {
  let best: [number, number] | null = null;
  for (const [code, n] of byCode) if (!best || n > best[1] || (n === best[1] && code < best[0])) best = [code, n];
  return best ? best[0] : null;
}

const COLUMNS = Object.fromEntries([...PHASES, "totalMs" as const].map((p) => [p, phaseColumn(p)]));

/** Series bucket: about 60 points per window, whole minutes at least. */
function bucketMinutes(f: Window): number {
  return Math.max(1, Math.ceil((f.to - f.from) / MINUTE_MS / 60));
}

export async function summary(store: Store, f: Filter) {
  const params: unknown[] = [f.from, f.to];
  const where = `ts >= ? AND ts < ?${filters(f, params, store.db.dialect)}`;
  // independent reads: on PostgreSQL they run on several connections at once
  const [overallRows, taskRows, probeRows, avgs, perTaskRows, seriesRows, allTaskRows] = await Promise.all([
    counts(store, f), counts(store, f, "task"), counts(store, f, "probe"),
    store.db.get<Record<string, number | null>>(`SELECT ${Object.values(COLUMNS).map((c) => `avg(${c}) AS ${c}`).join(", ")}
      FROM results WHERE ${where}`, params),
    store.db.all<{ task: string; avg: number }>(`SELECT task, avg(total_ms) AS avg FROM results WHERE ${where} GROUP BY task`, params),
    seriesQuery(store, f, bucketMinutes(f)),
    counts(store, { ...f, task: undefined }, "task"),
  ]);
  const overall = tally(overallRows).get("") ?? { total: 0, failed: 0, byCode: new Map() };
  const tasks = tally(taskRows);
  const probes = tally(probeRows);
  const perTask = new Map(perTaskRows.map((r) => [r.task, r.avg]));
  const round = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);
  const allTasks = tally(allTaskRows);
  return {
    from: f.from,
    to: f.to,
    total: overall.total,
    failed: overall.failed,
    successRate: rate(overall.total, overall.failed),
    phases: Object.fromEntries(Object.entries(COLUMNS).map(([name, col]) => [name, round(avgs?.[col] ?? null)])),
    tasks: [...tasks].sort((a, b) => a[0].localeCompare(b[0])).map(([task, r]) => ({
      task, total: r.total, failed: r.failed, successRate: rate(r.total, r.failed),
      topCode: mostFrequent(r.byCode), avgTotalMs: round(perTask.get(task) ?? null),
    })),
    probes: [...probes].sort((a, b) => a[0].localeCompare(b[0])).map(([probe, r]) => ({
      probe, total: r.total, failed: r.failed, successRate: rate(r.total, r.failed), topCode: mostFrequent(r.byCode),
    })),
    series: seriesRows,
    taskIds: [...allTasks.keys()].sort(),
  };
}

async function seriesQuery(store: Store, f: Filter, bucket: number) {
  const params: unknown[] = [bucket, bucket, Math.floor(f.from / MINUTE_MS), Math.ceil(f.to / MINUTE_MS)];
  const sql = `SELECT (minute / ?) * ? AS b, sum(n) AS total, sum(CASE WHEN code != 0 THEN n ELSE 0 END) AS failed
    FROM minutes WHERE minute >= ? AND minute < ?${filters(f, params, store.db.dialect)} GROUP BY b ORDER BY b`;
  return (await store.db.all<{ b: number; total: number; failed: number }>(sql, params))
    .map((r) => ({ t: r.b * MINUTE_MS, total: r.total, failed: r.failed }));
}

