// A managed probe without a broker: configs handed to ManagedProbe as the config topic would,
// checked, applied to a real Scheduler over real sockets, kept on disk and resumed.

import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManagedProbe, type ConfigState } from "../../host/probe/managed.js";
import { Scheduler } from "../../host/probe/schedule.js";
import { configMessage, MAX_CONFIG_BYTES } from "../../host/wire/config.js";
import type { ResultRecord } from "../../host/wire/record.js";
import { pool } from "../helpers/probe.js";
import { tcpServer, type TestServer } from "../helpers/tcp.js";
import { until } from "../helpers/until.js";

let echo: TestServer;
beforeAll(async () => {
  echo = await tcpServer((sock) => sock.on("data", (d) => sock.write(d)));
});
afterAll(async () => {
  await echo?.close();
});

const task = (id: string, extra: object = {}) => ({
  id, target: { host: "127.0.0.1", port: echo.port }, intervalMs: 100, steps: [{ send: "hi", verify: "partial", expect: "hi" }], ...extra,
});
const message = (version: number, tasks: object[]) => Buffer.from(configMessage(version, tasks));

/** A managed probe for good over a fresh directory; `stop` ends its scheduler. */
function managed(configFile = join(mkdtempSync(join(tmpdir(), "catprobe-managed-")), "config-p.json")) {
  const results: ResultRecord[] = [];
  const states: ConfigState[] = [];
  const logs: string[] = [];
  const abort = new AbortController();
  const scheduler = new Scheduler({ probe: "p", pool, forever: true, signal: abort.signal, onResult: (r) => results.push(r) });
  const probe = new ManagedProbe({ scheduler, pool, configFile, onState: (s) => states.push(s), log: (l) => logs.push(l) });
  return { probe, results, states, logs, configFile, state: () => states.at(-1), stop: () => (abort.abort(), scheduler.idle()) };
}

describe("a managed probe", () => {
  it("keeps the config it applied (whole: no temp file left) and runs it at the next start", async () => {
    const m = managed();
    m.probe.receive(message(3, [task("a")]));
    expect(m.state()).toEqual({ appliedVersion: 3, configError: null });
    expect(JSON.parse(readFileSync(m.configFile, "utf8"))).toEqual({ v: 1, version: 3, tasks: [task("a")] });
    expect(readdirSync(join(m.configFile, ".."))).toEqual(["config-p.json"]);
    await m.stop();
    const next = managed(m.configFile);
    next.probe.resume();
    expect(next.state()).toEqual({ appliedVersion: 3, configError: null });
    expect(next.logs).toEqual([`config v3 kept in ${m.configFile}: 1 task (1 added, 0 changed, 0 removed, 0 unchanged)`]);
    await until(() => next.results.length >= 1, "a run of the kept config");
    await next.stop();
  });

  it("starts with nothing when no config was kept, and reports a kept file it cannot use", async () => {
    const m = managed();
    m.probe.resume();
    expect(m.states).toEqual([]);
    writeFileSync(m.configFile, "{ half a config");
    m.probe.resume();
    expect(m.state()).toEqual({ appliedVersion: null, configError: `${m.configFile}: config: not JSON` });
    await m.stop();
  });

  it("refuses a config that is not one, whole, and keeps what runs", async () => {
    const m = managed();
    m.probe.receive(message(1, [task("a")]));
    for (const [payload, error] of [
      [Buffer.from("nope"), "config: not JSON"],
      [Buffer.from(JSON.stringify({ v: 2, version: 2, tasks: [] })), "config: v must be 1"],
      [Buffer.alloc(MAX_CONFIG_BYTES + 1, " "), `config: larger than ${MAX_CONFIG_BYTES} bytes`],
      [message(2, [task("a"), task("b", { target: { host: "127.0.0.1" } })]), "config v2 task 1: target.port: is required"],
      [message(2, [task("a", { target: { host: "127.0.0.1", port: echo.port, ca: "/nonexistent/ca.pem" } })]),
        "config v2 task 0: target.ca: cannot read /nonexistent/ca.pem (ENOENT)"],
    ] as const) {
      m.probe.receive(payload);
      expect(m.state()).toEqual({ appliedVersion: 1, configError: error });
    }
    expect(JSON.parse(readFileSync(m.configFile, "utf8")).version).toBe(1);
    m.probe.receive(Buffer.alloc(0)); // a cleared retained config: nothing to apply, nothing to report
    expect(m.state()).toEqual({ appliedVersion: 1, configError: expect.any(String) });
    await m.stop();
    expect(new Set(m.results.map((r) => r.task))).toEqual(new Set(["a"]));
  });

  it("treats the same config again (a reconnect) and a change of assign only as no change", async () => {
    const m = managed();
    m.probe.receive(message(1, [task("a")]));
    await until(() => m.results.length >= 2, "runs of a");
    m.probe.receive(message(1, [task("a")]));
    m.probe.receive(message(2, [task("a", { assign: { labels: { site: "x" } } })]));
    expect(m.logs).toEqual([
      "config v1 received: 1 task (1 added, 0 changed, 0 removed, 0 unchanged)",
      "config v2 received: 1 task (0 added, 0 changed, 0 removed, 1 unchanged)",
    ]);
    await until(() => m.results.length >= 4, "runs of a going on");
    await m.stop();
    // one schedule throughout: runs numbered 0, 1, 2 … with no restart
    expect(m.results.map((r) => Number(r.id.split("/").pop()))).toEqual(m.results.map((_, i) => i));
    expect(existsSync(m.configFile)).toBe(true);
  });
});
