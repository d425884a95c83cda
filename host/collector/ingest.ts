// The collector's MQTT side: subscribes to results with QoS 1 and a persistent session, checks
// every message, stores what is valid, counts what is not, and acknowledges each message only
// after its records are committed — so a collector killed at any moment loses nothing the
// broker considers delivered. Probes' statuses and dropped counts arrive on the same client.

import type { Duplex } from "node:stream";
import { MqttClient, type IClientOptions } from "mqtt";
import { connectBrokers } from "../mqtt-client/broker-list.js";
import { fallBackToMqtt311, fellBack } from "../mqtt-client/mqtt5-fallback.js";
import { printable } from "../text/printable.js";
import { countedLogger } from "./counted-log.js";
import { MAX_PACKET_BYTES } from "../wire/record.js";
import { parseStatus, type ReadStatus } from "../wire/status.js";
import { DROPPED_FILTER, RESULTS_FILTER, STATUS_FILTER, parseDroppedTopic, parseStatusTopic } from "../wire/topics.js";
import type { CollectorMetrics } from "./metrics.js";
import type { StoredRecord } from "../wire/record.js";
import { parseMessage, type RejectReason } from "../wire/validate.js";
import type { Store } from "./store.js";

/** Records committed in one transaction at most. */
export const MAX_BATCH_RECORDS = 2000;
/** Unacknowledged messages a v5 broker may send the collector (its default under v3: Mosquitto 20);
 * also the most PUBACKs held for the next batch while a commit is pending. */
export const RECEIVE_MAXIMUM = 1000;

export interface IngestOptions {
  /** the broker's URL, or a cluster's as a comma-separated list (host/mqtt-client/broker-list.ts), for
   * the log and for connecting unless `stream` is given */
  brokerUrl: string;
  /** a connection to a broker in this process (the embedded one), instead of the URL */
  stream?: () => Duplex;
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
   * v3 default (Mosquitto: 20), so batches are not starved while their commit is pending, and
   * for no packet over MAX_PACKET_BYTES; falls back to 4 where the broker refuses 5 */
  protocolVersion?: 4 | 5;
  store: Store;
  metrics: CollectorMetrics;
  /** called after records were stored, with how many were new */
  onStored?: (added: number) => void;
  /** called with each valid status (`retained`: one the broker kept, handed over at subscription) */
  onStatus?: (probe: string, status: ReadStatus, retained: boolean) => void | Promise<void>;
  log?: (line: string) => void;
}

/** Logs rejections through countedLogger: the topic and the detail, made printable. */
export function rejectionLogger(log: (line: string) => void) {
  const logged = countedLogger(log, "rejected");
  return (reason: string, topic: string, detail: string) => logged(reason, `on ${printable(topic, 120)}: ${printable(detail)}`);
}

type SendPacket = (packet: { cmd: string }, cb?: () => void, ...rest: unknown[]) => void;

/**
 * mqtt.js sends a QoS 1 PUBACK through its internal `_sendPacket` right after handleMessage's
 * callback, and offers no documented way to hold it without stalling the packets behind it.
 * mqtt is pinned; this fails at start if that method is gone, and test/collector/ack.test.ts
 * fails if a PUBACK ever leaves before its batch is committed.
 */
function internalSendPacket(client: MqttClient): { get: SendPacket; set(f: SendPacket): void } {
  const internals = client as unknown as { _sendPacket: SendPacket };
  if (typeof internals._sendPacket !== "function") {
    throw new Error("this mqtt.js version has no _sendPacket: acknowledge-after-commit cannot be guaranteed");
  }
  return { get: internals._sendPacket.bind(client), set: (f) => (internals._sendPacket = f) };
}

function connect(opts: IngestOptions, log: (line: string) => void): MqttClient {
  const options: IClientOptions = {
    clientId: opts.clientId,
    clean: false,
    protocolVersion: opts.protocolVersion ?? 4, // aedes speaks 3.1.1 only
    // v5 ends a session at disconnect unless told otherwise: keep it, so results queue while away
    properties: opts.protocolVersion === 5
      ? { receiveMaximum: RECEIVE_MAXIMUM, sessionExpiryInterval: 0xffffffff, maximumPacketSize: MAX_PACKET_BYTES }
      : undefined,
    reconnectPeriod: 500,
    username: opts.username,
    password: opts.password,
    ca: opts.ca,
    // startIngest subscribes at every connect itself and hears of a refusal; mqtt.js's own
    // resubscription sends its SUBSCRIBE without a callback, and leaves out of startIngest's
    // the filters it tracks, so a refusal at a reconnect went unheard
    resubscribe: false,
  };
  if (opts.stream) return new MqttClient(opts.stream, options);
  const client = connectBrokers(opts.brokerUrl, options, log);
  fallBackToMqtt311(client, log);
  return client;
}

