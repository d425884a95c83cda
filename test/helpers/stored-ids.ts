// The result ids in a collector's SQLite database, read through a connection of their own, so
// a test can compare them with what probes sent whatever the collector's store does inside.

import Database from "better-sqlite3";

export function storedIds(dbFile: string): string[] {
  const sqlite = new Database(dbFile, { readonly: true });
  try {
    return (sqlite.prepare("SELECT id FROM results").all() as { id: string }[]).map((r) => r.id);
  } finally {
    sqlite.close();
  }
}
