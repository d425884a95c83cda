// The collector's MQTT side: subscribes to results with QoS 1 and a persistent session, checks
// every message, stores what is valid, counts what is not, and acknowledges each message only
// after its records are committed — so a collector killed at any moment loses nothing the
// broker considers delivered.

import mqtt, { type MqttClient } from "mqtt";
import type { CollectorMetrics } from "./metrics.js";
import { parseMessage } from "./record.js";
import type { Store } from "./store.js";

export const RESULTS_TOPIC = "catprobe/v1/results/+/+";
export const DROPPED_TOPIC = "catprobe/v1/dropped/+";

export interface IngestOptions {
  brokerUrl: string;
  /** fixed, so the broker keeps the session (and queues results) while the collector is away */
  clientId: string;
  /** subscribe as `$share/<group>/…` so several collectors split the load */
  shareGroup?: string;
  username?: string;
  password?: string;
  /** CA file contents for mqtts:// */
  ca?: Buffer;
  store: Store;
  metrics: CollectorMetrics;
  /** called after records were stored, with how many were new */
  onStored?: (added: number) => void;
  log?: (line: string) => void;
}

/** Logs the first rejections of each reason, then every thousandth: bad input cannot flood the log. */
function rejectionLogger(log: (line: string) => void) {
  const seen = new Map<string, number>();
  return (reason: string, topic: string, detail: string) => {
    const n = (seen.get(reason) ?? 0) + 1;
    seen.set(reason, n);
    if (n <= 5 || n % 1000 === 0) log(`rejected (${reason}, #${n}) on ${topic.slice(0, 120)}: ${detail.slice(0, 200)}`);
  };
}

export async function startIngest(opts: IngestOptions): Promise<MqttClient> {
  const log = opts.log ?? (() => {});
  const logReject = rejectionLogger(log);
  const client = mqtt.connect(opts.brokerUrl, {
    clientId: opts.clientId,
    clean: false,
    protocolVersion: 4, // aedes and every broker speak 3.1.1
    reconnectPeriod: 500,
    username: opts.username,
    password: opts.password,
    ca: opts.ca,
    resubscribe: true,
  });
  client.on("error", (err) => log(`mqtt: ${err.message}`));
  client.on("reconnect", () => log("mqtt: reconnecting"));

  // Runs for each incoming message; mqtt.js sends the PUBACK once `done` is called.
  client.handleMessage = (packet, done) => {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    try {
      if (packet.topic.startsWith("catprobe/v1/dropped/")) {
        const report = JSON.parse(payload.toString()) as { probe?: unknown; total?: unknown };
        if (typeof report.probe === "string" && Number.isInteger(report.total)) {
          opts.store.setDropped(report.probe, report.total as number);
          opts.metrics.droppedByProbes(report.total as number);
        }
        return done();
      }
      const { records, rejected } = parseMessage(packet.topic, payload);
      for (const r of rejected) {
        opts.metrics.reject(r.reason);
        logReject(r.reason, packet.topic, r.detail);
      }
      const added = opts.store.add(records);
      const now = Date.now();
      for (const r of added) opts.metrics.stored(r, now);
      opts.metrics.duplicate(records.length - added.length);
      if (added.length) opts.onStored?.(added.length);
      done();
    } catch (err) {
      // A message that cannot be handled must not stall the session: count it, ack it.
      opts.metrics.reject("bad_record");
      logReject("bad_record", packet.topic, (err as Error).message);
      done();
    }
  };

  const prefix = opts.shareGroup ? `$share/${opts.shareGroup}/` : "";
  const topics = { [prefix + RESULTS_TOPIC]: { qos: 1 as const }, [prefix + DROPPED_TOPIC]: { qos: 1 as const } };
  // Started once the first subscription is in place, so nothing published afterwards is missed.
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => {
      client.end(true);
      reject(new Error(`cannot connect to MQTT broker ${opts.brokerUrl}: ${err.message}`));
    };
    client.once("error", fail);
    client.once("connect", (connack) => {
      client.off("error", fail);
      if (connack.sessionPresent) return resolve();
      client.subscribe(topics, (err) => (err ? reject(err) : resolve()));
    });
  });
  client.on("connect", (connack) => {
    if (!connack.sessionPresent) client.subscribe(topics, (err) => err && log(`mqtt: subscribe failed: ${err.message}`));
  });
  return client;
}
