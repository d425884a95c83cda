// The collector's side of the fleet control plane, on a real collector and real MQTT clients,
// on each store (SQLite and PostgreSQL): the task set and its version (kept across a restart),
// problems named by task and field, each probe's retained config with exactly its tasks,
// republished on a change of the set, on a new probe's first status and on a change of its
// labels; probe rows; oversized configs.

import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { MAX_CONFIG_BYTES, parseConfig, type ProbeConfig } from "../../host/wire/config.js";
import { configTopic, statusTopic } from "../../host/wire/topics.js";
import { STORE_KINDS, newDatabase } from "../helpers/databases.js";
import { ProbeClients } from "../helpers/probe-clients.js";
import { until } from "../helpers/until.js";

const start = (db: string) => startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db });

const task = (id: string, extra: Record<string, unknown> = {}) =>
  ({ id, target: { host: "127.0.0.1", port: 9 }, steps: [{ verify: "none" }], ...extra });

async function put(c: Collector, body: unknown) {
  const res = await fetch(`${c.httpUrl}/api/tasks`, { method: "PUT", body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}
const get = async (c: Collector, path: string) => (await fetch(`${c.httpUrl}${path}`)).json();

const status = (probe: string, labels: Record<string, string>, extra: Record<string, unknown> = {}) => JSON.stringify({
  v: 1, probe, state: "online", ts: Date.now(), labels, appliedVersion: null, configError: null, spooled: 0, dropped: 0,
  software: "catprobe/test", ...extra,
});

/** The configs a probe receives on its own config topic, in order. */
async function configsOf(clients: ProbeClients, probe: string): Promise<ProbeConfig[]> {
  const client: MqttClient = await clients.as(probe);
  const seen: ProbeConfig[] = [];
  client.on("message", (topic, payload) => {
    if (topic !== configTopic(probe)) return;
    const config = parseConfig(payload);
    if ("error" in config) throw new Error(config.error);
    seen.push(config);
  });
  await client.subscribeAsync(configTopic(probe), { qos: 1 });
  return seen;
}

const ids = (c: ProbeConfig | undefined) => c?.tasks.map((t) => (t as { id: string }).id).sort();
describe.each(STORE_KINDS)("on %s", (kind) => {
  describe("task set", () => {
    it("versions: grows by one on each change, not for an identical set (key order aside); kept across a restart", async () => {
      const db = await newDatabase(kind);
      let c = await start(db);
      try {
        expect(await get(c, "/api/tasks")).toEqual({ version: 0, tasks: [] });
        let r = await put(c, { tasks: [task("a"), task("b")] });
        expect(r).toEqual({ status: 200, body: { version: 1, added: ["a", "b"], changed: [], removed: [], unchanged: [] } });
        const reordered = { steps: [{ verify: "none" }], target: { port: 9, host: "127.0.0.1" }, id: "a" };
        r = await put(c, { tasks: [task("b"), reordered] });
        expect(r.body).toEqual({ version: 1, added: [], changed: [], removed: [], unchanged: ["a", "b"] });
        r = await put(c, { tasks: [task("a", { intervalMs: 5000 }), task("c")] });
        expect(r.body).toEqual({ version: 2, added: ["c"], changed: ["a"], removed: ["b"], unchanged: [] });
        await c.close();
        c = await start(db);
        expect(await get(c, "/api/tasks")).toEqual({ version: 2, tasks: [task("a", { intervalMs: 5000 }), task("c")] });
        expect((await put(c, { tasks: [] })).body).toEqual({ version: 3, added: [], changed: [], removed: ["a", "c"], unchanged: [] });
      } finally {
        await c.close();
      }
    });

    it("a set with problems is refused whole: 400 naming each task and field, nothing applied", async () => {
      const c = await start(await newDatabase(kind));
      try {
        await put(c, { tasks: [task("keep")] });
        const r = await put(c, { tasks: [
          task("ok"),
          task("bad-verify", { steps: [{ verify: "fuzzy", expect: "x" }] }),
          task("typo", { timeout: 5 }),
          { target: { host: "h", port: 1 }, steps: [{ verify: "none" }] },
          task("ok"),
          task("host", { target: { host: "10.0.0.1:6379", port: 6379 } }),
        ] });
        expect(r.status).toBe(400);
        expect(r.body.error).toBe("5 problems in the task set; nothing was applied");
        expect(r.body.problems).toEqual([
          { task: "bad-verify", field: "steps[0].verify", message: expect.stringMatching(/^steps\[0\]\.verify: .*"fuzzy"/) },
          { task: "typo", field: "(top level)", message: '(top level): unknown field "timeout"' },
          { task: "tasks[3]", field: "id", message: "id: is required" },
          { task: "ok", field: "id", message: 'id: "ok" is already the id of tasks[0] (tasks[4])' },
          { task: "host", field: "target.host", message: 'target.host "10.0.0.1:6379": a host without a port (the port goes in target.port)' },
        ]);
        expect(await get(c, "/api/tasks")).toEqual({ version: 1, tasks: [task("keep")] });
        const notASet = await put(c, [task("x")]);
        expect(notASet.status).toBe(400);
        expect(notASet.body.error).toContain('{ "tasks"');
        const notJson = await fetch(`${c.httpUrl}/api/tasks`, { method: "PUT", body: "{" });
        expect(notJson.status).toBe(400);
        expect((await fetch(`${c.httpUrl}/api/tasks`, { method: "POST", body: "{}" })).status).toBe(405);
      } finally {
        await c.close();
      }
    });

    it("a body over 16 MiB is a 413, declared or sent", async () => {
      const c = await start(await newDatabase(kind));
      try {
        const { request } = await import("node:http");
        const answer = (chunked: boolean) => new Promise<number>((resolve, reject) => {
          const req = request(`${c.httpUrl}/api/tasks`, { method: "PUT", headers: chunked ? {} : { "content-length": String(17 << 20) } },
            (res) => resolve(res.statusCode!));
          req.on("error", reject);
          const chunk = Buffer.alloc(1 << 20, 0x20);
          let sent = 0;
          const write = () => {
            while (sent < 17 && req.write(chunk)) sent++;
            if (sent < 17) req.once("drain", () => { sent++; write(); });
            else req.end();
          };
          write();
        });
        expect(await answer(false)).toBe(413);
        expect(await answer(true)).toBe(413);
        expect(await get(c, "/api/tasks")).toEqual({ version: 0, tasks: [] });
      } finally {
        await c.close();
      }
    });
  });

  describe("configs over MQTT", () => {
    let c: Collector;
    let clients: ProbeClients;
    const ZURICH = { site: "Zürich-北区", rack: "ä1" };

    beforeAll(async () => {
      c = await start(await newDatabase(kind));
      clients = new ProbeClients(c.brokerUrl);
    });
    afterAll(async () => {
      await clients.end();
      await c.close();
    });

    it("each probe gets exactly its tasks, retained; again on every change, on its first status, on new labels", async () => {
      await put(c, { tasks: [
        task("everywhere"),
        task("zurich", { assign: { labels: { site: ZURICH.site } } }),
        task("only-b", { assign: { probes: ["edge-b"] } }),
      ] });
      const a = await configsOf(clients, "edge-a");
      const b = await configsOf(clients, "edge-b");
      // a probe the collector has no record of: its first status brings its config
      await clients.publish(statusTopic("edge-a"), status("edge-a", ZURICH));
      await clients.publish(statusTopic("edge-b"), status("edge-b", { site: "plant-3" }));
      await until(() => a.length === 1 && b.length === 1, "the first configs");
      expect(a[0].version).toBe(1);
      expect(ids(a[0])).toEqual(["everywhere", "zurich"]);
      expect(ids(b[0])).toEqual(["everywhere", "only-b"]);
      // the tasks as given, assign included
      expect(a[0].tasks.find((t) => (t as { id: string }).id === "zurich")).toEqual(task("zurich", { assign: { labels: { site: ZURICH.site } } }));

      // a status that changes nothing publishes nothing; an identical set neither
      await clients.publish(statusTopic("edge-a"), status("edge-a", ZURICH, { appliedVersion: 1 }));
      await put(c, { tasks: (await get(c, "/api/tasks")).tasks });

      await put(c, { tasks: [task("everywhere", { intervalMs: 1000 }), task("only-b", { assign: { probes: ["edge-b"] } })] });
      await until(() => a.length === 2 && b.length === 2, "the configs of version 2");
      expect(a.map((x) => x.version)).toEqual([1, 2]);
      expect(ids(a[1])).toEqual(["everywhere"]);
      expect(ids(b[1])).toEqual(["everywhere", "only-b"]);

      // edge-b moves to Zürich: only its own config is published again
      await put(c, { tasks: [task("everywhere"), task("zurich", { assign: { labels: { site: ZURICH.site } } })] });
      await until(() => a.length === 3 && b.length === 3, "the configs of version 3");
      await clients.publish(statusTopic("edge-b"), status("edge-b", ZURICH));
      await until(() => b.length === 4, "edge-b's config for its new labels");
      expect(ids(b[3])).toEqual(["everywhere", "zurich"]);
      expect(b[3].version).toBe(3);
      expect(a.length).toBe(3);

      // retained: a probe subscribing later gets its latest config at once
      const late = new ProbeClients(c.brokerUrl);
      try {
        const again = await configsOf(late, "edge-b");
        await until(() => again.length === 1, "the retained config");
        expect(again[0]).toEqual(b[3]);
      } finally {
        await late.end();
      }
    });

    it("/api/probes: one row per probe; old bare strings change the state only; bad statuses are counted", async () => {
      await clients.publish(statusTopic("edge-c"), status("edge-c", { site: "plant-3" }, {
        appliedVersion: 2, configError: "tasks[0]: steps: is required", spooled: 17, dropped: 3, software: "catprobe/0.2.0",
      }));
      await until(async () => (await get(c, "/api/probes")).some((p: { probe: string }) => p.probe === "edge-c"), "edge-c's row");
      const before = Date.now();
      await clients.publish(statusTopic("edge-c"), "offline");
      await clients.publish(statusTopic("edge-c"), JSON.stringify({ v: 1, probe: "edge-x" }));
      await clients.publish(statusTopic("edge-c"), "{");
      await until(async () => (await c.metrics.rejectedCount("bad_status")) === 2, "the bad statuses counted");
      const rows = await get(c, "/api/probes");
      const row = rows.find((p: { probe: string }) => p.probe === "edge-c");
      expect(row).toEqual({
        probe: "edge-c", state: "offline", lastSeen: expect.any(Number), labels: { site: "plant-3" },
        desiredVersion: (await get(c, "/api/tasks")).version, appliedVersion: 2, configError: "tasks[0]: steps: is required",
        spooled: 17, dropped: 3, software: "catprobe/0.2.0",
      });
      expect(row.lastSeen).toBeGreaterThanOrEqual(before - 5);
      expect(rows.map((p: { probe: string }) => p.probe)).toEqual(["edge-a", "edge-b", "edge-c"]);
    });

    it("a config over the message limit is not published: its probe shows the error, it is counted", async () => {
      const big = (id: string) => task(id, { assign: { probes: ["edge-big"] }, steps: [{ send: "x".repeat(600_000), verify: "none" }] });
      const configs = await configsOf(clients, "edge-big");
      await clients.publish(statusTopic("edge-big"), status("edge-big", {}));
      await until(() => configs.length === 1, "edge-big's first config");
      const r = await put(c, { tasks: [task("everywhere"), big("big-1"), big("big-2")] });
      expect(r.status).toBe(200);
      const row = async () => (await get(c, "/api/probes")).find((p: { probe: string }) => p.probe === "edge-big");
      await until(async () => (await row()).configError !== null, "the error on edge-big's row");
      expect((await row()).configError).toMatch(new RegExp(`^version ${r.body.version}: its 3 tasks take \\d+ bytes, over the ${MAX_CONFIG_BYTES}-byte MQTT message limit`));
      expect(await (await fetch(`${c.httpUrl}/metrics`)).text()).toContain("catprobe_config_too_large_total 1");
      // the others got theirs; once it fits again, the error is gone
      await put(c, { tasks: [task("everywhere"), big("big-1")] });
      await until(() => configs.length === 2, "edge-big's config once it fits");
      expect(ids(configs[1])).toEqual(["big-1", "everywhere"]);
      expect((await row()).configError).toBeNull();
    });
  });

  describe("configs across a collector restart", () => {
    it("the embedded broker forgets retained messages: every known probe gets its config again at start", async () => {
      const db = await newDatabase(kind);
      let c = await start(db);
      await put(c, { tasks: [task("t1")] });
      let clients = new ProbeClients(c.brokerUrl);
      await clients.publish(statusTopic("edge-r"), status("edge-r", {}));
      await until(async () => (await get(c, "/api/probes")).length === 1, "edge-r's row");
      await clients.end();
      await c.close();
      c = await start(db);
      clients = new ProbeClients(c.brokerUrl);
      try {
        const configs = await configsOf(clients, "edge-r");
        await until(() => configs.length === 1, "edge-r's retained config");
        expect(configs[0]).toEqual({ v: 1, version: 1, tasks: [task("t1")] });
      } finally {
        await clients.end();
        await c.close();
      }
    });
  });
});
