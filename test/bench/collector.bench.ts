// Collector ingest through a real Mosquitto against a bare mqtt.js subscriber that only counts
// messages (the floor), both fed by a publisher in its own process, and /api/top-errors
// latency over one million stored results.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import mqtt, { type MqttClient } from "mqtt";
import { startCollector } from "../../host/collector/collector.js";
import { topErrors } from "../../host/collector/stats.js";
import { openStore } from "../../host/collector/store.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { record } from "../helpers/records.js";
import { until } from "../helpers/until.js";
import type { Ratios } from "./harness.js";

const MESSAGES = 20_000;
const ROUNDS = 5;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];

/** The load in its own process (publisher-process.ts), connected and waiting for the start. */
async function startPublisher(url: string, round: number) {
  const child = spawn(process.execPath, ["--import", "tsx", "test/bench/publisher-process.ts", url, `bench-pub-${round}`,
    String(MESSAGES)], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout! });
  const next = () => once(lines, "line");
  await next(); // connected
  return { go: () => child.stdin!.write("go\n"), done: next().then(() => once(child, "exit")) };
}

/** Messages per second from the start of publishing until the receiver has all of them. */
async function ingestRate(url: string, round: number, received: () => number): Promise<number> {
  const publisher = await startPublisher(url, round);
  const t0 = performance.now();
  publisher.go();
  // A lost message must fail the run, not hang it; polled every 5 ms, as the wait is what is timed.
  await until(() => received() >= MESSAGES, `all ${MESSAGES} messages at the receiver`, 120_000, 5);
  const rate = (MESSAGES * 1000) / (performance.now() - t0);
  await publisher.done;
  return rate;
}

async function bareSubscriber(url: string): Promise<{ client: MqttClient; count: () => number }> {
  let n = 0;
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: "bench-bare", clean: true });
  client.on("message", () => n++);
  await client.subscribeAsync("catprobe/v1/results/+/+", { qos: 1 });
  return { client, count: () => n };
}

export async function benchCollector(ratios: Ratios): Promise<void> {
  console.log(`collector ingest through Mosquitto (${MESSAGES} results, QoS 1, median of ${ROUNDS} interleaved rounds)`);
  const broker = await Mosquitto.start();
  const dir = mkdtempSync(join(tmpdir(), "catprobe-bench-"));
  const ours: number[] = [];
  const bare: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const collector = await startCollector({ broker: broker.url, http: "127.0.0.1:0", db: join(dir, `c${round}.db`) });
    let storedCount = 0;
    const poll = setInterval(async () => {
      storedCount = (await collector.store.db.get<{ n: number }>("SELECT count(*) AS n FROM results"))!.n;
    }, 20);
    ours.push(await ingestRate(broker.url, round * 2, () => storedCount));
    clearInterval(poll);
    await collector.close();

    const sub = await bareSubscriber(broker.url);
    bare.push(await ingestRate(broker.url, round * 2 + 1, sub.count));
    await sub.client.endAsync();
  }
  await broker.stop();
  console.log(`  catprobe collector (validate, dedupe, SQLite, ack after commit)  ${median(ours).toFixed(0).padStart(7)} results/s`);
  console.log(`  bare mqtt.js subscriber (count only)                             ${median(bare).toFixed(0).padStart(7)} results/s`);
  ratios.addValue("collector-ingest/bare-subscriber", median(ours) / median(bare));

  console.log("/api/top-errors over 1,000,000 stored results (spread over 7 days, 50 probes, 10 tasks)");
  const store = await openStore(join(dir, "million.db"));
  const now = Date.now();
  const codes = [null, null, null, 600, 601, 603, 607, 607, 608, 609];
  for (let batch = 0; batch < 100; batch++) {
    await store.add(Array.from({ length: 10_000 }, (_, i) => {
      const n = batch * 10_000 + i;
      return record(`p${n % 50}`, `t${n % 10}`, now - Math.floor((n / 1_000_000) * 7 * 86_400_000), codes[n % 10]);
    }));
  }
  for (const [label, ms, task] of [["1h", 3_600_000, undefined], ["24h", 86_400_000, undefined], ["7d", 7 * 86_400_000, undefined], ["7d, one task", 7 * 86_400_000, "t3"]] as const) {
    const times: number[] = [];
    let total = 0;
    for (let i = 0; i < 21; i++) {
      const t0 = performance.now();
      total = (await topErrors(store, { from: now - ms + 1234, to: now + 1, task })).total;
      times.push(performance.now() - t0);
    }
    console.log(`  window ${label.padEnd(13)} ${String(total).padStart(8)} results   median ${median(times).toFixed(2).padStart(7)} ms   max ${Math.max(...times).toFixed(2)} ms`);
  }
  await store.close();
}
