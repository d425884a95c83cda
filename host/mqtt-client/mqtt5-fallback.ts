// MQTT 5 asked for, 3.1.1 spoken where the broker has no 5. nats-server 2.9 answers a v5
// CONNECT with a 3.1.1 CONNACK, return code 1 "unacceptable protocol version", and closes the
// socket (bytes 20 02 00 01; test/mqtt/mqtt5-fallback.test.ts); MQTT 3.1.1 says that is the
// answer of any 3.1.1-only broker (RabbitMQ 3.10's plugin too, not tried here), and a v5 broker
// that refuses 5 says 0x84. Either way the client switches to 3.1.1 for good, without the
// v5-only CONNECT properties, and connects again to the same node: a list's first node is
// the one its user chose (host/mqtt-client/broker-list.ts).

import type { MqttClient } from "mqtt";

/** CONNACK codes that mean "not this protocol version": 3.1.1's return code 1, MQTT 5's 0x84. */
const VERSION_REFUSED = new Set([1, 0x84]);

/** The refusals fallBackToMqtt311 answered: not failures, for callers that fail on a first error. */
const answered = new WeakSet<Error>();

export const fellBack = (err: Error) => answered.has(err);

/** Makes a client that asks for MQTT 5 fall back to 3.1.1 when its broker refuses 5; logs it once. */
export function fallBackToMqtt311(client: MqttClient, log: (line: string) => void): void {
  const onError = (err: Error & { code?: unknown }) => {
    if (client.options.protocolVersion !== 5 || !VERSION_REFUSED.has(err.code as number)) return;
    answered.add(err);
    client.removeListener("error", onError);
    const dropped = Object.keys(client.options.properties ?? {});
    log(`mqtt: the broker refuses MQTT 5 (CONNACK code ${String(err.code)}); using MQTT 3.1.1` +
      (dropped.length ? `, without the v5 properties ${dropped.join(", ")}` : ""));
    client.options.protocolVersion = 4;
    delete client.options.properties;
    retrySameNode(client);
    // mqtt.js stops for good after a refused CONNACK unless told to reconnect; this once only.
    const reconnectOnConnackError = client.options.reconnectOnConnackError;
    client.options.reconnectOnConnackError = true;
    client.once("reconnect", () => (client.options.reconnectOnConnackError = reconnectOnConnackError));
  };
  client.on("error", onError);
}

/**
 * mqtt.js 5.16 (pinned) picks a list's node by `_reconnectCount`, counted up at each attempt
 * (its connect/index.ts); counting it back makes the next attempt the same node.
 * test/mqtt/mqtt5-fallback.test.ts fails if that changes.
 */
function retrySameNode(client: MqttClient): void {
  const internals = client as unknown as { _reconnectCount?: unknown };
  if (client.options.servers && typeof internals._reconnectCount === "number" && internals._reconnectCount > 0) {
    internals._reconnectCount -= 1;
  }
}
