// Where NATS 2.9's MQTT (nats-server 2.9.10) departs from catprobe's topics (host/wire/topics.ts)
// and ids (host/wire/id.ts, which allow "A-Z a-z 0-9 . _ -"), checked against a real server, so
// the README's broker limits stay true:
// - a "." in a topic (NATS maps "/" to "." in its subjects) closes the connection at the
//   PUBLISH: a probe or task id with "." cannot be published through NATS 2.9, and a probe would
//   send that result again after every connect, so its ids must keep to "A-Z a-z 0-9 _ -";
// - "$share/GROUP/…" is granted as a plain topic filter that no result matches.

import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeClientId } from "../../host/wire/id.js";
import { RESULTS_FILTER, resultTopic } from "../../host/wire/topics.js";
import { connectPacket, publishPacket, session } from "../helpers/mqtt-wire.js";
import { NatsCluster } from "../helpers/nats.js";
import { until } from "../helpers/until.js";

let nats: NatsCluster;

beforeAll(async () => {
  nats = await NatsCluster.start(1);
});
afterAll(async () => {
  await nats?.stop();
});

describe("nats-server 2.9's MQTT and catprobe's topics", () => {
  it("acknowledges ids of A-Z a-z 0-9 _ - and closes the connection at a '.' in a topic", async () => {
    const port = nats.nodes[0].ports.mqtt;
    const publish = (probe: string, task: string) =>
      session(port, Buffer.concat([connectPacket(probeClientId(probe)), publishPacket(resultTopic(probe, task), "{}", 1)]), 1);
    expect(await publish("Edge_7-b", "dns_A-1")).toEqual({ connack: 0, pubacks: 1 });
    expect(await publish("edge.7", "dns")).toEqual({ connack: 0, pubacks: 0 });
    expect(await publish("edge-7", "dns.a")).toEqual({ connack: 0, pubacks: 0 });
    expect(nats.nodes[0].log.join("")).toContain("characters ' ' and '.' not supported for MQTT topics");
  });

  it("takes a $share/… filter for a plain topic: results published as usual never reach it", async () => {
    const shared = await mqtt.connectAsync(nats.nodes[0].url, { protocolVersion: 4, clientId: "catprobe-test-shared" });
    const publisher = await mqtt.connectAsync(nats.nodes[0].url, { protocolVersion: 4, clientId: "catprobe-test-publisher" });
    try {
      const got: string[] = [];
      shared.on("message", (topic) => got.push(topic));
      expect(await shared.subscribeAsync(`$share/g/${RESULTS_FILTER}`, { qos: 1 })).toEqual([{ topic: `$share/g/${RESULTS_FILTER}`, qos: 1 }]);
      await publisher.publishAsync(resultTopic("edge-7", "dns"), "{}", { qos: 1 });
      await publisher.publishAsync(`$share/g/${resultTopic("edge-7", "dns")}`, "{}", { qos: 1 });
      // NATS keeps one connection's messages in order: had the first matched, it came first.
      await until(() => got.length > 0, "the message published on the literal topic");
      expect(got).toEqual([`$share/g/${resultTopic("edge-7", "dns")}`]);
    } finally {
      await Promise.all([shared.endAsync(), publisher.endAsync()]);
    }
  });
});
