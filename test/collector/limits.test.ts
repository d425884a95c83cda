// What the collector takes from the wire, and what it refuses: packets over the size limit (the
// embedded broker closes the connection at the header; an external broker is asked not to send
// them), dropped-result reports (running totals, never summed; forged ones refused), records
// without the timings a device does not measure, labels and TLS facts kept, log lines free of
// control characters, and a start under load that loses nothing.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { MAX_MESSAGE_BYTES } from "../../host/wire/record.js";
import { resultTopic, droppedTopic } from "../../host/wire/topics.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { record } from "../helpers/records.js";
import { connectPacket, field, publishPacket, varint } from "../helpers/mqtt-wire.js";
import { ProbeClients } from "../helpers/probe-clients.js";
import { probeClientId } from "../../host/wire/id.js";
import { closedPort } from "../helpers/tcp.js";
import { until } from "../helpers/until.js";

const dbFile = () => join(mkdtempSync(join(tmpdir(), "catprobe-limits-")), "c.db");

const storedCount = async (c: Collector, probe: string) =>
  (await c.store.db.get<{ n: number }>("SELECT count(*) AS n FROM results WHERE probe = ?", [probe]))!.n;

/**
 * A raw MQTT 3.1.1 client that declares a PUBLISH of `declared` bytes and streams its body until
 * the broker closes the connection; resolves with the body bytes written by then.
 */
function publishHuge(port: number, declared: number): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let written = 0;
    let closed = false;
    socket.on("error", () => {});
    socket.on("close", () => {
      closed = true;
      resolve(written);
    });
    socket.once("data", () => { // CONNACK
      const topic = field(resultTopic("p-huge", "t"));
      socket.write(Buffer.concat([Buffer.from([0x30]), varint(topic.length + declared), topic]));
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!closed && written < declared) {
          written += chunk.length;
          if (!socket.write(chunk)) return void socket.once("drain", pump);
        }
      };
      pump();
    });
    socket.write(connectPacket(probeClientId("huge-sender")));
  });
}

