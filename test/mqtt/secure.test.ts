// MQTT over TLS with a username and password (a real Mosquitto), shared subscriptions, and
// the collector's retention.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { openStore } from "../../host/collector/store.js";
import { createLabPki, writePkiFiles } from "../../simulator/certs.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { many, record } from "../helpers/records.js";
import { closedPort } from "../helpers/tcp.js";
import { until } from "../helpers/until.js";

const dir = mkdtempSync(join(tmpdir(), "catprobe-secure-"));
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});
afterAll(() => Promise.all(cleanup.map((f) => f())));

const count = async (c: Collector, probe: string) =>
  (await c.store.db.get<{ n: number }>("SELECT count(*) AS n FROM results WHERE probe = ?", [probe]))!.n;

describe("MQTT over TLS with a password", () => {
  it("carries a probe's results to the collector; a wrong password is refused", async () => {
    const pki = createLabPki();
    const files = writePkiFiles(join(dir, "pki"), pki);
    const broker = await Mosquitto.start({ tls: { ca: pki.ca.cert, cert: pki.server.cert, key: pki.server.key }, users: { probe: "s3cret" } });
    cleanup.push(() => broker.stop());
    expect(broker.url).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);

    await expect(startCollector({ broker: broker.url, http: "127.0.0.1:0", db: join(dir, "refused.db"),
      ca: Buffer.from(pki.ca.cert), username: "probe", password: "wrong" })).rejects.toThrow(/cannot connect to MQTT broker/);

    const collector = await startCollector({ broker: broker.url, http: "127.0.0.1:0", db: join(dir, "tls.db"),
      ca: Buffer.from(pki.ca.cert), username: "probe", password: "s3cret" });
    cleanup.push(() => collector.close());

    const tasks = join(dir, "tasks");
    mkdirSync(tasks);
    writeFileSync(join(tasks, "t.json"), JSON.stringify({
      id: "tls-task", target: { host: "127.0.0.1", port: await closedPort() }, count: 5, intervalMs: 0, steps: [{ verify: "none" }],
    }));
    const probe = spawn(process.execPath, ["bin/catprobe.js", "probe", tasks, "--broker", broker.url, "--probe", "edge-tls",
      "--ca", files.caFile, "--username", "probe", "--spool", join(dir, "tls-spool.db"), "--once"],
    { stdio: "ignore", env: { ...process.env, CATPROBE_MQTT_PASSWORD: "s3cret" } });
    expect((await once(probe, "exit"))[0]).toBe(1); // its runs are refused connects (601)
    await until(async () => await count(collector, "edge-tls") === 5, "5 results over TLS");
  }, 60_000);
});

describe("shared subscriptions", () => {
  it("split results between two collectors of one group, each result stored once", async () => {
    const broker = await Mosquitto.start();
    cleanup.push(() => broker.stop());
    const a = await startCollector({ broker: broker.url, http: "127.0.0.1:0", db: join(dir, "share-a.db"), shareGroup: "g" });
    cleanup.push(() => a.close());
    const b = await startCollector({ broker: broker.url, http: "127.0.0.1:0", db: join(dir, "share-b.db"), shareGroup: "g" });
    cleanup.push(() => b.close());
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
    const records = many(200, "edge-share", "t", Date.now() - 1000, 607);
    for (const r of records) await client.publishAsync("catprobe/v1/results/edge-share/t", JSON.stringify(r), { qos: 1 });
    await client.endAsync();
    await until(async () => await count(a, "edge-share") + await count(b, "edge-share") === 200, "200 results between both");
    expect(await count(a, "edge-share")).toBeGreaterThan(0);
    expect(await count(b, "edge-share")).toBeGreaterThan(0);
  }, 60_000);
});

describe("retention", () => {
  it("deletes results and their counts older than the limit, at whole hours", async () => {
    const store = await openStore(join(dir, "retention.db"));
    const hour = 3_600_000;
    const t = Math.floor(Date.now() / hour) * hour - 10 * hour;
    await store.add([record("p", "t", t - 1, 607), record("p", "t", t + 1, 607), record("p", "t", t + 2 * hour, null)]);
    expect(await store.prune(t + 30 * 60_000)).toBe(1); // rounds down to the hour t: only the first goes
    const left = (await store.db.get<{ n: number }>("SELECT count(*) AS n FROM results"))!;
    expect(left.n).toBe(2);
    const hours = (await store.db.get<{ n: number }>("SELECT sum(n) AS n FROM hours"))!;
    expect(hours.n).toBe(2);
    await store.close();
  });
});
