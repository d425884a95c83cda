// `catprobe tasks apply|list` and `catprobe probes` against a running collector: a set with a
// configuration error is refused locally (exit 2, the file, field and value named, nothing
// sent); a valid one is applied and its changes printed; the token is needed where one is set.

import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { statusTopic } from "../../host/wire/topics.js";
import { ProbeClients } from "../helpers/probe-clients.js";
import { until } from "../helpers/until.js";

const TOKEN = "tasks-test-token-0123456789";
const dir = mkdtempSync(join(tmpdir(), "catprobe-tasks-"));
const task = (id: string, extra: Record<string, unknown> = {}) =>
  ({ id, target: { host: "127.0.0.1", port: 9 }, steps: [{ verify: "none" }], ...extra });

/** Writes the files of a fresh task directory. */
function taskDir(name: string, files: Record<string, unknown>): string {
  const path = join(dir, name);
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path);
  for (const [file, json] of Object.entries(files)) writeFileSync(join(path, file), typeof json === "string" ? json : JSON.stringify(json));
  return path;
}

describe("catprobe tasks and probes", () => {
  let c: Collector;
  const cli = (args: string[], env: NodeJS.ProcessEnv = { CATPROBE_API_TOKEN: TOKEN }) =>
    promisify(execFile)(process.execPath, ["bin/catprobe.js", ...args, "--collector", c.httpUrl], { env: { ...process.env, ...env } })
      .then(({ stdout, stderr }) => ({ code: 0, stdout, stderr }), (err: { code: number; stdout: string; stderr: string }) => err);
  const version = async () => ((await (await fetch(`${c.httpUrl}/api/tasks`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { version: number }).version;

  beforeAll(async () => {
    c = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(dir, "c.db"), apiToken: TOKEN });
  });
  afterAll(async () => {
    await c.close();
  });

  it("apply: prints what was added, changed, removed and unchanged, and the version", async () => {
    let r = await cli(["tasks", "apply", taskDir("v1", { "a.json": task("a"), "b.json": task("b") })]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("added:     a, b\nchanged:   -\nremoved:   -\nunchanged: -\nversion 1\n");
    r = await cli(["tasks", "apply", taskDir("v2", { "a.json": task("a", { intervalMs: 1000 }), "c.json": task("c") })]);
    expect(r.stdout).toBe("added:     c\nchanged:   a\nremoved:   b\nunchanged: -\nversion 2\n");
    r = await cli(["tasks", "apply", join(dir, "v2", "c.json")]);
    expect(r.stdout).toBe("added:     -\nchanged:   -\nremoved:   a\nunchanged: c\nversion 3\n");
    r = await cli(["tasks", "apply", join(dir, "v2", "c.json")]);
    expect(r.stdout).toContain("version 3 (no change)");
  });

  it("apply: a configuration error in any file is exit 2, naming file, field and value; nothing is sent", async () => {
    const before = await version();
    const path = taskDir("bad", {
      "good.json": task("good"),
      "port.json": task("port", { target: { host: "127.0.0.1", port: 70000 } }),
      "verify.json": task("verify", { steps: [{ verify: "fuzzy", expect: "x" }] }),
      "twice.json": task("good"),
      "broken.json": "{ not json",
    });
    const r = await cli(["tasks", "apply", path]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("catprobe: configuration error");
    expect(r.stderr).toContain(`${join(path, "port.json")}: target.port:`);
    expect(r.stderr).toContain("(got 70000)");
    expect(r.stderr).toMatch(new RegExp(`${join(path, "verify.json").replace(/[.]/g, "\\.")}: steps\\[0\\]\\.verify: .*"fuzzy"`));
    expect(r.stderr).toContain(`${join(path, "broken.json")}: not valid JSON`);
    expect(r.stderr).toContain(`${join(path, "twice.json")}: id: "good" is already the id of ${join(path, "good.json")}`);
    expect(await version()).toBe(before);
    const missing = await cli(["tasks", "apply", join(dir, "no-such-dir")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no-such-dir: cannot read: ENOENT");
  });

  it("without the collector's token: exit 2 with the way to give it; an unknown subcommand is a usage error", async () => {
    const r = await cli(["tasks", "list"], { CATPROBE_API_TOKEN: "" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("requires its API token: give --token-file FILE, --token T or CATPROBE_API_TOKEN");
    const u = await cli(["tasks", "remove"]);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain("tasks: expected apply or list, got 'remove'");
  });

  it("list and probes: tables, and --json", async () => {
    await cli(["tasks", "apply", taskDir("list", {
      "a.json": task("a", { assign: { labels: { site: "Zürich-北区" } } }), "b.json": task("b", { assign: { probes: ["edge-1"] } }),
    })]);
    const list = await cli(["tasks", "list"]);
    expect(list.stdout).toMatch(/^task set version \d+: 2 tasks\n/);
    expect(list.stdout).toMatch(/^a +127\.0\.0\.1:9 +labels site=Zürich-北区$/m);
    expect(list.stdout).toMatch(/^b +127\.0\.0\.1:9 +probes edge-1$/m);
    expect(JSON.parse((await cli(["tasks", "list", "--json"])).stdout).tasks.map((t: { id: string }) => t.id)).toEqual(["a", "b"]);

    expect((await cli(["probes"])).stdout).toBe("no probes have reported to this collector\n");
    const clients = new ProbeClients(c.brokerUrl);
    try {
      for (const [probe, applied, configError] of [["edge-1", await version(), null], ["edge-2", 1, "tasks[0]: steps: is required"]] as const) {
        await clients.publish(statusTopic(probe), JSON.stringify({ v: 1, probe, state: "online", ts: Date.now(),
          labels: { site: "Zürich-北区" }, appliedVersion: applied, configError, spooled: 4, dropped: 0, software: "catprobe/test" }));
      }
      await until(async () => JSON.parse((await cli(["probes", "--json"])).stdout).length === 2, "two probes");
    } finally {
      await clients.end();
    }
    const v = await version();
    const table = (await cli(["probes"])).stdout.split("\n");
    expect(table[0]).toMatch(/^PROBE +STATE +SEEN +VERSION +SPOOLED +DROPPED +LABELS$/);
    expect(table[1]).toMatch(new RegExp(`^edge-1 +online +\\d+s +${v}/${v} +4 +0 +site=Zürich-北区$`));
    expect(table[2]).toMatch(new RegExp(`^edge-2 +online +\\d+s +1/${v} ! +4 +0 +site=Zürich-北区$`));
    expect(table[3]).toBe("  config error: tasks[0]: steps: is required");
  });
});
