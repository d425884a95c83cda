// `catprobe probe` from the command line: broker URLs checked at start, a clean stop on SIGTERM
// (also through `npx`, which signals only its shell), --once's summary and exit status, and the
// default spool file.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { tcpServer, type TestServer } from "../helpers/tcp.js";
import { until } from "../helpers/until.js";

const dir = mkdtempSync(join(tmpdir(), "catprobe-probe-cli-"));
let collector: Collector;
let echo: TestServer;
beforeAll(async () => {
  collector = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(dir, "c.db") });
  echo = await tcpServer((sock) => sock.on("data", (d) => sock.write(d)));
});
afterAll(async () => {
  await collector.close();
  await echo.close();
});

function start(command: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  const out = { stdout: "", stderr: "" };
  child.stdout!.on("data", (d) => (out.stdout += d));
  child.stderr!.on("data", (d) => (out.stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, out, exited };
}

const cli = (args: string[], env?: NodeJS.ProcessEnv) => start(process.execPath, ["bin/catprobe.js", ...args], env);

function taskFile(name: string, task: object): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(task));
  return file;
}

const echoTask = (id: string, extra: object = {}) => taskFile(`${id}.json`, {
  id, target: { host: "127.0.0.1", port: echo.port }, steps: [{ send: "PING\r\n", verify: "partial", expect: "PING" }], ...extra,
});

const stored = async (probe: string) =>
  (await collector.store.db.get<{ n: number }>("SELECT count(*) AS n FROM results WHERE probe = ?", [probe]))!.n;

/** Processes whose command line holds `marker` (Linux /proc): what is left of a stopped probe. */
function processesWith(marker: string): number[] {
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(marker);
    } catch {
      return false; // gone meanwhile
    }
  }).map(Number);
}

describe("catprobe probe --broker", () => {
  it.each([
    ["127.0.0.1:1883", "no scheme: expected one of mqtt://, mqtts://, ws://, wss:// (e.g. mqtt://127.0.0.1:1883)"],
    ["http://127.0.0.1:1883", "the scheme must be one of mqtt, mqtts, ws, wss, not http"],
    ["mqtt://127.0.0.1:1,127.0.0.1:2", "item 2 (127.0.0.1:2): no scheme: expected one of mqtt://, mqtts://, ws://, wss:// (e.g. mqtt://127.0.0.1:2)"],
    ["mqtt://127.0.0.1:1883/results", "a path is only for ws:// and wss:// (got /results)"],
    ["mqtt://127.0.0.1:0", "the port must be from 1 to 65535"],
  ])("refuses %s at start with one line, exit 2", async (url, why) => {
    for (const command of [["probe", echoTask("url"), "--spool", join(dir, "url.db")], ["collector", "--db", join(dir, "url-c.db")]]) {
      const r = cli([...command, "--broker", url]);
      expect(await r.exited).toBe(2);
      expect(r.out.stderr).toBe(`catprobe: --broker ${url}: ${why}\nsee catprobe --help\n`);
    }
  });
});

describe("catprobe probe --once", () => {
  it("prints a summary and exits 1 when a run failed, 0 when every run passed", async () => {
    const failing = cli(["probe", echoTask("once-bad", { count: 2, intervalMs: 0, steps: [{ send: "PING\r\n", verify: "full", expect: "PONG" }] }),
      "--broker", collector.brokerUrl, "--probe", "edge-once-bad", "--spool", join(dir, "once-bad.db"), "--once"]);
    expect(await failing.exited).toBe(1);
    expect(failing.out.stderr).toContain("probe edge-once-bad: 2 runs: 0 ok, 2 failed (607 ×2); 2 results delivered, 0 still spooled\n");
    const passing = cli(["probe", echoTask("once-ok"), "--broker", collector.brokerUrl, "--probe", "edge-once-ok",
      "--spool", join(dir, "once-ok.db"), "--once"]);
    expect(await passing.exited).toBe(0);
    expect(passing.out.stderr).toContain("probe edge-once-ok: 1 run: 1 ok, 0 failed; 1 result delivered, 0 still spooled\n");
    expect(await stored("edge-once-bad")).toBe(2);
  }, 30_000);

  it("keeps its spool in $XDG_STATE_HOME/catprobe by default, and says where", async () => {
    const state = mkdtempSync(join(dir, "state-"));
    const r = cli(["probe", echoTask("spool-default"), "--broker", collector.brokerUrl, "--probe", "edge-xdg", "--once"],
      { XDG_STATE_HOME: state });
    expect(await r.exited).toBe(0);
    const spool = join(state, "catprobe", "spool-edge-xdg.db");
    expect(r.out.stderr).toContain(`probe edge-xdg: 1 task, publishing to ${collector.brokerUrl}, spool ${spool}\n`);
    expect(existsSync(spool)).toBe(true);
  }, 30_000);
});

describe("catprobe probe, stopped by a signal", () => {
  const forever = () => echoTask("forever", { intervalMs: 100 });

  it("SIGTERM: stops scheduling, delivers, closes the spool and exits 0", async () => {
    const spool = join(dir, "term.db");
    const r = cli(["probe", forever(), "--broker", collector.brokerUrl, "--probe", "edge-term", "--spool", spool]);
    await until(async () => await stored("edge-term") >= 3, "results from the probe");
    r.child.kill("SIGTERM");
    const started = Date.now();
    expect(await r.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(existsSync(`${spool}-wal`)).toBe(false); // closed: SQLite folds its log back in on close
  }, 30_000);

  it("stops within seconds when the broker is not an MQTT broker (mqtt.js keeps its socket)", async () => {
    const http = createServer((s) => s.on("data", () => s.write("HTTP/1.1 400 Bad Request\r\n\r\n")).on("error", () => {}));
    http.listen(0, "127.0.0.1");
    await once(http, "listening");
    try {
      const port = (http.address() as { port: number }).port;
      const r = cli(["probe", forever(), "--broker", `mqtt://127.0.0.1:${port}`, "--probe", "edge-garbage", "--spool", join(dir, "garbage.db")]);
      await until(() => r.out.stderr.includes("Invalid header flag bits"), "the probe meeting the bad broker");
      r.child.kill("SIGTERM");
      const started = Date.now();
      expect(await r.exited).toBe(0);
      expect(Date.now() - started).toBeLessThan(8000);
    } finally {
      http.close();
    }
  }, 30_000);

  it("through `npx catprobe probe`: SIGTERM to npx stops the probe cleanly and its results arrived", async () => {
    const spool = join(dir, "npx.db");
    const r = start("npx", ["catprobe", "probe", forever(), "--broker", collector.brokerUrl, "--probe", "edge-npx", "--spool", spool]);
    await until(async () => await stored("edge-npx") >= 3, "results from the probe under npx", 30_000);
    expect(processesWith(spool).length).toBeGreaterThan(0);
    r.child.kill("SIGTERM"); // what systemd, a container runtime or `timeout --foreground` does: npx only
    await r.exited;
    await until(() => processesWith(spool).length === 0, "the probe under npx to exit", 8000);
    expect(existsSync(`${spool}-wal`)).toBe(false);
  }, 60_000);
});
