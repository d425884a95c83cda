// The fleet control plane as a user runs it, every part its own process: `catprobe collector`,
// three `catprobe probe --managed --label …`, and `catprobe tasks apply`. Each probe gets
// exactly the tasks assigned to it (read from its results in the collector); a new set reaches
// every probe, which reports its version; a removed task runs no more.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closedPort, tcpServer, type TestServer } from "../helpers/tcp.js";
import { until } from "../helpers/until.js";

const dir = mkdtempSync(join(tmpdir(), "catprobe-fleet-"));
const children: ChildProcess[] = [];
let echo: TestServer;
let api: string;
let broker: string;

const PROBES: Record<string, string[]> = {
  "edge-1": ["site=工厂-A"],
  "edge-2": ["site=工厂-A", "room=2"],
  "edge-3": ["site=Zürich"],
};

function start(args: string[]): ChildProcess {
  const child = spawn(process.execPath, ["bin/catprobe.js", ...args], {
    stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, XDG_STATE_HOME: join(dir, "state") },
  });
  children.push(child);
  return child;
}

/** Writes the task set `tasks` (id → assign) as files into a fresh directory, and applies it. */
function apply(name: string, tasks: Record<string, unknown>): { status: number | null; out: string } {
  const set = join(dir, name);
  mkdirSync(set);
  for (const [id, assign] of Object.entries(tasks)) {
    writeFileSync(join(set, `${id}.json`), JSON.stringify({
      id, target: { host: "127.0.0.1", port: echo.port }, count: 1_000_000, intervalMs: 100,
      steps: [{ send: "PING\r\n", verify: "partial", expect: "PING" }], ...(assign ? { assign } : {}),
    }));
  }
  const done = spawnSync(process.execPath, ["bin/catprobe.js", "tasks", "apply", set, "--collector", api], { encoding: "utf8" });
  return { status: done.status, out: done.stdout + done.stderr };
}

async function json<T>(path: string): Promise<T> {
  return (await fetch(`${api}${path}`)).json() as Promise<T>;
}

/** Results the collector holds for a probe and task. */
const runs = async (probe: string, task: string) =>
  (await json<{ total: number }>(`/api/top-errors?window=1h&probe=${probe}&task=${task}`)).total;

async function pairs(): Promise<Set<string>> {
  const found = new Set<string>();
  for (const probe of Object.keys(PROBES)) {
    for (const task of ["every", "site-a", "only-3", "new-1"]) if ((await runs(probe, task)) > 0) found.add(`${probe} ${task}`);
  }
  return found;
}

const appliedVersions = async () =>
  Object.fromEntries((await json<{ probe: string; appliedVersion: number | null }[]>("/api/probes")).map((p) => [p.probe, p.appliedVersion]));

beforeAll(async () => {
  echo = await tcpServer((sock) => sock.on("data", (d) => sock.write(d)));
  const [http, mqtt] = [await closedPort(), await closedPort()];
  api = `http://127.0.0.1:${http}`;
  broker = `mqtt://127.0.0.1:${mqtt}`;
  start(["collector", "--db", join(dir, "c.db"), "--http", `127.0.0.1:${http}`, "--mqtt-listen", `127.0.0.1:${mqtt}`]);
  await until(async () => (await fetch(`${api}/healthz`).then((r) => r.ok, () => false)), "the collector");
  for (const [probe, labels] of Object.entries(PROBES)) {
    start(["probe", "--managed", "--broker", broker, "--probe", probe, ...labels.flatMap((l) => ["--label", l])]);
  }
  await until(async () => Object.keys(await appliedVersions()).length === 3, "three probes online");
}, 60_000);

afterAll(async () => {
  for (const c of children) c.kill("SIGTERM");
  await Promise.all(children.map((c) => c.exitCode === null ? new Promise((r) => c.once("exit", r)) : null));
  await echo?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("a managed fleet", () => {
  it("runs exactly the tasks assigned to each probe, by label and by id", async () => {
    const first = apply("v1", { every: null, "site-a": { labels: { site: "工厂-A" } }, "only-3": { probes: ["edge-3"] } });
    expect(first.status, first.out).toBe(0);
    expect(first.out).toMatch(/^added: +every, only-3, site-a$/m);
    expect(first.out).toMatch(/^version 1$/m);
    const expected = ["edge-1 every", "edge-1 site-a", "edge-2 every", "edge-2 site-a", "edge-3 every", "edge-3 only-3"];
    await until(async () => (await pairs()).size === expected.length, "every assigned task running", 20_000);
    expect([...await pairs()].sort()).toEqual(expected);
    expect(await appliedVersions()).toEqual({ "edge-1": 1, "edge-2": 1, "edge-3": 1 });
  }, 60_000);

  it("takes a new set to every probe, which reports it; a removed task runs no more", async () => {
    const second = apply("v2", { every: null, "site-a": { labels: { site: "工厂-A" } }, "new-1": { probes: ["edge-1"] } });
    expect(second.status, second.out).toBe(0);
    expect(second.out).toMatch(/^removed: +only-3$/m);
    expect(second.out).toMatch(/^version 2$/m);
    await until(async () => Object.values(await appliedVersions()).every((v) => v === 2), "every probe on version 2", 10_000);
    await until(async () => (await runs("edge-1", "new-1")) >= 3, "the new task's runs");
    // Any run of only-3 in flight at the change has ended and been delivered long since (each
    // takes about a millisecond; edge-3's every-task has run twice more meanwhile).
    const every3 = await runs("edge-3", "every");
    await until(async () => (await runs("edge-3", "every")) >= every3 + 2, "edge-3 running on");
    const removed = await runs("edge-3", "only-3");
    await until(async () => (await runs("edge-3", "every")) >= every3 + 5, "five more runs of edge-3");
    expect(await runs("edge-3", "only-3")).toBe(removed);
    expect([...await pairs()].filter((p) => p.endsWith("new-1"))).toEqual(["edge-1 new-1"]);
  }, 60_000);
});
