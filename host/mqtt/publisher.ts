// Publishes a probe's results over MQTT with QoS 1, from its durable spool, oldest first.
// A result leaves the spool only on the broker's PUBACK. Anything not acknowledged (an error,
// a dropped connection, mqtt.js replaying its own queue) is simply sent again from the spool
// after the next connect; the collector counts each result id once.
//
// Presence: `catprobe/v1/status/{probe}` holds the status object (host/mqtt/status.ts),
// retained: state "online" at every connect, again at once when its labels, appliedVersion or
// configError change, and every `statusEveryMs` with fresh spool counts (the counts change with
// every result: they go out with the periodic status only, so a busy probe does not flood the
// broker). The last will is the same object with state "offline"; mqtt.js sends it in CONNECT,
// so it holds the fields and counts as of the last (re)connect or field change. Results dropped
// from a full spool are reported on `catprobe/v1/dropped/{probe}` as `{ "probe", "total" }`
// once the probe is back online.
//
// With `onConfig`, it also subscribes to the probe's config topic (QoS 1) at every connect:
// the retained config arrives then, and every new one after it.

import type { MqttClient } from "mqtt";
import { fitRecord } from "../wire/fit.js";
import { probeClientId } from "../wire/id.js";
import { MAX_MESSAGE_BYTES, type ResultRecord } from "../wire/record.js";
import { STATUS_EVERY_MS } from "../wire/status.js";
import { configTopic, droppedTopic, resultTopic, statusTopic } from "../wire/topics.js";
import { connectBrokers } from "../mqtt-client/broker-list.js";
import { fallBackToMqtt311 } from "../mqtt-client/mqtt5-fallback.js";
import type { Spool, SpoolEntry } from "./spool.js";
import { probeStatus, sameFields, type StatusFields } from "./status.js";

export interface PublisherOptions {
  /** mqtt://, mqtts://, ws:// …, or a comma-separated list of a cluster's nodes (host/mqtt-client/broker-list.ts) */
  brokerUrl: string;
  probe: string;
  spool: Spool;
  username?: string;
  password?: string;
  /** CA certificate (PEM) for mqtts:// */
  ca?: Buffer;
  /** 4 (MQTT 3.1.1, default: every broker, aedes included) or 5, falling back to 4 where refused */
  protocolVersion?: 4 | 5;
  /** results per message at most; more than 1 sends JSON arrays, one per task (default 1) */
  batch?: number;
  /** messages awaiting PUBACK at most (default 32) */
  inflight?: number;
  log?: (line: string) => void;
  /** the probe's labels, reported in its status (default none) */
  labels?: Record<string, string>;
  /** the status is published at least this often while connected (default STATUS_EVERY_MS) */
  statusEveryMs?: number;
  /** each message on the probe's config topic (a managed probe) */
  onConfig?: (payload: Buffer) => void;
}

/** The smallest spool that holds one result with its texts shortened (a few hundred bytes). */
export const MIN_SPOOL_BYTES = 4096;

/**
 * Splits spooled entries into messages: one per topic (a batch holds one task's results), each
 * within MAX_MESSAGE_BYTES. Entries of a topic keep their order.
 */
export function batches(entries: SpoolEntry[]): SpoolEntry[][] {
  const open = new Map<string, { entries: SpoolEntry[]; bytes: number }>();
  const out: SpoolEntry[][] = [];
  for (const e of entries) {
    let batch = open.get(e.topic);
    if (!batch || batch.bytes + e.bytes + 1 > MAX_MESSAGE_BYTES) {
      batch = { entries: [], bytes: 2 }; // the brackets of the JSON array
      open.set(e.topic, batch);
      out.push(batch.entries);
    }
    batch.entries.push(e);
    batch.bytes += e.bytes + 1;
  }
  return out;
}

export class Publisher {
  private readonly client: MqttClient;
  private readonly spool: Spool;
  /** messages of this connection awaiting PUBACK */
  private pendingMessages = 0;
  /** the highest seq handed to the client on this connection */
  private cursor = 0;
  /** counts connections, so late callbacks from an earlier one are told apart */
  private epoch = 0;
  private connected = false;
  /** close() was called: the spool may be closed soon, the will is no longer needed */
  private closing = false;
  private drainWaiters: (() => void)[] = [];
  private readonly batch: number;
  private readonly maxInflight: number;
  private readonly log: (line: string) => void;
  private fields: StatusFields;
  private readonly statusTimer: NodeJS.Timeout;

