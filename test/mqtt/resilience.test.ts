// Nothing lost: a real Mosquitto is stopped and restarted while a probe publishes, a probe is
// SIGKILLed with a spool full of undelivered results and restarted, a probe's bounded spool
// overflows and reports what it dropped, and a collector is SIGKILLed and restarted. Each
// time the collector's results are compared, id by id, with what the probes produced.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, mkdirSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { closedPort } from "../helpers/tcp.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { until } from "../helpers/until.js";

const dir = mkdtempSync(join(tmpdir(), "catprobe-resilience-"));
let mosquitto: Mosquitto;
let collector: Collector;
let refusedPort: number;

beforeAll(async () => {
  refusedPort = await closedPort();
  mosquitto = await Mosquitto.start();
  collector = await startCollector({ broker: mosquitto.url, http: "127.0.0.1:0", db: join(dir, "collector.db") });
});
afterAll(async () => {
  await collector?.close();
  await mosquitto?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A task directory: `count` quick runs (a refused connect, 601) `intervalMs` apart. */
function tasks(name: string, count: number, intervalMs: number): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, "refused.json"), JSON.stringify({
    id: "refused", target: { host: "127.0.0.1", port: refusedPort }, count, intervalMs, steps: [{ verify: "none" }],
  }));
  return d;
}

interface ProbeProcess { child: ChildProcess; ids: string[]; exited: Promise<number | null> }

/** A real probe process; each result's id is printed (after it was spooled). */
function startProbe(taskDir: string, probe: string, spool: string, extra: string[] = []): ProbeProcess {
  const child = spawn(process.execPath, ["bin/catprobe.js", "probe", taskDir, "--broker", mosquitto.url,
    "--probe", probe, "--spool", spool, "--once", "--json", ...extra], { stdio: ["ignore", "pipe", "pipe"] });
  const ids: string[] = [];
  let buffered = "";
  child.stdout!.on("data", (d) => {
    buffered += d;
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    for (const line of lines) if (line) ids.push(JSON.parse(line).id);
  });
  child.stderr!.resume();
  return { child, ids, exited: once(child, "exit").then(([code]) => code as number | null) };
}

function storedIds(probe: string): Set<string> {
  const rows = collector.store.db.prepare("SELECT id FROM results WHERE probe = ?").all(probe) as { id: string }[];
  return new Set(rows.map((r) => r.id));
}

function spooledIds(spool: string): string[] {
  const db = new Database(spool, { readonly: true });
  const rows = db.prepare("SELECT payload FROM entries").all() as { payload: string }[];
  db.close();
  return rows.map((r) => JSON.parse(r.payload).id);
}

describe("nothing is lost", () => {
  it("while the broker is stopped and restarted twice during publishing", async () => {
    const probe = startProbe(tasks("restarts", 150, 15), "edge-restarts", join(dir, "restarts.db"));
    for (let i = 0; i < 2; i++) {
      await sleep(500);
      await mosquitto.stop();
      await sleep(400);
      await mosquitto.restart();
    }
    expect(await probe.exited).toBe(0);
    expect(probe.ids).toHaveLength(150);
    await until(() => storedIds("edge-restarts").size === 150, "all 150 results");
    expect(storedIds("edge-restarts")).toEqual(new Set(probe.ids));
  }, 60_000);

  it("when a probe with undelivered results is SIGKILLed and restarted", async () => {
    const spool = join(dir, "killed.db");
    await mosquitto.stop();
    const first = startProbe(tasks("killed", 80, 5), "edge-killed", spool);
    await until(() => first.ids.length >= 40, "40 results spooled");
    first.child.kill("SIGKILL");
    await first.exited;
    // Produced before the kill: what it printed, and what it spooled but had not printed yet.
    const produced = new Set([...first.ids, ...spooledIds(spool)]);
    expect(produced.size).toBeGreaterThanOrEqual(40);
    await mosquitto.restart();
    const second = startProbe(tasks("killed-again", 10, 5), "edge-killed", spool);
    expect(await second.exited).toBe(0);
    for (const id of second.ids) produced.add(id);
    await until(() => storedIds("edge-killed").size === produced.size, `${produced.size} results`);
    expect(storedIds("edge-killed")).toEqual(produced);
  }, 60_000);

  it("when the spool overflows: the newest are delivered and the drop count is reported", async () => {
    const spool = join(dir, "small.db");
    await mosquitto.stop();
    const probe = startProbe(tasks("overflow", 30, 5), "edge-small", spool, ["--spool-bytes", "4000"]);
    await until(() => probe.ids.length === 30, "30 results");
    const kept = spooledIds(spool);
    expect(kept.length).toBeGreaterThan(3);
    expect(kept.length).toBeLessThan(30);
    await mosquitto.restart();
    expect(await probe.exited).toBe(0);
    await until(() => storedIds("edge-small").size === kept.length, "the kept results");
    expect(storedIds("edge-small")).toEqual(new Set(probe.ids.slice(30 - kept.length)));
    await until(async () => {
      const dropped = (await (await fetch(`${collector.httpUrl}/api/dropped`)).json()) as { probe: string; total: number }[];
      return dropped.some((d) => d.probe === "edge-small" && d.total === 30 - kept.length);
    }, "the drop report");
  }, 60_000);
});

describe("a collector SIGKILLed and restarted", () => {
  it("keeps what it stored and receives what was published while it was down", async () => {
    const db = join(dir, "separate-collector.db");
    const startProcess = () => {
      const child = spawn(process.execPath, ["bin/catprobe.js", "collector", "--broker", mosquitto.url,
        "--http", "127.0.0.1:0", "--db", db], { stdio: ["ignore", "pipe", "pipe"] });
      const url = new Promise<string>((resolve) => {
        let out = "";
        child.stdout!.on("data", (d) => {
          out += d;
          const m = /dashboard and API at (http:\/\/\S+)\//.exec(out);
          if (m) resolve(m[1]);
        });
      });
      child.stderr!.resume();
      return { child, url };
    };
    const count = async (url: string) =>
      ((await (await fetch(`${url}/api/top-errors?window=1h&probe=edge-c`)).json()) as { total: number }).total;

    let c = startProcess();
    let url = await c.url;
    const first = startProbe(tasks("collector-a", 40, 2), "edge-c", join(dir, "c1.db"));
    expect(await first.exited).toBe(0);
    await until(async () => (await count(url)) === 40, "40 stored");
    c.child.kill("SIGKILL");
    await once(c.child, "exit");

    const second = startProbe(tasks("collector-b", 25, 2), "edge-c", join(dir, "c2.db"));
    expect(await second.exited).toBe(0); // acknowledged by the broker, queued for the collector

    c = startProcess();
    url = await c.url;
    await until(async () => (await count(url)) === 65, "65 stored after the restart");
    c.child.kill("SIGTERM");
    await once(c.child, "exit");
    expect(existsSync(db)).toBe(true);
  }, 60_000);
});
