// The probe's durable outbox: every result is written here before it is published, and deleted
// only once the broker has acknowledged it. SQLite in WAL mode, so a probe killed at any moment
// keeps everything it had spooled. Bounded in bytes: when full, the oldest results are dropped
// and counted, and the count survives restarts. The bound is in UTF-8 bytes, exactly:
// `bytesOf` below is the one measure used on append, ack, eviction and reopen alike.

import Database from "better-sqlite3";

export interface SpoolEntry {
  seq: number;
  topic: string;
  payload: string;
  /** UTF-8 bytes of the payload */
  bytes: number;
}

/** UTF-8 bytes of a payload column: SQLite's length() of text counts characters, not bytes. */
const bytesOf = "length(CAST(payload AS BLOB))";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('dropped', 0);
`;

export class Spool {
  private readonly db: Database.Database;
  private bytesUsed: number;
  private count: number;
  private readonly insert: Database.Statement;
  private readonly oldest: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly dropOldest: (bytesNeeded: number) => void;

  /** `maxBytes` bounds the payload bytes kept (default 64 MiB). */
  constructor(file: string, readonly maxBytes = 64 << 20) {
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.exec(SCHEMA);
    const stats = this.db.prepare(`SELECT count(*) AS n, coalesce(sum(${bytesOf}), 0) AS bytes FROM entries`).get() as
      { n: number; bytes: number };
    this.count = stats.n;
    this.bytesUsed = stats.bytes;
    this.insert = this.db.prepare("INSERT INTO entries (topic, payload) VALUES (?, ?)");
    this.oldest = this.db.prepare(`SELECT seq, topic, payload, ${bytesOf} AS bytes FROM entries WHERE seq > ? ORDER BY seq LIMIT ?`);
    this.remove = this.db.prepare(`DELETE FROM entries WHERE seq = ? RETURNING ${bytesOf} AS bytes`);
    const victims = this.db.prepare(`SELECT seq, ${bytesOf} AS bytes FROM entries ORDER BY seq LIMIT 256`);
    const drop = this.db.prepare("DELETE FROM entries WHERE seq = ?");
    const countDropped = this.db.prepare("UPDATE counters SET value = value + ? WHERE name = 'dropped'");
    this.dropOldest = this.db.transaction((bytesNeeded: number) => {
      let dropped = 0;
      while (this.count > 0 && this.bytesUsed + bytesNeeded > this.maxBytes) {
        for (const v of victims.all() as { seq: number; bytes: number }[]) {
          if (this.bytesUsed + bytesNeeded <= this.maxBytes) break;
          drop.run(v.seq);
          this.bytesUsed -= v.bytes;
          this.count--;
          dropped++;
        }
      }
      countDropped.run(dropped);
    });
  }

  get size(): number {
    return this.count;
  }

  get bytes(): number {
    return this.bytesUsed;
  }

  /** Results dropped because the spool was full, over the spool's whole life. */
  get dropped(): number {
    return (this.db.prepare("SELECT value FROM counters WHERE name = 'dropped'").get() as { value: number }).value;
  }

  /** Keeps a message until ack(); makes room by dropping the oldest when the bound is reached. */
  append(topic: string, payload: string): void {
    const bytes = Buffer.byteLength(payload);
    if (bytes > this.maxBytes) throw new Error(`a ${bytes}-byte result cannot fit a ${this.maxBytes}-byte spool`);
    if (this.bytesUsed + bytes > this.maxBytes) this.dropOldest(bytes);
    this.insert.run(topic, payload);
    this.bytesUsed += bytes;
    this.count++;
  }

  /** Up to `limit` entries after `afterSeq`, oldest first. */
  next(afterSeq: number, limit: number): SpoolEntry[] {
    return this.oldest.all(afterSeq, limit) as SpoolEntry[];
  }

  /** The broker acknowledged it: delete it. Acknowledging twice is harmless. */
  ack(seq: number): void {
    const row = this.remove.get(seq) as { bytes: number } | undefined;
    if (!row) return;
    this.bytesUsed -= row.bytes;
    this.count--;
  }

  close(): void {
    this.db.close();
  }
}