  constructor(private readonly opts: PublisherOptions) {
    if (opts.spool.maxBytes < MIN_SPOOL_BYTES) throw new RangeError(`a spool needs ${MIN_SPOOL_BYTES} bytes at least`);
    this.spool = opts.spool;
    this.batch = Math.max(1, opts.batch ?? 1);
    this.maxInflight = Math.max(1, opts.inflight ?? 32);
    this.log = opts.log ?? (() => {});
    this.fields = { labels: opts.labels ?? {}, appliedVersion: null, configError: null };
    this.client = connectBrokers(opts.brokerUrl, {
      clientId: probeClientId(opts.probe),
      clean: true,
      protocolVersion: opts.protocolVersion ?? 4,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      username: opts.username,
      password: opts.password,
      ca: opts.ca,
      will: { topic: statusTopic(opts.probe), payload: this.statusPayload("offline"), qos: 1, retain: true },
      // subscribed again by onConnect, so that a retained config arrives exactly once a connection
      resubscribe: false,
    }, this.log);
    fallBackToMqtt311(this.client, this.log);
    this.client.on("connect", () => this.onConnect());
    this.client.on("close", () => this.onDisconnect());
    this.client.on("error", (err) => this.log(`mqtt: ${err.message}`));
    if (opts.onConfig) {
      const topic = configTopic(opts.probe);
      this.client.on("message", (t, payload) => t === topic && opts.onConfig!(payload));
    }
    this.statusTimer = setInterval(() => this.publishStatus(), opts.statusEveryMs ?? STATUS_EVERY_MS).unref();
  }

  /** Sets what the status says about the probe's config; a change is published at once. */
  updateStatus(change: Partial<Pick<StatusFields, "appliedVersion" | "configError">>): void {
    const next = { ...this.fields, ...change };
    if (sameFields(next, this.fields)) return;
    this.fields = next;
    this.refreshWill();
    this.publishStatus();
  }

  /** Spools the result, then sends it when the broker can take it. */
  publish(record: ResultRecord): void {
    // Shortened (message, labels) to fit a message and the spool: a result is never refused whole.
    const json = fitRecord(record, Math.min(MAX_MESSAGE_BYTES, this.spool.maxBytes));
    this.spool.append(resultTopic(record.probe, record.task), json);
    this.pump();
  }

  /** Resolves once the spool is empty (every result acknowledged), or rejects after `timeoutMs`. */
  drain(timeoutMs: number): Promise<void> {
    if (this.spool.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.drainWaiters = this.drainWaiters.filter((w) => w !== done);
        reject(new Error(`${this.spool.size} results still spooled after ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.drainWaiters.push(done);
    });
  }

  /** Marks the probe offline and disconnects; what is still spooled stays for the next start. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.statusTimer);
    if (this.client.connected) {
      await this.client.publishAsync(statusTopic(this.opts.probe), this.statusPayload("offline"), { qos: 1, retain: true }).catch(() => {});
    }
    await this.client.endAsync();
  }

  private onConnect(): void {
    if (this.closing) return; // a CONNACK arriving after close(): the spool may be closed already
    this.connected = true;
    this.epoch++;
    this.pendingMessages = 0;
    this.cursor = 0; // everything unacknowledged goes again, oldest first
    this.publishStatus();
    if (this.opts.onConfig) {
      this.client.subscribe(configTopic(this.opts.probe), { qos: 1 }, (err) => {
        if (err) this.log(`cannot subscribe to ${configTopic(this.opts.probe)}: ${err.message}`);
      });
    }
    const dropped = this.spool.dropped;
    if (dropped > 0) {
      this.client.publish(droppedTopic(this.opts.probe), JSON.stringify({ probe: this.opts.probe, total: dropped }),
        { qos: 1, retain: true });
    }
    this.pump();
  }

  private onDisconnect(): void {
    this.connected = false;
    if (!this.closing) this.refreshWill(); // the next connect's CONNECT carries the counts as they are now
  }

  private statusPayload(state: "online" | "offline"): string {
    return JSON.stringify(probeStatus(this.opts.probe, state, this.fields, { spooled: this.spool.size, dropped: this.spool.dropped }));
  }

  private publishStatus(): void {
    if (this.connected) this.client.publish(statusTopic(this.opts.probe), this.statusPayload("online"), { qos: 1, retain: true });
  }

  /** mqtt.js reads the will from its options at every connect. */
  private refreshWill(): void {
    this.client.options.will!.payload = Buffer.from(this.statusPayload("offline"));
  }

  private pump(): void {
    while (this.connected && this.pendingMessages < this.maxInflight) {
      const entries = this.spool.next(this.cursor, this.batch);
      if (entries.length === 0) break;
      this.cursor = entries[entries.length - 1].seq;
      if (this.batch === 1) this.send(entries);
      else for (const group of batches(entries)) this.send(group);
    }
    if (this.spool.size === 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  private send(group: SpoolEntry[]): void {
    const payload = group.length === 1 ? group[0].payload : `[${group.map((e) => e.payload).join(",")}]`;
    const epoch = this.epoch;
    this.pendingMessages++;
    this.client.publish(group[0].topic, payload, { qos: 1 }, (err) => {
      if (!err) for (const e of group) this.spool.ack(e.seq);
      if (epoch !== this.epoch) return; // that connection is gone; the new one resent from the spool
      this.pendingMessages--;
      if (err) {
        // Not acknowledged: it stays spooled; send it again shortly.
        this.log(`publish not acknowledged (${err.message}); kept in the spool`);
        this.cursor = Math.min(this.cursor, group[0].seq - 1);
        setTimeout(() => this.pump(), 1000).unref();
        return;
      }
      this.pump();
    });
  }
}
