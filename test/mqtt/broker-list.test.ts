// A broker list becomes mqtt.js's `servers`, and mqtt.js (pinned) rotates through them: each
// connection attempt goes to the next node, wrapping round, whether the last one was refused
// or lost after it had connected. This fails if mqtt.js ever changes that.

import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { brokerServers, connectBrokers } from "../../host/mqtt-client/broker-list.js";
import { tcpServer, type TestServer } from "../helpers/tcp.js";
import { until } from "../helpers/until.js";

describe("brokerServers", () => {
  it("gives each URL's host, port (or its scheme's default) and scheme, in order", () => {
    expect(brokerServers("mqtt://a:1, mqtts://b,ws://[::1]:3/mqtt,wss://d/mqtt,mqtt://e")).toEqual([
      { host: "a", port: 1, protocol: "mqtt" },
      { host: "b", port: 8883, protocol: "mqtts" },
      { host: "::1", port: 3, protocol: "ws" },
      { host: "d", port: 443, protocol: "wss" },
      { host: "e", port: 1883, protocol: "mqtt" },
    ]);
  });
});

describe("connectBrokers", () => {
  const CONNACK_ACCEPTED = Buffer.from([0x20, 0x02, 0x00, 0x00]);
  /** The order in which the three nodes were reached, by index. */
  const reached: number[] = [];
  const sockets: Socket[] = [];
  let nodes: TestServer[];
  beforeAll(async () => {
    // Node 1 refuses at once (closes the socket); nodes 0 and 2 accept the CONNECT.
    nodes = await Promise.all([0, 1, 2].map((i) => tcpServer((socket) => {
      reached.push(i);
      if (i === 1) return socket.destroy();
      sockets.push(socket);
      socket.once("data", () => socket.write(CONNACK_ACCEPTED));
    })));
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()));
  });

  it("moves to the next node each time it connects again, and logs the node it is on", async () => {
    const lines: string[] = [];
    const list = nodes.map((n) => `mqtt://127.0.0.1:${n.port}`).join(",");
    const client = connectBrokers(list, { protocolVersion: 4, reconnectPeriod: 20 }, (line) => lines.push(line));
    try {
      await until(() => lines.length === 1, "the first connect");
      sockets.shift()!.destroy(); // node 0 lost: on to node 1, which refuses, then node 2
      await until(() => lines.length === 2, "the second connect");
      sockets.shift()!.destroy(); // node 2 lost: round to node 0
      await until(() => lines.length === 3, "the third connect");
      expect(reached).toEqual([0, 1, 2, 0]);
      expect(lines).toEqual([0, 2, 0].map((i) => `mqtt: connected to mqtt://127.0.0.1:${nodes[i].port} (one of 3)`));
    } finally {
      await client.endAsync(true);
    }
  });
});
