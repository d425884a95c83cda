// Publishing in tests as the probe a topic belongs to: the embedded broker lets probe P publish
// only under P's own topics, with the client id catprobe-probe-P (and P's password, if any).

import mqtt, { type MqttClient } from "mqtt";
import { probeClientId } from "../../host/wire/id.js";

/** The probe level of a catprobe topic (results, status, dropped, config), or undefined. */
function probeOf(topic: string): string | undefined {
  return /^catprobe\/v1\/(?:results|status|dropped|config)\/([^/]+)/.exec(topic)?.[1];
}

/** One MQTT 3.1.1 client per probe, connected on first use. */
export class ProbeClients {
  private readonly clients = new Map<string, Promise<MqttClient>>();

  /** `passwordOf` gives a probe's password where the broker has a password file. */
  constructor(private readonly url: string, private readonly passwordOf?: (probe: string) => string) {}

  as(probe: string): Promise<MqttClient> {
    let client = this.clients.get(probe);
    if (!client) {
      const password = this.passwordOf?.(probe);
      client = mqtt.connectAsync(this.url, {
        protocolVersion: 4, clientId: probeClientId(probe), reconnectPeriod: 0,
        ...(password === undefined ? {} : { username: probe, password }),
      });
      this.clients.set(probe, client);
    }
    return client;
  }

  /** Publishes at QoS 1 as the probe the topic names. */
  async publish(topic: string, payload: string | Buffer): Promise<void> {
    const probe = probeOf(topic);
    if (!probe) throw new Error(`no probe in topic ${topic}`);
    await (await this.as(probe)).publishAsync(topic, payload, { qos: 1 });
  }

  async end(): Promise<void> {
    await Promise.all([...this.clients.values()].map(async (c) => (await c).endAsync()));
    this.clients.clear();
  }
}
