// Shared by the exporter's tests: task directories, HTTP requests, the exposition text read
// back, free ports, and the external binaries (blackbox_exporter, Prometheus) the comparison
// tests need; a missing binary fails the test with the line that installs it.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

const made: string[] = [];

/** A fresh directory under the system's temporary directory; removeTempDirs() removes them all. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `catprobe-${prefix}-`));
  made.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Writes each task as DIR/<id>.json and returns DIR. */
export function taskDir(tasks: Record<string, unknown>[], dir = join(tempDir("exporter"), "tasks")): string {
  mkdirSync(dir, { recursive: true });
  for (const task of tasks) writeFileSync(join(dir, `${task.id as string}.json`), JSON.stringify(task, null, 2));
  return dir;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  ms: number;
}

/** A GET with node:http (fetch refuses to send a Host header of our choosing). */
export function get(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({
        status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), ms: performance.now() - started,
      }));
    });
    req.on("error", reject);
    req.end();
  });
}

export interface Series {
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** family name → its samples */
  samples: Map<string, Series[]>;
  help: Map<string, string>;
  type: Map<string, string>;
}

/** Reads the text format back (enough of it for these tests: no timestamps, simple labels). */
export function parseMetrics(text: string): Exposition {
  const out: Exposition = { samples: new Map(), help: new Map(), type: new Map() };
  for (const line of text.split("\n")) {
    if (!line) continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === "HELP" ? out.help : out.type).set(meta[2], meta[3]);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    const list = out.samples.get(m[1]) ?? [];
    list.push({ labels, value: Number(m[3]) });
    out.samples.set(m[1], list);
  }
  return out;
}

/** The value of a family with one sample (NaN when absent). */
export function value(e: Exposition, name: string): number {
  return e.samples.get(name)?.[0]?.value ?? NaN;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The binary, or an error that says how to install it: these tests never skip silently. */
export function requireBinary(path: string, aptPackage: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: install it with \`apt-get install -y ${aptPackage}\` (Debian/Ubuntu)`);
  return path;
}

export interface Child {
  process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts a process whose output is kept for error messages; stop() ends it (and only it). */
export function startChild(command: string, args: string[], options: { cwd?: string } = {}): Child {
  const child = spawn(command, args, { cwd: options.cwd ?? PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (c: Buffer) => { output = (output + c.toString()).slice(-20_000); });
  child.stderr!.on("data", (c: Buffer) => { output = (output + c.toString()).slice(-20_000); });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    process: child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** `catprobe exporter …` as a separate process, the way a user starts it. */
export function startExporterProcess(args: string[]): Child {
  return startChild(process.execPath, ["--import", "tsx", "cli/main.ts", "exporter", ...args]);
}

/** Polls until `url` answers (any status) or the child exits; bounded. */
export async function waitForHttp(url: string, child: Child, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (child.process.exitCode !== null) throw new Error(`exited (${child.process.exitCode}) before answering ${url}:\n${child.output()}`);
    try {
      await get(url);
      return;
    } catch {
      if (Date.now() > end) throw new Error(`no answer from ${url} within ${ms} ms:\n${child.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
