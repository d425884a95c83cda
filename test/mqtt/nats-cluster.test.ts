// A collector and two probes on a 3-node NATS cluster (test/helpers/nats.ts: MQTT over
// JetStream, every stream on all three nodes), each given the whole cluster as a `--broker`
// list, each list starting at another node. While results stream, the node of one probe is SIGKILLed; once
// it is back, the collector's node is restarted. Every result id sent is then stored exactly
// once, compared id by id with the collector's database and with its counters.
//
// First, through a node loss: a QoS 1 persistent session (clean=false) keeps what arrived while
// its client was away.
//
// Timing: a lost node is noticed at once (its sockets close with it); a probe connects again
// after its reconnectPeriod (1 s), the collector after 0.5 s, each to the next node of its list.
// Until the cluster has elected new leaders for the streams the lost node led (seconds here), a
// node answers a CONNECT or PUBLISH that needs one by closing the connection after its
// JetStream request timeout (4 s in nats-server 2.9): one attempt costs at most about 5 s, and
// DRAIN_MS, the bound of every wait below, allows a dozen, four rounds of the list.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type IClientOptions, type IConnackPacket } from "mqtt";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { Publisher } from "../../host/mqtt/publisher.js";
import { Spool } from "../../host/mqtt/spool.js";
import { NatsCluster } from "../helpers/nats.js";
import { record } from "../helpers/records.js";
import { storedIds } from "../helpers/stored-ids.js";
import { until } from "../helpers/until.js";

/** The longest any step may take: failover, leader elections, delivery of what is spooled. */
const DRAIN_MS = 60_000;
/** A result per probe this often while streaming. */
const EVERY_MS = 10;

const dir = mkdtempSync(join(tmpdir(), "catprobe-nats-cluster-"));
let cluster: NatsCluster;

beforeAll(async () => {
  cluster = await NatsCluster.start(3);
});
afterAll(async () => {
  await cluster?.stop();
});

/** A probe streaming results to its node, with the rest of the cluster to move on to. */
class StreamingProbe {
  readonly ids: string[] = [];
  readonly log: string[] = [];
  readonly publisher: Publisher;
  private readonly timer: NodeJS.Timeout;

  constructor(readonly probe: string, brokers: string) {
    this.publisher = new Publisher({
      brokerUrl: brokers, probe, spool: new Spool(join(dir, `${probe}.db`)), protocolVersion: 5, log: (l) => this.log.push(l),
    });
    this.timer = setInterval(() => {
      const r = record(probe, "stream", Date.now(), null);
      this.ids.push(r.id);
      this.publisher.publish({ ...r, address: null });
    }, EVERY_MS);
  }

  /** Connects logged so far, each naming its node. */
  get connects(): string[] {
    return connects(this.log);
  }

  /** Stops producing, waits until the spool is empty (every result acknowledged), disconnects. */
  async finish(): Promise<void> {
    this.halt();
    await this.publisher.drain(DRAIN_MS);
    await this.publisher.close();
  }

  halt(): void {
    clearInterval(this.timer);
  }
}

const connects = (log: string[]) => log.filter((l) => l.startsWith("mqtt: connected to "));

/** The node a "connected to" line names. */
const nodeOf = (line: string) => cluster.nodes.find((n) => line.startsWith(`mqtt: connected to ${n.url} `))!;

/** On failure, the clients' logs and the nodes' errors and warnings: what the cluster went through. */
function printOnFailure(logs: Record<string, string[]>): void {
  onTestFailed(() => {
    for (const [who, log] of Object.entries(logs)) console.log(`${who}:\n${log.join("\n")}`);
    for (const n of cluster.nodes) {
      console.log(`${n.name} ${n.url}:\n${n.log.join("").split("\n").filter((l) => /\[(ERR|WRN)\]/.test(l) && !l.includes("route")).slice(-40).join("\n")}`);
    }
  });
}

