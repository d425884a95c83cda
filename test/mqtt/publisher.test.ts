// The probe's publishing side over a real broker: batches group a task's results even when
// tasks interleave, and a result too large for a message or for the spool is shortened, never
// refused, never a reason for the probe to stop.

import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { Publisher } from "../../host/mqtt/publisher.js";
import { Spool } from "../../host/mqtt/spool.js";
import { RESULTS_FILTER } from "../../host/wire/topics.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { record } from "../helpers/records.js";
import { closedPort } from "../helpers/tcp.js";
import { until } from "../helpers/until.js";

const dir = mkdtempSync(join(tmpdir(), "catprobe-publisher-"));

describe("batches", () => {
  let mosquitto: Mosquitto;
  beforeAll(async () => {
    mosquitto = await Mosquitto.start();
  });
  afterAll(async () => {
    await mosquitto?.stop();
  });

  it("hold one task's results, also when four tasks' results interleave in the spool", async () => {
    const subscriber = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 4, clientId: "count-messages" });
    let messages = 0;
    let records = 0;
    subscriber.on("message", (_topic, payload) => {
      messages++;
      records += (JSON.parse(payload.toString()) as unknown[]).length;
    });
    await subscriber.subscribeAsync(RESULTS_FILTER, { qos: 1 });
    const spool = new Spool(join(dir, "batches.db"));
    const publisher = new Publisher({ brokerUrl: mosquitto.url, probe: "edge-b", spool, batch: 50 });
    const now = Date.now();
    for (let i = 0; i < 400; i++) publisher.publish({ ...record("edge-b", `task-${i % 4}`, now, null), address: null });
    await publisher.drain(20_000);
    await until(() => records === 400, "400 results");
    // 400 results, 50 a window, 4 tasks: 8 windows of 4 messages. One message a result before.
    expect(messages).toBe(32);
    await publisher.close();
    spool.close();
    await subscriber.endAsync();
  });
});

describe("a result too large", () => {
  let collector: Collector;
  beforeAll(async () => {
    collector = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(dir, "collector.db") });
  });
  afterAll(async () => {
    await collector?.close();
  });

  const stored = (probe: string) => collector.store.db.all<{ labels: string }>("SELECT labels FROM results WHERE probe = ?", [probe]);

  /** A task whose results carry `labels`, run once by a real probe process; resolves with its exit status and stderr. */
  async function probeOnce(probe: string, labels: Record<string, string>, extra: string[]): Promise<{ code: number; stderr: string }> {
    const file = join(dir, `${probe}.json`);
    writeFileSync(file, JSON.stringify({
      id: "big", target: { host: "127.0.0.1", port: await closedPort() }, labels, steps: [{ verify: "none" }],
    }));
    return promisify(execFile)(process.execPath, ["bin/catprobe.js", "probe", file, "--broker", collector.brokerUrl,
      "--probe", probe, "--spool", join(dir, `${probe}-spool.db`), "--once", ...extra])
      .then(({ stderr }) => ({ code: 0, stderr }), (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }));
  }

  it("for the spool is stored with its labels shortened, and the probe goes on (exit 0)", async () => {
    // 2 × 5,000 characters of 3 bytes each: over 4 KiB even at 1,024 characters a label
    const run = await probeOnce("edge-small-spool", { a: "长".repeat(5000), b: "长".repeat(5000), site: "工厂-3" }, ["--spool-bytes", "4096"]);
    expect(run.code).toBe(1); // the run is a refused connect (601); the probe did not stop with 2
    await until(async () => (await stored("edge-small-spool")).length === 1, "the result");
    const labels = JSON.parse((await stored("edge-small-spool"))[0].labels) as Record<string, string>;
    expect(labels.site).toBe("工厂-3");
    for (const key of ["a", "b"]) {
      expect(labels[key]).toMatch(/^长+…$/);
      expect(labels[key].length).toBeLessThan(1024);
    }
  });

  it("for a message (over 1 MiB) arrives with its labels shortened instead of being rejected", async () => {
    // A task file holds 1 MiB at most, so this comes straight to the publisher.
    const huge = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, "x".repeat(40_000)]));
    const spool = new Spool(join(dir, "huge.db"));
    const publisher = new Publisher({ brokerUrl: collector.brokerUrl, probe: "edge-huge", spool });
    publisher.publish({ ...record("edge-huge", "big", Date.now(), 607), address: null, labels: huge });
    await publisher.drain(10_000);
    await publisher.close();
    spool.close();
    await until(async () => (await stored("edge-huge")).length === 1, "the result");
    const labels = JSON.parse((await stored("edge-huge"))[0].labels) as Record<string, string>;
    expect(Object.keys(labels)).toHaveLength(32);
    expect(labels.k0).toBe(`${"x".repeat(1023)}…`);
    expect(await collector.metrics.rejectedCount("too_large")).toBe(0);
  });

  it("refuses a spool too small for one result, before running anything", async () => {
    const run = await probeOnce("edge-tiny", {}, ["--spool-bytes", "1000"]);
    expect(run).toMatchObject({ code: 2, stderr: expect.stringContaining("--spool-bytes 1000: must be a whole number from 4096") });
  });
});

describe("non-ASCII results", () => {
  it("fill the spool to its exact byte bound while the broker is away, and all arrive", async () => {
    const port = await closedPort();
    const spool = new Spool(join(dir, "non-ascii.db"), 150_000);
    const publisher = new Publisher({ brokerUrl: `mqtt://127.0.0.1:${port}`, probe: "edge-zh", spool });
    const now = Date.now();
    // about 1,800 bytes each, 600 characters of label: 75 fit in 150,000 bytes
    const made = Array.from({ length: 75 }, (_, i) => ({
      ...record("edge-zh", "t", now + i, 607), address: null, message: "关键字 “+PONG” 未找到…", labels: { site: "上海-浦东".repeat(120) },
    }));
    for (const r of made) publisher.publish(r);
    expect(spool.size).toBe(75);
    expect(spool.dropped).toBe(0);
    const collector = await startCollector({ mqttListen: `127.0.0.1:${port}`, http: "127.0.0.1:0", db: join(dir, "zh.db") });
    try {
      await publisher.drain(20_000);
      await until(async () => (await collector.store.db.get<{ n: number }>("SELECT count(*) AS n FROM results"))!.n === 75, "75 stored");
      expect(new Set((await collector.store.db.all<{ id: string }>("SELECT id FROM results")).map((r) => r.id)))
        .toEqual(new Set(made.map((r) => r.id)));
      console.log(`reliability: non-ASCII results, 150,000-byte spool, broker away: produced 75, stored 75, lost 0, duplicates 0`);
    } finally {
      await publisher.close();
      spool.close();
      await collector.close();
    }
  });
});
