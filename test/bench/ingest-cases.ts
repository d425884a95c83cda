// The receivers of the ingest benchmark (collector.bench.ts), one function each: catprobe's
// collector on SQLite or PostgreSQL, one or two of them (a $share group), on Mosquitto or on a
// NATS cluster, and a bare mqtt.js subscriber that only counts. Each receiver says how many
// results it has (a collector: committed), checks after the run that every result arrived
// exactly once (a collector: counted in its database), and ends its broker sessions when
// closed, so no later round's messages queue for a collector that is gone.

import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import type { StoredRecord } from "../../host/wire/record.js";
import type { IngestLab } from "./ingest-lab.js";

/** Results each run publishes. */
export const MESSAGES = 20_000;

/** One committed batch: its size and how long store.add took (on SQLite, the thread is busy). */
export interface Commit { records: number; ms: number }

export interface Verified {
  commits: Commit[];
  /** collectors that received (0: a bare subscriber) */
  collectors: number;
  /** results delivered more than once (QoS 1 allows it; a collector stores them once) */
  redelivered: number;
  /** the brokers the collectors' logs say they connected to */
  connectedTo: string[];
}

export interface Receiver {
  /** results received (bare subscriber) or committed (collector) so far */
  received(): number;
  /** after the run: throws unless every result arrived exactly once; the commits, if any */
  verify(): Promise<Verified>;
  close(): Promise<void>;
}

export interface IngestCase {
  /** the name in the ratio lines */
  key: string;
  label: string;
  /** where the publisher publishes */
  publishTo(lab: IngestLab): string;
  /** subscribed and ready when it resolves */
  start(lab: IngestLab, round: number): Promise<Receiver>;
}

/** Ends a client's persistent session at the broker (a clean 3.1.1 connect drops it). */
async function endSession(url: string, clientId: string): Promise<void> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, clientId, clean: true, reconnectPeriod: 0 });
  await client.endAsync();
}

/** A bare mqtt.js subscriber: counts messages, keeps their payloads to check the ids after. */
async function bareSubscriber(url: string, clientId: string): Promise<Receiver> {
  const payloads: Buffer[] = [];
  const client: MqttClient = await mqtt.connectAsync(url, { protocolVersion: 4, clientId, clean: true });
  client.on("message", (_topic, payload) => payloads.push(payload));
  await client.subscribeAsync("catprobe/v1/results/+/+", { qos: 1 });
  return {
    received: () => payloads.length,
    verify: async () => {
      const ids = new Set(payloads.map((p) => (JSON.parse(p.toString()) as { id: string }).id));
      if (ids.size !== MESSAGES) throw new Error(`bare subscriber on ${url}: ${ids.size} distinct results of ${MESSAGES}`);
      return { commits: [], collectors: 0, redelivered: payloads.length - MESSAGES, connectedTo: [url] };
    },
    close: () => client.endAsync(),
  };
}

interface CollectorSpec { db: string; clientId: string; shareGroup?: string }

/** Counts what each store.add call committed and how long it took; the collector's own store. */
function instrument(collector: Collector, commits: Commit[], tally: { given: number; added: number }): void {
  const { store } = collector;
  const add = store.add.bind(store);
  store.add = async (records: StoredRecord[]) => {
    const t0 = performance.now();
    const added = await add(records);
    commits.push({ records: records.length, ms: performance.now() - t0 });
    tally.given += records.length;
    tally.added += added.length;
    return added;
  };
}

/** catprobe collectors on one broker (URL or list), each with its spec; all subscribed. */
async function collectors(broker: string, specs: CollectorSpec[]): Promise<Receiver> {
  const log: string[] = [];
  const commits: Commit[] = [];
  const tally = { given: 0, added: 0 };
  const running: Collector[] = [];
  try {
    for (const spec of specs) {
      const c = await startCollector({ broker, http: "127.0.0.1:0", ...spec, log: (line) => log.push(line) });
      running.push(c);
      instrument(c, commits, tally);
    }
  } catch (err) {
    await Promise.allSettled(running.map((c) => c.close()));
    throw err;
  }
  return {
    received: () => tally.added,
    verify: async () => {
      const db = running[0].store.db;
      const stored = (await db.get<{ n: number }>("SELECT count(*) AS n FROM results"))!.n;
      const counted = (await db.get<{ n: number }>("SELECT sum(n) AS n FROM minutes"))!.n;
      if (stored !== MESSAGES || counted !== MESSAGES || tally.added !== MESSAGES) {
        throw new Error(`collectors on ${broker}: ${stored} results stored, ${counted} counted, ${tally.added} added, ` +
          `of ${MESSAGES}\n${log.slice(-10).join("\n")}`);
      }
      const connectedTo = [...new Set(log.flatMap((line) => /^mqtt: connected to (\S+)/.exec(line)?.[1] ?? []))];
      return { commits, collectors: specs.length, redelivered: tally.given - tally.added, connectedTo };
    },
    close: async () => {
      await Promise.all(running.map((c) => c.close()));
      for (const { clientId } of specs) await endSession(broker.split(",")[0], clientId);
    },
  };
}

