// `catprobe probe --managed` as a process against a real Mosquitto, with the test in the
// collector's place: it publishes retained configs (configMessage) and reads what the probe
// does only from what it publishes (results, status).

import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { configMessage } from "../../host/wire/config.js";
import type { ResultRecord } from "../../host/wire/record.js";
import type { ProbeStatus } from "../../host/wire/status.js";
import { configTopic, statusTopic } from "../../host/wire/topics.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { tcpServer, type TestServer } from "../helpers/tcp.js";
import { until } from "../helpers/until.js";

const dir = mkdtempSync(join(tmpdir(), "catprobe-managed-cli-"));
let mosquitto: Mosquitto;
let echo: TestServer;
let slow: TestServer;
/** how long the slow server holds each request: a run of a task on it is in flight that long */
const SLOW_MS = 300;
beforeAll(async () => {
  mosquitto = await Mosquitto.start();
  echo = await tcpServer((sock) => sock.on("data", (d) => sock.write(d)));
  slow = await tcpServer((sock) => sock.once("data", (d) => setTimeout(() => sock.end(d), SLOW_MS)));
});
afterAll(async () => {
  await mosquitto?.stop();
  await echo?.close();
  await slow?.close();
});

const probes: { kill: (signal: NodeJS.Signals) => void; exited: Promise<number | null> }[] = [];
const clients: MqttClient[] = [];
afterEach(async () => {
  for (const p of probes.splice(0)) {
    p.kill("SIGTERM");
    await p.exited;
  }
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
});

const task = (id: string, server: TestServer, extra: object = {}) => ({
  id, target: { host: "127.0.0.1", port: server.port }, steps: [{ send: "PING\r\n", verify: "partial", expect: "PING" }], ...extra,
});

function startProbe(id: string, extra: string[] = []) {
  const child = spawn(process.execPath, ["bin/catprobe.js", "probe", "--managed", "--broker", mosquitto.url, "--probe", id,
    "--spool", join(dir, `spool-${id}.db`), ...extra], { stdio: ["ignore", "ignore", "pipe"] });
  const out = { stderr: "" };
  child.stderr!.on("data", (d) => (out.stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  const handle = { kill: (signal: NodeJS.Signals) => child.kill(signal), exited, out };
  probes.push(handle);
  return handle;
}

/**
 * The collector's side for one probe: publishes its retained config, and keeps every result and
 * status it publishes (a persistent session, so what is published while the broker restarts arrives).
 */
async function collectorFor(probe: string) {
  const client = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 4, clientId: `test-collector-${probe}`, clean: false, reconnectPeriod: 100 });
  clients.push(client);
  const results: ResultRecord[] = [];
  const statuses: ProbeStatus[] = [];
  client.on("message", (topic, payload) => {
    if (topic === statusTopic(probe)) statuses.push(JSON.parse(payload.toString()));
    else results.push(...[JSON.parse(payload.toString())].flat());
  });
  await client.subscribeAsync([`catprobe/v1/results/${probe}/+`, statusTopic(probe)], { qos: 1 });
  return {
    results, statuses,
    of: (t: string) => results.filter((r) => r.task === t),
    status: () => statuses.at(-1),
    configure: (version: number, tasks: object[]) =>
      client.publishAsync(configTopic(probe), configMessage(version, tasks), { qos: 1, retain: true }),
  };
}

const runNo = (r: ResultRecord) => Number(r.id.split("/").pop());

