// The collector over real MQTT, on the embedded aedes broker and on a real Mosquitto: every
// kind of bad message is rejected and counted while good ones keep flowing; duplicates and
// batches; the `top` command against the running collector.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { REJECT_REASONS } from "../../host/wire/validate.js";
import { MAX_MESSAGE_BYTES } from "../../host/wire/record.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { ProbeClients } from "../helpers/probe-clients.js";
import { many, record } from "../helpers/records.js";
import { until } from "../helpers/until.js";

const topic = (probe: string, task: string) => `catprobe/v1/results/${probe}/${task}`;

async function total(c: Collector): Promise<number> {
  return ((await (await fetch(`${c.httpUrl}/api/top-errors?window=24h`)).json()) as { total: number }).total;
}

for (const broker of ["aedes", "mosquitto"] as const) {
  describe(`collector on ${broker}`, () => {
    let mosquitto: Mosquitto | undefined;
    let collector: Collector;
    let clients: ProbeClients;

    beforeAll(async () => {
      if (broker === "mosquitto") mosquitto = await Mosquitto.start();
      collector = await startCollector({
        broker: mosquitto?.url, mqttListen: "127.0.0.1:0", http: "127.0.0.1:0",
        db: join(mkdtempSync(join(tmpdir(), "catprobe-ingest-")), "c.db"),
      });
      clients = new ProbeClients(collector.brokerUrl);
    });
    afterAll(async () => {
      await clients.end();
      await collector.close();
      await mosquitto?.stop();
    });

    it("rejects and counts each kind of bad message while good ones keep flowing", async () => {
      const now = Date.now();
      const good = () => JSON.stringify(record("p1", "t1", now, 607));
      const bad: [string, string | Buffer, string][] = [
        [topic("p1", "t1"), "{ not json", "not_json"],
        [topic("p1", "t1"), "[]", "empty_batch"],
        [topic("p1", "t1"), JSON.stringify({ ...record("p1", "t1", now, 607), v: 2 }), "bad_record"],
        [topic("p1", "t1"), JSON.stringify({ ...record("p1", "t1", now, 607), timings: "fast" }), "bad_record"],
        // never pruned, and they would skew the lag histogram
        [topic("p1", "t1"), JSON.stringify(record("p1", "t1", 0, 607)), "bad_record"],
        [topic("p1", "t1"), JSON.stringify(record("p1", "t1", 2 ** 53 - 1, 607)), "bad_record"],
        [topic("p1", "t1"), JSON.stringify(record("p1", "t1", now + 2 * 86_400_000, 607)), "bad_record"],
        [topic("p1", "t1"), JSON.stringify(record("p1", "t1", now, 612)), "bad_code"],
        [topic("p1", "t1"), JSON.stringify({ ...record("p1", "t1", now, null), code: 607 }), "bad_code"],
        [topic("p2", "t1"), good(), "topic_mismatch"],
        [topic("p1", "t2"), good(), "topic_mismatch"],
        // on the embedded broker no client can be that probe (test/collector/broker-security.test.ts)
        ...(broker === "mosquitto" ? [["catprobe/v1/results/bad probe/t1", good(), "bad_topic"] as [string, string, string]] : []),
        [topic("p1", "t1"), Buffer.alloc(MAX_MESSAGE_BYTES + 100, 0x20), "too_large"],
        [topic("p1", "t1"), JSON.stringify(many(1001, "p1", "t1", now, 601)), "batch_too_large"],
      ];
      const before = await total(collector);
      for (const [t, payload] of bad) {
        await clients.publish(t, payload);
        await clients.publish(topic("p1", "t1"), good()); // a good one after each bad one
      }
      await until(async () => (await total(collector)) === before + bad.length, "the good results");
      for (const reason of REJECT_REASONS) {
        const expected = bad.filter((b) => b[2] === reason).length;
        expect(await collector.metrics.rejectedCount(reason), reason).toBe(expected);
      }
      const metrics = await (await fetch(`${collector.httpUrl}/metrics`)).text();
      expect(metrics).toContain('catprobe_rejected_total{reason="not_json"} 1');
      expect(metrics).toMatch(/catprobe_results_total\{task="t1",code="607"\} \d+/);
    });

    it("stores a batch, keeping its good records and counting its bad ones", async () => {
      const now = Date.now();
      const before = await total(collector);
      const batch = [...many(5, "p1", "batch", now, 603), { ...record("p1", "batch", now, 603), task: "other" }];
      await clients.publish(topic("p1", "batch"), JSON.stringify(batch));
      await until(async () => (await total(collector)) === before + 5, "the batch");
    });

    it("counts re-delivered results once", async () => {
      const r = record("p9", "dup", Date.now(), 609);
      for (let i = 0; i < 3; i++) await clients.publish(topic("p9", "dup"), JSON.stringify(r));
      await clients.publish(topic("p9", "dup"), JSON.stringify([r, r]));
      const marker = record("p9", "dup", Date.now(), null);
      await clients.publish(topic("p9", "dup"), JSON.stringify(marker));
      const url = `${collector.httpUrl}/api/top-errors?window=1h&task=dup`;
      await until(async () => ((await (await fetch(url)).json()) as { total: number }).total === 2, "the marker");
      expect(await (await fetch(url)).json()).toMatchObject({ total: 2, failed: 1, top: [{ code: 609, count: 1 }] });
    });

    it("answers bad queries with 400 and a reason", async () => {
      const res = await fetch(`${collector.httpUrl}/api/top-errors?window=forever`);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: 'window must look like 5m, 1h, 24h or 7d (got "forever")' });
    });

    it("`catprobe top` prints the table from the running collector", async () => {
      // Not spawnSync: the collector serves from this process and must keep running meanwhile.
      const r = await promisify(execFile)(process.execPath, ["bin/catprobe.js", "top", "--collector", collector.httpUrl, "--task", "dup"]);
      expect(r.stdout).toMatch(/: 2 results, 1 failed\n/);
      expect(r.stdout).toMatch(/^1 +609 +1 +100\.0% +50\.0% +The step timed out\.$/m);
    });
  });
}