const sqliteFile = (lab: IngestLab, key: string, round: number) => join(lab.dir, `${key}-${round}.db`);
const clientIds = (key: string, round: number, n: number) =>
  Array.from({ length: n }, (_, i) => `bench-${key}-r${round}-c${i + 1}`);

/** The Mosquitto bare subscriber: the floor every collector is compared with. */
export const BARE_MOSQUITTO: IngestCase = {
  key: "bare-subscriber",
  label: "bare mqtt.js subscriber (count only), Mosquitto",
  publishTo: (lab) => lab.mosquitto.url,
  start: (lab, round) => bareSubscriber(lab.mosquitto.url, `bench-bare-r${round}`),
};

export const SQLITE_MOSQUITTO: IngestCase = {
  key: "collector-ingest",
  label: "collector, SQLite, Mosquitto",
  publishTo: (lab) => lab.mosquitto.url,
  start: (lab, round) => collectors(lab.mosquitto.url, [{ db: sqliteFile(lab, "sqlite", round), clientId: clientIds("sqlite", round, 1)[0] }]),
};

export const POSTGRES_MOSQUITTO: IngestCase = {
  key: "collector-ingest-postgres",
  label: "collector, PostgreSQL, Mosquitto",
  publishTo: (lab) => lab.mosquitto.url,
  start: async (lab, round) => collectors(lab.mosquitto.url, [{ db: await lab.postgres.database(), clientId: clientIds("pg", round, 1)[0] }]),
};

/**
 * Two collectors on one PostgreSQL database in one $share group (MQTT 5, the collector's
 * default on an external broker), each with a client id of its own, both in this process. A
 * new group each round: Mosquitto would otherwise count the last round's members as well.
 */
export const POSTGRES_SHARE_MOSQUITTO: IngestCase = {
  key: "collector-ingest-postgres-share2",
  label: "2 collectors, $share, PostgreSQL, Mosquitto",
  publishTo: (lab) => lab.mosquitto.url,
  start: async (lab, round) => {
    const db = await lab.postgres.database();
    return collectors(lab.mosquitto.url, clientIds("pg-share", round, 2).map((clientId) => ({ db, clientId, shareGroup: `bench-r${round}` })));
  },
};

/**
 * NATS: the publisher on node 1, the receiver on node 2 (a collector through the cluster's URL
 * list starting at node 2; the stream of QoS 1 messages is on all three nodes). The collector
 * keeps SQLite, so that against the Mosquitto one only the broker differs.
 */
export const SQLITE_NATS: IngestCase = {
  key: "collector-ingest-nats",
  label: "collector, SQLite, NATS cluster (3 nodes)",
  publishTo: (lab) => lab.nats.nodes[0].url,
  start: async (lab, round) => {
    const receiver = await collectors(lab.nats.brokerList(1), [{ db: sqliteFile(lab, "nats", round), clientId: clientIds("nats", round, 1)[0] }]);
    const publisherNode = lab.nats.nodes[0].url;
    return {
      ...receiver,
      verify: async () => {
        const verified = await receiver.verify();
        if (verified.connectedTo.includes(publisherNode)) throw new Error(`the NATS collector connected to the publisher's node ${publisherNode}`);
        return verified;
      },
    };
  },
};

export const BARE_NATS: IngestCase = {
  key: "bare-subscriber-nats",
  label: "bare mqtt.js subscriber (count only), NATS node 2",
  publishTo: (lab) => lab.nats.nodes[0].url,
  start: (lab, round) => bareSubscriber(lab.nats.nodes[1].url, `bench-bare-nats-r${round}`),
};

export const INGEST_CASES = [SQLITE_MOSQUITTO, BARE_MOSQUITTO, POSTGRES_MOSQUITTO, POSTGRES_SHARE_MOSQUITTO, SQLITE_NATS, BARE_NATS];
