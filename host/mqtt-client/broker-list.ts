// A broker cluster given as one `--broker` value, "URL,URL,…" (checked by cli/broker-url.ts).
// mqtt.js 5.16 rotates through its `servers` option itself: each connection attempt (the stream
// builder in its connect/index.ts) takes the next entry's host, port and protocol, wrapping
// round, and the first URL lends its path, credentials and query to all. So a client whose
// broker is lost tries the next one at its next reconnect, and one that reaches none goes round
// the list, one node per reconnectPeriod. test/mqtt/broker-list.test.ts fails if that changes.

import mqtt, { type IClientOptions, type MqttClient } from "mqtt";

type Server = NonNullable<IClientOptions["servers"]>[number];

/** mqtt.js's stream builders' own defaults, written out so each entry names its port. */
const DEFAULT_PORTS: Record<string, number> = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 };

/** The entries of a list of broker URLs, in its order. */
export function brokerServers(list: string): Server[] {
  return list.split(",").map((item) => {
    const url = new URL(item.trim());
    const protocol = url.protocol.slice(0, -1) as Server["protocol"] & string;
    return { host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port: Number(url.port) || DEFAULT_PORTS[protocol], protocol };
  });
}

/** The broker an mqtt.js client is connecting or connected to, as a URL. */
export function currentBroker(client: MqttClient): string {
  const { protocol, host, port } = client.options;
  return `${protocol}://${host?.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * A client for a list of broker URLs: it connects to the first and moves on to the next each
 * time it has to connect again, and logs which broker it is on at every connect.
 */
export function connectBrokers(list: string, options: IClientOptions, log: (line: string) => void): MqttClient {
  const servers = brokerServers(list);
  const client = mqtt.connect(list.split(",")[0].trim(), { ...options, servers });
  const of = servers.length > 1 ? ` (one of ${servers.length})` : "";
  client.on("connect", () => log(`mqtt: connected to ${currentBroker(client)}${of}`));
  // mqtt.js's TLS builder sets servername from the first host only, and then keeps it: the next
  // node's certificate would be checked against the first node's name.
  client.on("reconnect", () => delete client.options.servername);
  return client;
}
