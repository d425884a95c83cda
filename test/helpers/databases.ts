// The collector's two stores for tests that run on both: a new SQLite file, or a new database
// on a PostgreSQL server of this test file's own (test/helpers/postgres.ts), started at first
// use and stopped after the file's tests.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { Postgres } from "./postgres.js";

export const STORE_KINDS = ["sqlite", "postgres"] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

let server: Promise<Postgres> | undefined;
afterAll(async () => (await server)?.stop());

/** The PostgreSQL server of this test file. */
export const postgres = (): Promise<Postgres> => (server ??= Postgres.start());

/** A `--db` value for an empty database of this kind. */
export async function newDatabase(kind: StoreKind): Promise<string> {
  if (kind === "postgres") return (await postgres()).database();
  return join(mkdtempSync(join(tmpdir(), "catprobe-db-")), "c.db");
}
