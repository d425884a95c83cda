// Two collectors sharing one PostgreSQL database and splitting one stream (`--share`, an MQTT 5
// shared subscription on a real Mosquitto), each a `catprobe collector` process: both APIs
// answer the same exact figures, and one SIGKILLed and restarted while probes publish loses
// nothing and counts nothing twice.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../host/collector/store.js";
import { resultTopic } from "../../host/wire/topics.js";
import { refusedPort } from "../../simulator/servers/tcp.js";
import { newDatabase } from "../helpers/databases.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { record } from "../helpers/records.js";
import { until } from "../helpers/until.js";

const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

/** `catprobe collector` on `port`, resolved once it serves; its HTTP address fixes its MQTT client id. */
async function collector(broker: string, db: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["bin/catprobe.js", "collector", "--broker", broker, "--db", db,
    "--http", `127.0.0.1:${port}`, "--share", "g"], { stdio: ["ignore", "pipe", "inherit"] });
  cleanup.push(() => child.kill("SIGKILL"));
  let out = "";
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  await until(() => out.includes("dashboard and API at") || child.exitCode !== null, `the collector on ${port}`, 30_000);
  if (child.exitCode !== null) throw new Error(`collector on ${port} exited ${child.exitCode}: ${out}`);
  return child;
}

describe("two collectors on one PostgreSQL database", () => {
  it("answer the same exact figures; one killed and restarted mid-stream loses and doubles nothing", async () => {
    const mosquitto = await Mosquitto.start();
    cleanup.push(() => mosquitto.stop());
    const db = await newDatabase("postgres");
    const [portA, portB] = [await refusedPort(), await refusedPort()];
    let a = await collector(mosquitto.url, db, portA);
    await collector(mosquitto.url, db, portB);

    const publisher = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 4, clientId: "shared-publisher" });
    cleanup.push(() => publisher.endAsync());
    const start = Date.now();
    const codes = [null, null, null, 601, 603, 607, 607, 609];
    const sent = Array.from({ length: 3000 }, (_, i) => record(`edge-${i % 6}`, `t${i % 4}`, start + i, codes[i % codes.length]));
    for (let round = 0; round < 30; round++) {
      if (round === 10) {
        a.kill("SIGKILL"); // mid-stream: commits and PUBACKs of the last messages cut off
        await once(a, "exit");
      }
      if (round === 20) a = await collector(mosquitto.url, db, portA);
      await Promise.all(sent.slice(round * 100, round * 100 + 100)
        .map((r) => publisher.publishAsync(resultTopic(r.probe, r.task), JSON.stringify(r), { qos: 1 })));
      await new Promise((r) => setTimeout(r, 20));
    }

    const store = await openStore(db);
    cleanup.push(() => store.close());
    const count = async (sql: string) => (await store.db.get<{ n: number }>(sql))!.n;
    await until(async () => await count("SELECT count(*) AS n FROM results") === sent.length, "every result stored", 30_000);
    expect(await count("SELECT sum(n) AS n FROM minutes")).toBe(sent.length);
    expect(await count("SELECT sum(n) AS n FROM hours")).toBe(sent.length);

    const window = `from=${start - 60_000}&to=${start + 3_600_000}`;
    const answers = async (path: string) => Promise.all([portA, portB].map(async (port) =>
      (await fetch(`http://127.0.0.1:${port}${path}?${window}`)).json()));
    const [topA, topB] = await answers("/api/top-errors");
    expect(topA).toEqual(topB);
    const failures = sent.filter((r) => r.code !== null);
    expect(topA).toMatchObject({ total: sent.length, failed: failures.length });
    const want = new Map<number, number>();
    for (const r of failures) want.set(r.code!, (want.get(r.code!) ?? 0) + 1);
    expect(topA.top.map((e: { code: number; count: number }) => [e.code, e.count]))
      .toEqual([...want].sort((x, y) => y[1] - x[1] || x[0] - y[0]));
    const [summaryA, summaryB] = await answers("/api/summary");
    expect(summaryA).toEqual(summaryB);
    expect(summaryA.probes.map((p: { total: number }) => p.total)).toEqual(Array(6).fill(500));
    // both took a share of the stream (A since its restart)
    for (const port of [portA, portB]) {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const stored = [...text.matchAll(/^catprobe_results_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      expect(stored, `results stored by the collector on ${port}`).toBeGreaterThan(0);
    }
  }, 120_000);
});
