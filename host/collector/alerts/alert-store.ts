// The alert engine's tables in the collector's database (SqlDb: the same statements on SQLite
// and PostgreSQL; BIGINT epoch milliseconds): each alert instance's state, and the outbox of
// notifications, one row per notification and webhook. A state change and the notifications it
// causes are written in one transaction, so after a crash either both are there or neither is;
// a notification is marked sent only after its webhook answered 2xx (webhook-sender.ts).

import type { SqlDb } from "../db/sql.js";
import type { AlertView } from "./notifications.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS alert_state (
    fingerprint TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    status TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT,
    last_notified BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS alert_outbox (
    id TEXT PRIMARY KEY,
    webhook TEXT NOT NULL,
    rule TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    next_at BIGINT NOT NULL,
    sent_at BIGINT,
    failed_at BIGINT,
    last_error TEXT
  )`,
  "CREATE INDEX IF NOT EXISTS alert_outbox_head ON alert_outbox (webhook, sent_at, failed_at, created_at)",
  // which collector evaluates and sends, when several share one PostgreSQL database
  "CREATE TABLE IF NOT EXISTS alert_lease (one INTEGER PRIMARY KEY, owner TEXT NOT NULL, expires_at BIGINT NOT NULL)",
];

export interface AlertState extends AlertView {
  rule: string;
  lastNotified: number;
}

export interface OutboxEntry {
  id: string;
  webhook: string;
  rule: string;
  status: "firing" | "resolved";
  body: string;
  createdAt: number;
  attempts: number;
  nextAt: number;
}

interface StateRow {
  fingerprint: string; rule: string; labels: string; annotations: string; status: "firing" | "resolved";
  starts_at: number | string; ends_at: number | string | null; last_notified: number | string;
}

interface OutboxRow {
  id: string; webhook: string; rule: string; status: "firing" | "resolved"; body: string;
  created_at: number | string; attempts: number | string; next_at: number | string;
}

const fromState = (r: StateRow): AlertState => ({
  fingerprint: r.fingerprint, rule: r.rule, labels: JSON.parse(r.labels), annotations: JSON.parse(r.annotations),
  status: r.status, startsAt: Number(r.starts_at), endsAt: r.ends_at === null ? null : Number(r.ends_at),
  lastNotified: Number(r.last_notified),
});

const fromOutbox = (r: OutboxRow): OutboxEntry => ({
  id: r.id, webhook: r.webhook, rule: r.rule, status: r.status, body: r.body, createdAt: Number(r.created_at),
  attempts: Number(r.attempts), nextAt: Number(r.next_at),
});

const PENDING = "sent_at IS NULL AND failed_at IS NULL";
/** PostgreSQL's clock in epoch milliseconds, at the moment the statement reads it. */
const DB_NOW = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

export class AlertStore {
  constructor(private readonly db: SqlDb) {}

  /** Creates the tables if missing. */
  async init(): Promise<void> {
    for (const statement of SCHEMA) await this.db.run(statement);
  }

  /** Every alert instance firing now. */
  async firing(): Promise<AlertState[]> {
    return (await this.db.all<StateRow>("SELECT * FROM alert_state WHERE status = 'firing'")).map(fromState);
  }

  /** Firing alerts, and those resolved at or after `since`: firing first, newest first. */
  async list(since: number): Promise<AlertState[]> {
    const rows = await this.db.all<StateRow>(`SELECT * FROM alert_state WHERE status = 'firing' OR ends_at >= ?
      ORDER BY CASE WHEN status = 'firing' THEN 0 ELSE 1 END, starts_at DESC, fingerprint`, [since]);
    return rows.map(fromState);
  }

  /**
   * One evaluation's changes in one transaction: the states written, the notifications queued,
   * and, when the outbox then holds more than `maxPending`, its oldest entries dropped. Resolves
   * with the entries dropped. Given `owner` (fencing, PostgreSQL), the transaction first locks
   * the lease and writes nothing when `owner` no longer holds it unexpired: then resolves null.
   */
  async commit(states: AlertState[], entries: OutboxEntry[], maxPending: number, now: number, owner?: string): Promise<OutboxEntry[] | null> {
    if (!states.length && !entries.length) return [];
    return this.db.transaction(async (tx) => {
      if (owner !== undefined) {
        const [at, p] = this.clock(now);
        const lock = this.db.dialect === "postgres" ? " FOR UPDATE" : "";
        if (!(await tx.get(`SELECT owner FROM alert_lease WHERE owner = ? AND expires_at > ${at}${lock}`, [owner, ...p]))) return null;
      }
      for (const s of states) {
        await tx.run(`INSERT INTO alert_state (fingerprint, rule, labels, annotations, status, starts_at, ends_at, last_notified, updated_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (fingerprint) DO UPDATE SET rule = excluded.rule, labels = excluded.labels,
            annotations = excluded.annotations, status = excluded.status, starts_at = excluded.starts_at,
            ends_at = excluded.ends_at, last_notified = excluded.last_notified, updated_at = excluded.updated_at`,
        [s.fingerprint, s.rule, JSON.stringify(s.labels), JSON.stringify(s.annotations), s.status, s.startsAt, s.endsAt,
          s.lastNotified, now]);
      }
      for (const e of entries) {
        await tx.run(`INSERT INTO alert_outbox (id, webhook, rule, status, body, created_at, attempts, next_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [e.id, e.webhook, e.rule, e.status, e.body, e.createdAt, e.attempts, e.nextAt]);
      }
      if (!entries.length) return [];
      const pending = Number((await tx.get<{ n: number | string }>(`SELECT count(*) AS n FROM alert_outbox WHERE ${PENDING}`))?.n ?? 0);
      if (pending <= maxPending) return [];
      const dropped = (await tx.all<OutboxRow>(`SELECT * FROM alert_outbox WHERE ${PENDING} ORDER BY created_at, id LIMIT ?`,
        [pending - maxPending])).map(fromOutbox);
      for (const d of dropped) {
        await tx.run("UPDATE alert_outbox SET failed_at = ?, last_error = ? WHERE id = ?", [now, "dropped: the outbox was full", d.id]);
      }
      return dropped;
    });
  }

  /** The oldest notification not yet delivered to `webhook`, or undefined. */
  async head(webhook: string): Promise<OutboxEntry | undefined> {
    const row = await this.db.get<OutboxRow>(
      `SELECT * FROM alert_outbox WHERE webhook = ? AND ${PENDING} ORDER BY created_at, id LIMIT 1`, [webhook]);
    return row && fromOutbox(row);
  }

  /** The webhooks that have notifications waiting. */
  async pendingWebhooks(): Promise<string[]> {
    return (await this.db.all<{ webhook: string }>(`SELECT DISTINCT webhook FROM alert_outbox WHERE ${PENDING}`)).map((r) => r.webhook);
  }

  async pendingCount(): Promise<number> {
    return Number((await this.db.get<{ n: number | string }>(`SELECT count(*) AS n FROM alert_outbox WHERE ${PENDING}`))?.n ?? 0);
  }

  // Each mark in a transaction of its own: on SQLite's one connection a bare statement would run
  // inside whatever transaction is open then, and be undone with it.
  async markSent(id: string, now: number): Promise<void> {
    await this.write("UPDATE alert_outbox SET sent_at = ?, attempts = attempts + 1 WHERE id = ?", [now, id]);
  }

  async markRetry(id: string, attempts: number, nextAt: number, error: string): Promise<void> {
    await this.write("UPDATE alert_outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?", [attempts, nextAt, error, id]);
  }

  async markFailed(id: string, attempts: number, now: number, error: string): Promise<void> {
    await this.write("UPDATE alert_outbox SET attempts = ?, failed_at = ?, last_error = ? WHERE id = ?", [attempts, now, error, id]);
  }

  /**
   * The clock the lease is kept by, as SQL and its parameters: on PostgreSQL the database's own,
   * so that collectors whose clocks disagree still agree on who holds it; on SQLite (one
   * collector per file) the caller's `now`.
   */
  private clock(now: number): [string, number[]] {
    return this.db.dialect === "postgres" ? [DB_NOW, []] : ["?", [now]];
  }

  /**
   * Takes or renews the lease of the alert engine for `owner` for `ttlMs` from now (see clock):
   * it succeeds when nobody holds it, `owner` holds it, or the holder let it expire.
   */
  async lease(owner: string, now: number, ttlMs: number): Promise<boolean> {
    const [at, p] = this.clock(now);
    const changed = await this.db.run(`INSERT INTO alert_lease (one, owner, expires_at) VALUES (1, ?, ${at} + ?)
      ON CONFLICT (one) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
      WHERE alert_lease.owner = excluded.owner OR alert_lease.expires_at < ${at}`, [owner, ...p, ttlMs, ...p]);
    return changed > 0;
  }

  /** Gives the lease up, so that another collector takes over at once. */
  async release(owner: string): Promise<void> {
    await this.db.run("DELETE FROM alert_lease WHERE owner = ?", [owner]);
  }

  private write(sql: string, params: unknown[]): Promise<number> {
    return this.db.transaction((tx) => tx.run(sql, params));
  }

  /** Forgets delivered or abandoned notifications and resolved alerts older than `before`. */
  async prune(before: number): Promise<void> {
    await this.db.run("DELETE FROM alert_outbox WHERE (sent_at IS NOT NULL AND sent_at < ?) OR (failed_at IS NOT NULL AND failed_at < ?)", [before, before]);
    await this.db.run("DELETE FROM alert_state WHERE status = 'resolved' AND ends_at < ?", [before]);
  }
}
