// A broker that ignores the receive maximum must not make the collector's batches grow without
// bound. Mosquitto 2.0.11 was seen with 19,000 unacknowledged QoS 1 messages in flight to a
// collector that asked for at most 1000, and every one that arrived while a commit was pending
// went into the next batch: one PostgreSQL commit of 14,764 records. Since then, a next batch
// that is full (MAX_BATCH_RECORDS, 2000, in host/collector/ingest.ts) while a commit is pending
// stops mqtt.js's processing of packets until the commit ends, and so the reading of the socket.
//
// The broker here is a raw TCP server speaking just enough MQTT 3.1.1: it accepts the CONNECT,
// grants the SUBSCRIBE, then writes 10,000 QoS 1 PUBLISHes, one result record each, as fast as
// the socket takes them, never waiting for a PUBACK. The store is the real SQLite store, each
// add() of it made 250 ms slower before it stores anything, as a slow PostgreSQL commit would
// be. Every batch must then hold at most 2000 records plus those of one message (the one whose
// processing filled it), every record is stored once, every message acknowledged once, and no
// PUBACK leaves before its record is committed. That last check queries the database when the
// PUBACK arrives: the SQLite store runs each query synchronously inside the call, so what it
// sees is the database at that moment, not a little later.
//
// None of this depends on timing with the bound in place: a full batch stops the reading for
// as long as the commit takes. The delay is what makes the test fail without the bound: the
// collector reads some 70 messages a millisecond here, so in the first 250 ms commit nearly all
// of the 10,000 piled up into the second batch (seen here without the bound: one of 9589;
// with a 100 ms delay, one of 7018).

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "node:net";
import { expect, it } from "vitest";
import { startIngest, MAX_BATCH_RECORDS } from "../../host/collector/ingest.js";
import { CollectorMetrics } from "../../host/collector/metrics.js";
import { openStore, type Store } from "../../host/collector/store.js";
import type { StoredRecord } from "../../host/wire/record.js";
import { resultTopic } from "../../host/wire/topics.js";
import { packet, publishPacket, splitPackets } from "../helpers/mqtt-wire.js";
import { record } from "../helpers/records.js";
import { tcpServer } from "../helpers/tcp.js";
import { until } from "../helpers/until.js";

const MESSAGES = 10_000;
/** Records in each message. */
const PER_MESSAGE = 1;
/** How much slower each add() of the store is made. */
const COMMIT_DELAY_MS = 250;

/** `store`, with each add() waiting COMMIT_DELAY_MS before it stores, and the size of each batch. */
function slowStore(store: Store): Store & { batches: number[] } {
  const slow = Object.assign(Object.create(store) as Store, { batches: [] as number[] });
  slow.add = async (records: StoredRecord[]) => {
    slow.batches.push(records.length);
    await new Promise((r) => setTimeout(r, COMMIT_DELAY_MS));
    return store.add(records);
  };
  return slow;
}

it("bounds each batch while a commit is pending, however far past the receive maximum the broker sends", async () => {
  const now = Date.now();
  // Message ids 1..MESSAGES, each with its own records.
  const messages = Array.from({ length: MESSAGES }, (_, i) => {
    const records = Array.from({ length: PER_MESSAGE }, () => record(`edge-${i % 4}`, "t", now - i, i % 3 ? null : 607));
    return { id: i + 1, records };
  });
  const byMessageId = new Map(messages.map((m) => [m.id, m]));
  const publishes = messages.map((m) =>
    publishPacket(resultTopic(m.records[0].probe, m.records[0].task), JSON.stringify(PER_MESSAGE === 1 ? m.records[0] : m.records), m.id));

  const store = slowStore(await openStore(join(mkdtempSync(join(tmpdir(), "catprobe-batch-bound-")), "c.db")));
  const acked = new Map<number, number>(); // message id -> PUBACKs received
  const ackedUncommitted: number[] = []; // message ids acknowledged before their records were in the database
  const committed = (id: string) => store.db.get<{ found: number }>("SELECT 1 AS found FROM results WHERE id = ?", [id]);
  const checks: Promise<void>[] = [];

  const publishAll = async (socket: Socket) => {
    for (const p of publishes) {
      if (socket.destroyed) return;
      if (!socket.write(p)) await new Promise((r) => socket.once("drain", r));
    }
  };
  const broker = await tcpServer((socket) => {
    let pending = Buffer.alloc(0);
    socket.on("data", (chunk) => {
      const { packets, rest } = splitPackets(Buffer.concat([pending, chunk]));
      pending = Buffer.from(rest);
      for (const { type, body } of packets) {
        if (type === 1) socket.write(Buffer.from([0x20, 0x02, 0x00, 0x00])); // CONNECT: CONNACK, no session kept
        if (type === 8) {
          // SUBSCRIBE (message id, then filters, each with its QoS): granted, all at QoS 1; then the flood
          let filters = 0;
          for (let at = 2; at < body.length; at += 2 + body.readUInt16BE(at) + 1) filters++;
          socket.write(packet(0x90, Buffer.concat([body.subarray(0, 2), Buffer.alloc(filters, 0x01)])));
          void publishAll(socket);
        }
        if (type === 4) {
          const id = body.readUInt16BE(0);
          acked.set(id, (acked.get(id) ?? 0) + 1);
          const message = byMessageId.get(id);
          // Run now (synchronously, on SQLite), at the PUBACK's arrival; awaited at the end.
          for (const r of message?.records ?? []) {
            checks.push(committed(r.id).then((row) => {
              if (!row) ackedUncommitted.push(id);
            }));
          }
        }
        if (type === 12) socket.write(Buffer.from([0xd0, 0x00])); // PINGREQ: PINGRESP
      }
    });
  });

  const ingest = await startIngest({
    brokerUrl: `mqtt://127.0.0.1:${broker.port}`, clientId: "catprobe-collector-batch-bound", protocolVersion: 4,
    store, metrics: new CollectorMetrics(),
  });
  try {
    await until(() => acked.size === MESSAGES, "a PUBACK for every message", 45_000);
    await Promise.all(checks);
    expect(ackedUncommitted.length, "messages acknowledged before their records were committed").toBe(0);

    const largest = Math.max(...store.batches);
    expect(largest, `batch sizes: ${store.batches.join(", ")}`).toBeLessThanOrEqual(MAX_BATCH_RECORDS + PER_MESSAGE);
    // Each record went to add() once (no connection was dropped, so nothing was delivered again)...
    expect(broker.connections).toBe(1);
    expect(store.batches.reduce((a, b) => a + b, 0)).toBe(MESSAGES * PER_MESSAGE);
    // ... and each is in the database, once.
    const rows = await store.db.all<{ id: string }>("SELECT id FROM results");
    expect(rows.length).toBe(MESSAGES * PER_MESSAGE);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(messages.flatMap((m) => m.records.map((r) => r.id))));
    // Every message acknowledged once.
    expect([...acked.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    expect([...acked.keys()].sort((a, b) => a - b)).toEqual(messages.map((m) => m.id));
  } finally {
    await ingest.endAsync(true);
    await store.close();
    await broker.close();
  }
}, 60_000);