describe("on the embedded broker", () => {
  let collector: Collector;
  let clients: ProbeClients;
  const logged: string[] = [];

  beforeAll(async () => {
    collector = await startCollector({
      mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: dbFile(), log: (line) => logged.push(line),
    });
    clients = new ProbeClients(collector.brokerUrl);
  });
  afterAll(async () => {
    await clients?.end();
    await collector?.close();
  });

  it("closes a connection at the header of a packet over the limit, before reading its body", async () => {
    const port = Number(new URL(collector.brokerUrl).port);
    const written = await publishHuge(port, 100 << 20);
    expect(written).toBeLessThan(16 << 20); // closed long before 100 MiB were taken in
    expect(await collector.metrics.rejectedCount("too_large")).toBe(1);
    // others carry on
    await clients.publish(resultTopic("p-huge", "t"), JSON.stringify(record("p-huge", "t", Date.now(), null)));
    await until(async () => await storedCount(collector, "p-huge") === 1, "the next result");
  });

  it("keeps the highest dropped total of a probe, never a sum, and refuses forged reports", async () => {
    const report = (probe: string, total: unknown, on = probe) =>
      clients.publish(droppedTopic(on), JSON.stringify({ probe, total }));
    for (let i = 0; i < 4; i++) await report("edge-d", 77); // re-sent at every connect
    await report("edge-d", 50); // an older report arriving late
    await report("edge-d", 1e300);
    await report("edge-d", 5000, "edge-other"); // a report about another probe
    await report("edge-d", -3);
    await until(async () => (await collector.metrics.rejectedCount("bad_record")) >= 2, "the forged reports");
    expect(await collector.metrics.rejectedCount("topic_mismatch")).toBe(1);
    const dropped = await (await fetch(`${collector.httpUrl}/api/dropped`)).json();
    expect(dropped).toEqual([{ probe: "edge-d", total: 77 }]);
    const metrics = await (await fetch(`${collector.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^catprobe_probe_dropped_results_total 77$/m);
  });

  it("stores records without the timings a device does not measure, and keeps labels and TLS facts", async () => {
    const now = Date.now();
    const bare = { ...record("edge-mcu", "t", now, 607), timings: { totalMs: 12.5 } };
    const tls = { version: "TLSv1.3", subject: "mqtt.example", issuer: "Example CA", notAfter: "2027-01-01T00:00:00.000Z", daysLeft: 30 };
    const rich = { ...record("edge-mcu", "t", now, null), labels: { site: "工厂-3", room: "B" }, tls };
    await clients.publish(resultTopic("edge-mcu", "t"), JSON.stringify([bare, rich]));
    await until(async () => await storedCount(collector, "edge-mcu") === 2, "both records");
    const rows = await collector.store.db.all<{ id: string; dns_ms: number | null; total_ms: number; labels: string | null; tls: string | null }>(
      "SELECT id, dns_ms, total_ms, labels, tls FROM results WHERE probe = 'edge-mcu'");
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(byId.get(bare.id)).toMatchObject({ dns_ms: null, total_ms: 12.5, labels: null, tls: null });
    expect(JSON.parse(byId.get(rich.id)!.labels!)).toEqual({ site: "工厂-3", room: "B" });
    expect(JSON.parse(byId.get(rich.id)!.tls!)).toEqual(tls);
  });

  it("writes no control characters from the wire into its log", async () => {
    const evil = "p1\u001b[2J\u001b]0;owned\u0007\r\nfake line\u202e";
    // a publish no probe may make (denied by the broker), then a bad record (rejected by the collector)
    const port = Number(new URL(collector.brokerUrl).port);
    const socket = connect(port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write(Buffer.concat([connectPacket("catprobe-probe-p1"), publishPacket(`catprobe/v1/results/${evil}/t`, "{}", 1)]));
    await clients.publish(resultTopic("p1", "t"), `{"v":1,"id":"\u001b[31mred","probe":"p1"}`);
    await until(() => logged.some((l) => l.startsWith("rejected")) && logged.some((l) => l.startsWith("denied")), "the denial and the rejection in the log");
    socket.destroy();
    for (const line of logged) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/);
    expect(logged.join("\n")).toContain("\\u001b[2J");
  });
});

describe("through Mosquitto", () => {
  it("asks the broker (MQTT 5) not to send packets over the limit", async () => {
    // Mosquitto's defaults: no packet limit of its own (the shipped configuration has one)
    const mosquitto = await Mosquitto.start({ config: "defaults" });
    const collector = await startCollector({ broker: mosquitto.url, http: "127.0.0.1:0", db: dbFile() });
    const client = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 4, clientId: probeClientId("p-big") });
    try {
      await client.publishAsync(resultTopic("p-big", "t"), Buffer.alloc(2 * MAX_MESSAGE_BYTES, 0x20), { qos: 1 });
      await client.publishAsync(resultTopic("p-big", "t"), JSON.stringify(record("p-big", "t", Date.now(), null)), { qos: 1 });
      await until(async () => await storedCount(collector, "p-big") === 1, "the small result");
      // Mosquitto did not deliver it: the collector would have read it whole and counted it
      expect(await collector.metrics.rejectedCount("too_large")).toBe(0);
    } finally {
      await client.endAsync();
      await collector.close();
      await mosquitto.stop();
    }
  });
});

/** Eager publishers in their own processes (test/fixtures/eager-publisher.ts), each retrying. */
async function eagerPublishers(port: number, clients: number, each: number):
  Promise<{ acked: Promise<string[]>; stop(): void }> {
  const now = Date.now();
  const children = Array.from({ length: clients }, (_, c) => {
    const probe = `eager-${c}`;
    const records = Array.from({ length: each }, () => JSON.stringify(record(probe, "t", now, null)));
    const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/eager-publisher.ts", String(port), probeClientId(probe),
      resultTopic(probe, "t"), ...records], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    const retrying = once(child.stderr!, "data");
    const acked = once(child, "exit").then(() => out.split("\n").filter(Boolean));
    return { child, retrying, acked };
  });
  await Promise.all(children.map((c) => c.retrying));
  return {
    acked: Promise.all(children.map((c) => c.acked)).then((ids) => ids.flat()),
    stop: () => children.forEach((c) => c.child.kill()),
  };
}

describe("a collector starting while probes publish", () => {
  it("stores every result the embedded broker acknowledged, also those of its first moments", async () => {
    const port = await closedPort();
    const eager = await eagerPublishers(port, 4, 10); // all retrying now
    const collector = await startCollector({ mqttListen: `127.0.0.1:${port}`, http: "127.0.0.1:0", db: dbFile() });
    try {
      expect(await eager.acked).toHaveLength(40);
      const stored = async () => (await Promise.all([0, 1, 2, 3].map((c) => storedCount(collector, `eager-${c}`)))).reduce((a, b) => a + b);
      await until(async () => await stored() === 40, "40 stored");
    } finally {
      eager.stop();
      await collector.close();
    }
  });
});
