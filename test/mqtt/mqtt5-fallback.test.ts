// A client asked for MQTT 5 falls back to 3.1.1 by itself where the broker refuses 5, and logs
// it once: against a real nats-server (2.9 speaks 3.1.1 only), with a real Mosquitto keeping 5.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector } from "../../host/collector/collector.js";
import { connectBrokers } from "../../host/mqtt-client/broker-list.js";
import { fallBackToMqtt311 } from "../../host/mqtt-client/mqtt5-fallback.js";
import { Publisher } from "../../host/mqtt/publisher.js";
import { Spool } from "../../host/mqtt/spool.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { field, packet, session, varint } from "../helpers/mqtt-wire.js";
import { NatsCluster } from "../helpers/nats.js";
import { record } from "../helpers/records.js";
import { storedIds } from "../helpers/stored-ids.js";
import { until } from "../helpers/until.js";

const dir = mkdtempSync(join(tmpdir(), "catprobe-fallback-"));
let nats: NatsCluster;
let mosquitto: Mosquitto;

beforeAll(async () => {
  [nats, mosquitto] = await Promise.all([NatsCluster.start(1), Mosquitto.start()]);
});
afterAll(async () => {
  await Promise.all([nats?.stop(), mosquitto?.stop()]);
});

const REFUSED = "mqtt: the broker refuses MQTT 5 (CONNACK code 1); using MQTT 3.1.1";

/** A v5 client with a v5-only property, through the same two modules the probe and collector use. */
async function v5Client(url: string): Promise<{ client: MqttClient; log: string[] }> {
  const log: string[] = [];
  const client = connectBrokers(url, { protocolVersion: 5, reconnectPeriod: 100, properties: { receiveMaximum: 100 } }, (l) => log.push(l));
  fallBackToMqtt311(client, (l) => log.push(l));
  await until(() => client.connected, `a connection to ${url}`);
  return { client, log };
}

describe("MQTT 5 → 3.1.1", () => {
  it("nats-server refuses a v5 CONNECT with a 3.1.1 CONNACK, return code 1, and closes the connection", async () => {
    const v5Connect = packet(0x10, Buffer.concat([field("MQTT"), Buffer.from([5, 0x02, 0, 60]), varint(0), field("catprobe-v5-knock")]));
    expect(await session(nats.nodes[0].ports.mqtt, v5Connect, 0)).toEqual({ connack: 1, pubacks: 0 });
  });

  it("falls back once against NATS, without the v5 properties, and stays on 3.1.1 across reconnects", async () => {
    const { client, log } = await v5Client(nats.nodes[0].url);
    try {
      expect(client.options.protocolVersion).toBe(4);
      expect(client.options.properties).toBeUndefined();
      client.stream.destroy(); // a lost connection: the next CONNECT is 3.1.1 at once
      await until(() => log.filter((l) => l.startsWith("mqtt: connected to ")).length === 2, "the reconnect");
      expect(log.filter((l) => l.startsWith("mqtt: the broker refuses"))).toEqual([`${REFUSED}, without the v5 properties receiveMaximum`]);
    } finally {
      await client.endAsync(true);
    }
  });

  it("connects again to the node that refused 5, not the next one of a list", async () => {
    // Mosquitto would take the client's 3.1.1 CONNECT as well: landing there means it moved on.
    const { client, log } = await v5Client(`${nats.nodes[0].url},${mosquitto.url}`);
    try {
      expect(log.filter((l) => l.startsWith("mqtt: connected to "))).toEqual([`mqtt: connected to ${nats.nodes[0].url} (one of 2)`]);
    } finally {
      await client.endAsync(true);
    }
  });

  it("keeps MQTT 5 where the broker speaks it (Mosquitto)", async () => {
    const { client, log } = await v5Client(mosquitto.url);
    try {
      expect(client.options.protocolVersion).toBe(5);
      expect(log).toEqual([`mqtt: connected to ${mosquitto.url}`]);
    } finally {
      await client.endAsync(true);
    }
  });

  it("lets a collector and a --mqtt5 probe work on NATS: the result stored, each fallback logged once", async () => {
    const collectorLog: string[] = [];
    const probeLog: string[] = [];
    const collector = await startCollector({ broker: nats.nodes[0].url, http: "127.0.0.1:0", db: join(dir, "c.db"), log: (l) => collectorLog.push(l) });
    const publisher = new Publisher({
      brokerUrl: nats.nodes[0].url, probe: "edge-v5", spool: new Spool(join(dir, "edge-v5.db")), protocolVersion: 5, log: (l) => probeLog.push(l),
    });
    try {
      publisher.publish({ ...record("edge-v5", "t", Date.now(), null), address: null });
      await publisher.drain(20_000);
      await until(() => storedIds(join(dir, "c.db")).length === 1, "the result stored");
      expect(collectorLog.filter((l) => l.startsWith(REFUSED))).toEqual([
        `${REFUSED}, without the v5 properties receiveMaximum, sessionExpiryInterval, maximumPacketSize`,
      ]);
      expect(probeLog.filter((l) => l.startsWith(REFUSED))).toEqual([REFUSED]);
    } finally {
      await publisher.close();
      await collector.close();
    }
  });

  it("stops a --share collector at start where the broker has no MQTT 5 (no $share either)", async () => {
    await expect(startCollector({ broker: nats.nodes[0].url, http: "127.0.0.1:0", db: join(dir, "share.db"), shareGroup: "g" }))
      .rejects.toThrow(`cannot connect to MQTT broker ${nats.nodes[0].url}: Connection refused: Unacceptable protocol version: --share needs MQTT 5 shared subscriptions`);
  });
});
