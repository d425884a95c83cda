// A real PostgreSQL server for tests: its own cluster (initdb) in a temp dir, started with
// pg_ctl on a free port on 127.0.0.1 only, its socket in that dir, stopped and deleted after.
// The machine's own PostgreSQL (5432) is never used. initdb refuses to run as root, so under
// root the cluster belongs to the `postgres` user. Fails with an install hint when missing.

import { spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/** The directory of initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/N/bin. */
function binDir(): string {
  const onPath = spawnSync("sh", ["-c", "command -v initdb"]).stdout.toString().trim();
  if (onPath) return join(onPath, "..");
  const versions = existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a)) : [];
  const dir = versions.map((v) => `/usr/lib/postgresql/${v}/bin`).find((d) => existsSync(join(d, "initdb")));
  if (!dir) throw new Error("PostgreSQL's initdb and pg_ctl not found (on PATH or in /usr/lib/postgresql/*/bin): apt-get install postgresql");
  return dir;
}

/** Who runs the server: this process, or `postgres` when this process is root. */
function owner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(spawnSync("id", [flag, "postgres"]).stdout.toString().trim());
  const uid = id("-u");
  if (!Number.isInteger(uid) || uid === 0) throw new Error("running as root, and there is no postgres user to run PostgreSQL as: apt-get install postgresql");
  return { uid, gid: id("-g") };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export class Postgres {
  private databases = 0;

  private constructor(private readonly bin: string, private readonly dir: string, readonly port: number,
    private readonly as: { uid: number; gid: number } | undefined) {}

  static async start(): Promise<Postgres> {
    const bin = binDir();
    const as = owner();
    const dir = mkdtempSync(join(tmpdir(), "catprobe-pg-"));
    if (as) chownSync(dir, as.uid, as.gid);
    const server = new Postgres(bin, dir, await freePort(), as);
    server.run("initdb", ["-D", join(dir, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
    // fsync off: a test cluster need not survive a power cut
    const options = `-p ${server.port} -c listen_addresses=127.0.0.1 -k ${dir} -F`;
    server.run("pg_ctl", ["start", "-w", "-t", "60", "-D", join(dir, "data"), "-l", join(dir, "log"), "-o", options]);
    return server;
  }

  private run(tool: string, args: string[]): void {
    const r = spawnSync(join(this.bin, tool), args, { cwd: this.dir, uid: this.as?.uid, gid: this.as?.gid, encoding: "utf8" });
    if (r.status !== 0) {
      const log = existsSync(join(this.dir, "log")) ? readFileSync(join(this.dir, "log"), "utf8").slice(-2000) : "";
      throw new Error(`${tool} ${args.join(" ")} failed (${r.error?.message ?? `status ${r.status}`}): ${r.stderr}${r.stdout}${log}`);
    }
  }

  /** The URL of a database on this server; `password` shows that logs leave it out (trust ignores it). */
  url(database: string, password?: string): string {
    return `postgres://postgres${password ? `:${password}` : ""}@127.0.0.1:${this.port}/${database}`;
  }

  /** A new empty database, for one test; resolves with its URL. */
  async database(): Promise<string> {
    const name = `t${++this.databases}`;
    const client = new pg.Client({ connectionString: this.url("postgres") });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${name}`);
    } finally {
      await client.end();
    }
    return this.url(name);
  }

  stop(): void {
    try {
      this.run("pg_ctl", ["stop", "-D", join(this.dir, "data"), "-m", "immediate"]);
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
