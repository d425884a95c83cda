// A results subscription refused at a reconnect (a SUBACK with 0x80, as a NATS cluster may send
// during a leader election) must not stay missing: the collector drops the connection and
// subscribes again. A real aedes broker on loopback; the collector's session is lost by closing
// it and starting a new one on the same port (aedes keeps sessions in memory only), which
// refuses the results subscription once, on the collector's second connection. That broker
// then keeps the session of that connection, without results: the third connection finds
// sessionPresent true, and must ask for results anyway. (aedes 1.2 keeps a refused filter in
// the session along with the granted ones of its SUBSCRIBE, and authorizes it again when it
// restores the session; the test broker removes it, as a broker that keeps only what it
// granted would not have it.)

import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Aedes, type Client } from "aedes";
import mqtt from "mqtt";
import { expect, it } from "vitest";
import { startIngest } from "../../host/collector/ingest.js";
import { CollectorMetrics } from "../../host/collector/metrics.js";
import { openStore } from "../../host/collector/store.js";
import { RESULTS_FILTER, resultTopic } from "../../host/wire/topics.js";
import { record } from "../helpers/records.js";
import { until } from "../helpers/until.js";

const COLLECTOR = "catprobe-collector-resubscribe";

/** An aedes broker on 127.0.0.1:`port` (0: a free one) that refuses the first `refusals` results subscriptions. */
async function startBroker(port: number, refusals: number) {
  const seen = { refused: 0, granted: 0, sessionPresent: [] as boolean[] };
  let forget = false;
  const aedes: Aedes = await Aedes.createBroker({
    preConnect: (_client, packet, done) => {
      if (!forget || packet.clientId !== COLLECTOR) return done(null, true);
      forget = false;
      const { persistence } = aedes as unknown as { persistence: { removeSubscriptions(c: { id: string }, topics: string[]): Promise<unknown> } };
      persistence.removeSubscriptions({ id: COLLECTOR }, [RESULTS_FILTER]).then(() => done(null, true), (err: Error) => done(err, false));
    },
    authorizeSubscribe: (client: Client | null, sub, done) => {
      if (client?.id !== COLLECTOR || sub.topic !== RESULTS_FILTER) return done(null, sub);
      if (seen.refused < refusals) {
        seen.refused++;
        forget = true;
        return done(null, null); // SUBACK return code 0x80
      }
      seen.granted++; // (aedes's "subscribe" event names the refused filters too)
      done(null, sub);
    },
  });
  aedes.on("connackSent", (packet, client) => {
    if (client?.id === COLLECTOR) seen.sessionPresent.push(packet.sessionPresent);
  });
  const server = createServer((socket) => aedes.handle(socket));
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

it("subscribes again after the broker refused the results subscription at a reconnect", async () => {
  const first = await startBroker(0, 0);
  const url = `mqtt://127.0.0.1:${first.port}`;
  const store = await openStore(join(mkdtempSync(join(tmpdir(), "catprobe-resubscribe-")), "c.db"));
  const lines: string[] = [];
  const ingest = await startIngest({
    brokerUrl: url, clientId: COLLECTOR, protocolVersion: 4, store, metrics: new CollectorMetrics(),
    log: (line) => lines.push(line),
  });
  let second: Awaited<ReturnType<typeof startBroker>> | undefined;
  let publisher: mqtt.MqttClient | undefined;
  try {
    expect(first.seen.granted).toBe(1);
    await first.close(); // the session goes with it
    second = await startBroker(first.port, 1);
    const seen = second.seen;
    await until(() => seen.refused === 1, "the refused subscription", 10_000);
    await until(() => seen.granted >= 1 && seen.sessionPresent.length >= 2, "the results subscription, asked for again", 10_000);
    expect(seen.sessionPresent.slice(0, 2)).toEqual([false, true]);
    expect(lines.some((l) => l.startsWith("mqtt: subscribe failed"))).toBe(true);

    publisher = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: "resubscribe-publisher" });
    const r = record("edge-1", "t", Date.now(), null);
    await publisher.publishAsync(resultTopic(r.probe, r.task), JSON.stringify(r), { qos: 1 });
    const ids = async () => (await store.db.all<{ id: string }>("SELECT id FROM results")).map((row) => row.id);
    await until(async () => (await ids()).includes(r.id), "the result published after the refusal", 10_000);
  } finally {
    await publisher?.endAsync();
    await ingest.endAsync(true);
    await store.close();
    await second?.close();
  }
});
