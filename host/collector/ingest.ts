// The collector's MQTT side: subscribes to results with QoS 1 and a persistent session, checks
// every message, stores what is valid, counts what is not, and acknowledges each message only
// after its records are committed — so a collector killed at any moment loses nothing the
// broker considers delivered.

import mqtt, { type MqttClient } from "mqtt";
import type { CollectorMetrics } from "./metrics.js";
import { parseMessage, type StoredRecord } from "./record.js";
import type { Store } from "./store.js";

export const RESULTS_TOPIC = "catprobe/v1/results/+/+";
export const DROPPED_TOPIC = "catprobe/v1/dropped/+";
/** Records committed in one transaction at most. */
const MAX_BATCH_RECORDS = 2000;

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
  /** 4 (MQTT 3.1.1, the default; the embedded broker speaks only this) or 5, which lets the
   * collector ask the broker for up to 1000 unacknowledged messages in flight instead of its
   * v3 default (Mosquitto: 20), so batches are not starved while their commit is pending */
  protocolVersion?: 4 | 5;
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
    protocolVersion: opts.protocolVersion ?? 4, // aedes speaks 3.1.1 only
    // v5 ends a session at disconnect unless told otherwise: keep it, so results queue while away
    properties: opts.protocolVersion === 5 ? { receiveMaximum: 1000, sessionExpiryInterval: 0xffffffff } : undefined,
    reconnectPeriod: 500,
    username: opts.username,
    password: opts.password,
    ca: opts.ca,
    resubscribe: true,
  });
  client.on("error", (err) => log(`mqtt: ${err.message}`));
  client.on("reconnect", () => log("mqtt: reconnecting"));

  // Messages are validated as they arrive and their records committed in batches: one
  // transaction per burst (everything mqtt.js has parsed from the socket so far), or per
  // MAX_BATCH_RECORDS. The PUBACK of each message is held back until its batch is committed,
  // so the broker never hears "delivered" for a result that is not on disk yet.
  let batch: StoredRecord[] = [];
  let heldAcks: (() => void)[] = [];
  let flushScheduled = false;

  const flush = () => {
    flushScheduled = false;
    const records = batch;
    const acks = heldAcks;
    batch = [];
    heldAcks = [];
    let added: StoredRecord[];
    try {
      added = opts.store.add(records);
    } catch (err) {
      // Not stored, so not acknowledged: drop the connection and let the broker deliver again.
      log(`cannot store ${records.length} results (${(err as Error).message}); reconnecting for re-delivery`);
      client.stream?.destroy();
      return;
    }
    const now = Date.now();
    for (const r of added) opts.metrics.stored(r, now);
    opts.metrics.duplicate(records.length - added.length);
    for (const ack of acks) ack();
    if (added.length) opts.onStored?.(added.length);
  };

  const accept = (topic: string, payload: Buffer) => {
    if (topic.startsWith("catprobe/v1/dropped/")) {
      const report = JSON.parse(payload.toString()) as { probe?: unknown; total?: unknown };
      if (typeof report.probe === "string" && Number.isInteger(report.total)) {
        opts.store.setDropped(report.probe, report.total as number);
        opts.metrics.droppedByProbes(report.total as number);
      }
      return;
    }
    const { records, rejected } = parseMessage(topic, payload);
    for (const r of rejected) {
      opts.metrics.reject(r.reason);
      logReject(r.reason, topic, r.detail);
    }
    for (const r of records) batch.push(r);
  };

  client.handleMessage = (packet, done) => {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    try {
      accept(packet.topic, payload);
    } catch (err) {
      // A message that cannot be handled must not stall the session: count it, acknowledge it.
      opts.metrics.reject("bad_record");
      logReject("bad_record", packet.topic, (err as Error).message);
    }
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
    done(); // on to the next packet; its PUBACK waits for the flush (below)
    if (batch.length >= MAX_BATCH_RECORDS) flush();
  };

  // mqtt.js sends a QoS 1 PUBACK through _sendPacket right after handleMessage's callback; hold
  // it until the batch it belongs to is committed. (mqtt is pinned: this is internal API.)
  const internals = client as unknown as { _sendPacket(packet: { cmd: string }, cb?: () => void, ...rest: unknown[]): void };
  const sendPacket = internals._sendPacket.bind(client);
  internals._sendPacket = (packet, cb, ...rest) => {
    if (packet.cmd !== "puback" || !flushScheduled) return sendPacket(packet, cb, ...rest);
    heldAcks.push(() => sendPacket(packet, undefined, ...rest));
    cb?.(); // processing continues; the acknowledgement itself goes out after the commit
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