export async function startIngest(opts: IngestOptions): Promise<MqttClient> {
  const log = opts.log ?? (() => {});
  const logReject = rejectionLogger(log);
  const reject = (reason: RejectReason, topic: string, detail: string) => {
    opts.metrics.reject(reason);
    logReject(reason, topic, detail);
  };
  const client = connect(opts, log);
  client.on("error", (err) => log(`mqtt: ${printable(err.message)}`));
  client.on("reconnect", () => log("mqtt: reconnecting"));

  // Messages are validated as they arrive and their records committed in batches. The PUBACK
  // of each message is held back until its batch is committed, so the broker never hears
  // "delivered" for a result that is not on disk yet. A commit costs about as much as a few
  // hundred inserts, so batches should be large: under v5 the broker keeps sending while acks
  // are held (up to RECEIVE_MAXIMUM), and a burst is gathered for `gatherMs`; under v3 a broker
  // may hold back after 20 unacknowledged messages, so each burst (everything mqtt.js has
  // parsed from the socket so far) is committed at once. Commits run one at a time: a batch
  // due while one is pending keeps gathering until it ends, then goes as one. The version is
  // the one spoken, read when a flush is scheduled: 4 after a fallback from 5 (mqtt5-fallback.ts).
  const gatherMs = () => (client.options.protocolVersion === 5 ? 5 : 0);
  let batch: StoredRecord[] = [];
  // Dropped counts and statuses being written, committed with the batch: each resolves to the
  // error that kept it from being written, if any.
  let writes: Promise<Error | void>[] = [];
  let heldAcks: (() => void)[] = [];
  let flushScheduled = false;
  let cancelGather = () => {};
  let committing = false;
  let flushDue = false;
  // Packets whose processing waits for the pending commit: a broker may send past the receive
  // maximum (Mosquitto 2.0.11 does after a burst of PUBACKs: 19,000 in flight seen against a
  // maximum of 1000), so a full next batch (of records, or of PUBACKs held) stops the reading
  // instead of growing without bound.
  let paused: (() => void)[] = [];

  const commit = async (records: StoredRecord[], written: Promise<Error | void>[], acks: (() => void)[]) => {
    let added: StoredRecord[];
    try {
      added = await opts.store.add(records);
      const failed = (await Promise.all(written)).find((err) => err);
      if (failed) throw failed;
    } catch (err) {
      // Not stored, so not acknowledged: drop the connection and let the broker deliver again,
      // also what gathered meanwhile (its PUBACKs are held too).
      log(`cannot store ${records.length} results and ${written.length} counts and statuses (${(err as Error).message}); reconnecting for re-delivery`);
      batch = [];
      writes = [];
      heldAcks = [];
      paused = []; // their connection goes: the broker delivers them again
      client.stream?.destroy();
      return;
    }
    opts.metrics.storedBatch(added, Date.now());
    opts.metrics.duplicate(records.length - added.length);
    for (const ack of acks) ack();
    if (added.length) opts.onStored?.(added.length);
  };

  const flush = () => {
    // A flush forced by a full batch cancels the scheduled one, which would commit the next
    // batch before it has gathered.
    cancelGather();
    if (committing) {
      flushDue = true;
      return;
    }
    flushScheduled = false;
    const records = batch;
    const written = writes;
    const acks = heldAcks;
    batch = [];
    writes = [];
    heldAcks = [];
    committing = true;
    void commit(records, written, acks).finally(() => {
      committing = false;
      // Resumed before the next flush, so that their PUBACKs are held for the batch they are in.
      const resume = paused;
      paused = [];
      for (const done of resume) done();
      if (flushDue) {
        flushDue = false;
        flush();
      }
    });
  };

  const write = (what: string, written: Promise<unknown>) =>
    writes.push(written.then(() => {}, (err: Error) => new Error(`${what}: ${err.message}`)));

  const acceptDropped = (probe: string, topic: string, payload: Buffer) => {
    const report = JSON.parse(payload.toString()) as { probe?: unknown; total?: unknown };
    if (report.probe !== probe) return reject("topic_mismatch", topic, `report for ${String(report.probe)} on the topic of ${probe}`);
    if (!Number.isSafeInteger(report.total) || (report.total as number) < 0) {
      return reject("bad_record", topic, `total: expected a whole count, got ${String(report.total).slice(0, 32)}`);
    }
    write(`dropped count of ${probe}`, opts.store.setDropped(probe, report.total as number)
      .then((grown) => opts.metrics.droppedByProbes(grown)));
  };

  const acceptStatus = (probe: string, topic: string, payload: Buffer, retained: boolean) => {
    const status = parseStatus(probe, payload);
    if ("error" in status) return reject("bad_status", topic, status.error);
    write(`status of ${probe}`, Promise.resolve(opts.onStatus?.(probe, status, retained)));
  };

  const accept = (topic: string, payload: Buffer, retained: boolean) => {
    const droppedBy = parseDroppedTopic(topic);
    if (droppedBy) return acceptDropped(droppedBy, topic, payload);
    const statusOf = parseStatusTopic(topic);
    if (statusOf) return acceptStatus(statusOf, topic, payload, retained);
    const { records, rejected } = parseMessage(topic, payload);
    for (const r of rejected) reject(r.reason, topic, r.detail);
    for (const r of records) batch.push(r);
  };

  client.handleMessage = (packet, done) => {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    try {
      accept(packet.topic, payload, packet.retain);
    } catch (err) {
      // A message that cannot be handled must not stall the session: count it, acknowledge it.
      reject("bad_record", packet.topic, (err as Error).message);
    }
    if (!flushScheduled) {
      flushScheduled = true;
      const ms = gatherMs();
      if (ms) {
        const timer = setTimeout(flush, ms);
        cancelGather = () => clearTimeout(timer);
      } else {
        const immediate = setImmediate(flush);
        cancelGather = () => clearImmediate(immediate);
      }
    }
    // On to the next packet (its PUBACK waits for the flush, below), unless the next batch is full.
    if (committing && (batch.length >= MAX_BATCH_RECORDS || heldAcks.length >= RECEIVE_MAXIMUM)) paused.push(done);
    else done();
    if (batch.length >= MAX_BATCH_RECORDS || heldAcks.length >= RECEIVE_MAXIMUM) flush();
  };

  const sendPacket = internalSendPacket(client);
  const send = sendPacket.get;
  sendPacket.set((packet, cb, ...rest) => {
    if (packet.cmd !== "puback" || !flushScheduled) return send(packet, cb, ...rest);
    // Sent on the connection it answers, or not at all: after a reconnect without the session,
    // its message id may name a new, uncommitted message (mqtt.js would also send it from its
    // offline queue at the next connect). The broker delivers the message again instead.
    const stream = client.stream;
    heldAcks.push(() => {
      if (client.stream === stream && client.connected) send(packet, undefined, ...rest);
    });
    cb?.(); // processing continues; the acknowledgement itself goes out after the commit
  });

  const prefix = opts.shareGroup ? `$share/${opts.shareGroup}/` : "";
  // Statuses are not shared: each collector keeps every probe's state. They are subscribed at
  // every connect, also to a kept session (one made before statuses were read, too); the
  // broker then hands over the retained ones again, which changes nothing stored.
  const statuses = { [STATUS_FILTER]: { qos: 1 as const } };
  const topics = { ...statuses, [prefix + RESULTS_FILTER]: { qos: 1 as const }, [prefix + DROPPED_FILTER]: { qos: 1 as const } };
  const subscribe = (sessionPresent: boolean, done: (err: Error | null) => void) =>
    client.subscribe(sessionPresent ? statuses : topics, (err) => done(err ?? null));
  // Resolves once the subscription is in place, so nothing published afterwards is missed.
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => {
      // Connecting again under 3.1.1, unless sharing: a broker without MQTT 5 has no $share
      // (NATS 2.9, RabbitMQ 3.10), and takes `$share/…` for a plain topic that nothing matches.
      if (fellBack(err) && !opts.shareGroup) return;
      const why = fellBack(err) ? `${err.message}: --share needs MQTT 5 shared subscriptions` : err.message;
      client.off("error", fail);
      client.end(true);
      reject(new Error(`cannot connect to MQTT broker ${opts.brokerUrl}: ${printable(why)}`));
    };
    client.on("error", fail);
    client.once("connect", (connack) => {
      client.off("error", fail);
      subscribe(connack.sessionPresent, (err) => (err ? reject(err) : resolve()));
    });
  });
  // A subscription refused at a reconnect (a SUBACK failure code, 0x80: NATS during a leader
  // election) would stay missing until some later reconnect, and results published meanwhile
  // reach no one: drop the connection, so mqtt.js connects and this subscribes again. A kept
  // session lacks what was refused, so until a subscribe succeeds every connect asks for all.
  let refused = false;
  client.on("connect", (connack) => {
    subscribe(connack.sessionPresent && !refused, (err) => {
      refused = err !== null;
      if (!err) return;
      log(`mqtt: subscribe failed: ${err.message}; connecting again`);
      client.stream?.destroy();
    });
  });
  return client;
}