/** The sum of a counter of the collector's /metrics over all its labels. */
async function counter(c: Collector, name: string): Promise<number> {
  const text = await (await fetch(`${c.httpUrl}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, "gm"))].reduce((sum, m) => sum + Number(m[1]), 0);
}

describe("a 3-node NATS cluster", () => {
  // Not asserted: a retained status through the node's loss. NATS 2.9.10 acknowledges it, yet a
  // reader on another node did not get it after the loss in 2 of 3 tries, even once that node had
  // it; the collector does not rely on it, since a probe publishes its status at every connect.
  it("keeps a persistent session's QoS 1 messages through the loss of the node it was made on", async () => {
    const [n1, , n3] = cluster.nodes;
    // Every replica current, so that the streams keep their quorum without n1. This runs first:
    // after the streaming test, replicas of sessions that are gone can stay behind for minutes.
    await cluster.healthy(DRAIN_MS, true);
    // NATS closes a connection whose CONNECT or PUBLISH meets a stream without a leader; these
    // clients connect again, as the probe and the collector do.
    const options = { protocolVersion: 4 as const, clientId: "catprobe-test-session", clean: false, reconnectPeriod: 500 };
    const away = await mqtt.connectAsync(n1.url, options);
    await away.subscribeAsync("catprobe/v1/session-test/+", { qos: 1 });
    await away.endAsync();
    const publisher = await mqtt.connectAsync(n1.url, { protocolVersion: 4, clientId: "catprobe-test-publisher", reconnectPeriod: 500 });
    for (let i = 0; i < 50; i++) await publisher.publishAsync(`catprobe/v1/session-test/${i}`, String(i), { qos: 1 });
    await publisher.endAsync();
    await n1.kill();
    const log: string[] = [];
    printOnFailure({ "session client": log });
    /** A client of n3 that connects again whenever NATS closes its connection, as ours do. */
    const client = (name: string, opts: IClientOptions, onConnect: (connack: IConnackPacket) => void) => {
      const c = mqtt.connect(n3.url, { reconnectPeriod: 500, ...opts });
      c.on("error", (err) => log.push(`${name}: ${err.message}`));
      c.on("close", () => log.push(`${name}: closed`));
      c.on("connect", (connack) => {
        log.push(`${name}: connected, sessionPresent ${connack.sessionPresent}`);
        onConnect(connack);
      });
      return c;
    };
    const received = new Set<string>();
    let sessionPresent: boolean | undefined;
    const back = client("session", options, (connack) => (sessionPresent ??= connack.sessionPresent));
    back.on("message", (_topic, payload) => received.add(payload.toString()));
    try {
      await until(() => sessionPresent !== undefined, "the session client on another node", DRAIN_MS);
      expect(sessionPresent).toBe(true);
      await until(() => received.size === 50, "the 50 messages queued for the session", DRAIN_MS);
    } finally {
      await back.endAsync(true);
      await n1.start();
    }
  }, 4 * DRAIN_MS);

  it("stores every result exactly once while a probe's node is SIGKILLed and then the collector's node restarted", async () => {
    await cluster.healthy(DRAIN_MS); // n1, restarted by the test before, back in the cluster
    const db = join(dir, "collector.db");
    const collectorLog: string[] = [];
    const collector = await startCollector({ broker: cluster.brokerList(0), http: "127.0.0.1:0", db, log: (l) => collectorLog.push(l) });
    const a = new StreamingProbe("edge-a", cluster.brokerList(1));
    const b = new StreamingProbe("edge-b", cluster.brokerList(2));
    const stored = () => storedIds(db).length;
    printOnFailure({ collector: collectorLog, "edge-a": a.log, "edge-b": b.log });
    try {
      await until(() => stored() >= 200 && a.connects.length > 0 && b.connects.length > 0, "results streaming", DRAIN_MS);
      // Each client's list starts at another node (a v5 refusal retries the same node),
      // so the three are usually on three nodes; a connect refused while the cluster settles can
      // move one further. The probe whose node is killed is one not on the collector's node.
      const collectorNode = nodeOf(connects(collectorLog).at(-1)!);
      const victim = [a, b].find((p) => nodeOf(p.connects.at(-1)!) !== collectorNode);
      expect(victim, "a probe on another node than the collector").toBeDefined();
      const probe = victim!;
      const probeNode = nodeOf(probe.connects.at(-1)!);

      await probeNode.kill();
      const killedAt = probe.ids.length;
      const connectsBefore = probe.connects.length;
      await until(() => probe.connects.length > connectsBefore, `${probe.probe} on another node`, DRAIN_MS);
      expect(nodeOf(probe.connects.at(-1)!)).not.toBe(probeNode);
      await until(() => storedIds(db).filter((id) => id.startsWith(`${probe.probe}/`)).length > killedAt,
        `${probe.probe}'s results after the kill`, DRAIN_MS);

      await probeNode.start();
      await cluster.healthy(DRAIN_MS);
      const collectorConnects = connects(collectorLog).length;
      await collectorNode.restart();
      await until(() => connects(collectorLog).length > collectorConnects, "the collector on another node", DRAIN_MS);
      expect(nodeOf(connects(collectorLog).at(-1)!)).not.toBe(collectorNode);
      await cluster.healthy(DRAIN_MS);
      const restartedAt = stored();
      await until(() => stored() > restartedAt + 200, "results after the restart", DRAIN_MS);

      await Promise.all([a.finish(), b.finish()]);
      const sent = [...a.ids, ...b.ids];
      await until(() => stored() === sent.length, `all ${sent.length} results`, DRAIN_MS);
      const ids = storedIds(db);
      expect(new Set(ids).size).toBe(ids.length);
      expect(new Set(ids)).toEqual(new Set(sent));
      expect(await counter(collector, "catprobe_results_total")).toBe(sent.length);
      const duplicates = await counter(collector, "catprobe_duplicate_results_total");
      console.log(`reliability: NATS cluster, a probe's node SIGKILLed, then the collector's node restarted: produced ${sent.length}, ` +
        `stored ${ids.length}, lost ${sent.length - ids.length}, duplicates ${duplicates} (nats-server 2.9.10, 3 nodes, stream_replicas 3)`);
    } finally {
      a.halt();
      b.halt();
      await collector.close();
    }
  }, 6 * DRAIN_MS);
});