describe("catprobe probe --managed", () => {
  it("runs exactly its config's tasks, and applies a new version: new starts, removed ends after its run in flight, changed restarts, unchanged keeps its phase", async () => {
    const c = await collectorFor("edge-m1");
    const steady = task("steady", echo, { intervalMs: 200 });
    await c.configure(1, [steady, task("leaving", slow, { intervalMs: 100 }), task("changing", echo, { intervalMs: 200 })]);
    const p = startProbe("edge-m1", ["--label", "site=工厂-3", "--label", "rule=a=b"]);
    await until(() => c.of("steady").length >= 3 && c.of("leaving").length >= 1 && c.of("changing").length >= 2, "runs of config v1");
    expect(new Set(c.results.map((r) => r.task))).toEqual(new Set(["steady", "leaving", "changing"]));
    expect(c.status()).toMatchObject({ state: "online", appliedVersion: 1, configError: null, labels: { site: "工厂-3", rule: "a=b" } });

    await c.configure(2, [steady, task("changing", echo, { intervalMs: 200, labels: { v: "2" } }), task("new", echo, { intervalMs: 200 })]);
    await until(() => c.status()?.appliedVersion === 2, "v2 applied");
    const applied = c.status()!.ts;
    // "leaving" always has a run in flight (SLOW_MS back to back): it started before v2 and ends after
    await until(() => c.of("leaving").some((r) => r.ts > applied - SLOW_MS - 100), "the run in flight of the removed task");
    // long enough for any run of "leaving" started after v2 to have ended and been delivered
    await until(() => c.of("new").length >= 3 && c.of("changing").filter((r) => r.labels?.v === "2").length >= 3, "runs of config v2");
    await new Promise((r) => setTimeout(r, SLOW_MS + 100));
    expect(c.of("leaving").every((r) => r.ts <= applied)).toBe(true);
    // changed: a schedule of its own from v2 on, numbered from 0 again
    expect(c.of("changing").filter((r) => r.labels?.v === "2").map(runNo).slice(0, 3)).toEqual([0, 1, 2]);
    // unchanged: one schedule throughout, run k at first + k × intervalMs
    const runs = c.of("steady");
    expect(runs.map(runNo)).toEqual(runs.map((_, i) => i));
    for (const r of runs) expect(Math.abs(r.ts - (runs[0].ts + runNo(r) * 200))).toBeLessThan(100);
    expect(p.out.stderr).toContain("config v2 received: 3 tasks (1 added, 1 changed, 1 removed, 1 unchanged)");
  }, 30_000);

  it("does not apply an invalid config: the last good one runs on, configError names the task, the field and the problem", async () => {
    const c = await collectorFor("edge-m2");
    await c.configure(4, [task("good", echo, { intervalMs: 100 })]);
    startProbe("edge-m2");
    await until(() => c.status()?.appliedVersion === 4, "v4 applied");
    await c.configure(5, [task("good", echo, { intervalMs: 100 }), task("bad", echo, { steps: [{ verify: "sometimes" }] })]);
    await until(() => c.status()?.configError != null, "the config error in the status");
    expect(c.status()).toMatchObject({ appliedVersion: 4, configError: expect.stringMatching(/^config v5 task 1: steps\[0\]\.verify: /) });
    await c.configure(6, [task("twin", echo), task("twin", echo)]);
    await until(() => c.status()?.configError?.startsWith("config v6") === true, "the duplicate id refused");
    expect(c.status()!.configError).toBe('config v6 task 1: id: "twin" is already the id of another task of this config');
    const seen = c.of("good").length;
    await until(() => c.of("good").length >= seen + 2, "the last good config running on");
    expect(new Set(c.results.map((r) => r.task))).toEqual(new Set(["good"]));
    // a lower version that is valid is what the collector says now: applied
    await c.configure(2, [task("after-reset", echo, { intervalMs: 100 })]);
    await until(() => c.status()?.appliedVersion === 2 && c.status()?.configError === null, "v2 applied after v4");
    await until(() => c.of("after-reset").length >= 1, "the task of v2");
  }, 30_000);

  it("runs the config it kept when restarted with the broker down, and delivers those results once the broker is up", async () => {
    const c = await collectorFor("edge-m3");
    await c.configure(7, [task("kept", echo, { intervalMs: 100 })]);
    const first = startProbe("edge-m3");
    await until(() => c.of("kept").length >= 1, "a first run");
    first.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    await mosquitto.stop();
    const down = Date.now();
    const again = startProbe("edge-m3");
    await until(() => again.out.stderr.includes("config v7 kept in"), "the kept config applied at start");
    await new Promise((r) => setTimeout(r, 500)); // a few runs at 100 ms, all spooled
    await mosquitto.restart();
    const up = Date.now();
    await until(() => c.of("kept").filter((r) => r.ts > down && r.ts < up).length >= 3, "results of runs while the broker was down");
    await until(() => c.status()?.appliedVersion === 7, "the status of the restarted probe");
  }, 30_000);

  it("publishes the status object, retained; its last will is the same object, offline", async () => {
    const c = await collectorFor("edge-m4");
    const p = startProbe("edge-m4", ["--label", "site=Zürich", "--config-file", join(dir, "m4-config.json")]);
    await until(() => c.status()?.state === "online", "the probe online");
    expect(c.status()).toEqual({
      v: 1, probe: "edge-m4", state: "online", ts: expect.any(Number), labels: { site: "Zürich" }, appliedVersion: null,
      configError: null, spooled: 0, dropped: 0, software: expect.stringMatching(/^catprobe\/\d+\.\d+\.\d+/),
    });
    p.kill("SIGKILL"); // no goodbye: the broker publishes the will
    await until(() => c.status()?.state === "offline", "the last will");
    expect(c.status()).toMatchObject({ v: 1, probe: "edge-m4", state: "offline", labels: { site: "Zürich" }, appliedVersion: null });
    const retained = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 4, clientId: "test-retained" });
    clients.push(retained);
    const got = new Promise<string>((resolve) => retained.on("message", (_t, payload) => resolve(payload.toString())));
    await retained.subscribeAsync(statusTopic("edge-m4"), { qos: 1 });
    expect(JSON.parse(await got)).toMatchObject({ state: "offline", probe: "edge-m4" });
  }, 30_000);

  it.each([
    ["a task file", ["probe", "x.json", "--managed"], "probe --managed takes no task files: its tasks come from its config topic"],
    ["--once", ["probe", "--managed", "--once"], "--once is for task files: a managed probe runs for good"],
    ["a label without =", ["probe", "--managed", "--label", "site"], '--label "site": must be key=value'],
    ["a label twice", ["probe", "--managed", "--label", "a=1", "--label", "a=2"], "--label a: given twice"],
    ["a label too long", ["probe", "--managed", "--label", `k=${"x".repeat(2000)}`], "--label: label \"k\": the value must be text of at most"],
  ])("refuses %s with one line, exit 2", async (_what, args, why) => {
    const child = spawn(process.execPath, ["bin/catprobe.js", ...args, "--broker", mosquitto.url, "--spool", join(dir, "usage.db")],
      { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    expect(await new Promise((resolve) => child.on("close", resolve))).toBe(2);
    expect(stderr).toContain(`catprobe: ${why}`);
  });
});
