// Which PUBACKs the collector sends, on which connection, and when (host/collector/ingest.ts).
// The broker is a raw TCP server speaking just enough MQTT 3.1.1 (as in batch-bound.test.ts):
// it answers the CONNACK with the session flag a test asks for, grants every SUBSCRIBE, then
// hands the connection to the test, and records each PUBACK with its connection and message id.
// The store is the real SQLite store, its writes made slower (or failing) where a test needs a
// commit pending; a PUBACK's record is looked up in the database at its arrival (the SQLite
// store runs each query synchronously inside the call, so that is the database at that moment).
//
// - A PUBACK held for a commit answers the connection it was held on: after a reconnect to a
//   broker that lost the session, message id 1 names another message, and a late PUBACK from
//   the old connection would acknowledge it before it is stored.
// - PUBACKs held while a commit is pending are bounded (RECEIVE_MAXIMUM) also when the messages
//   add no records: rejected ones, statuses, dropped counts.
// - A dropped count or status is acknowledged only once written; a failed write is re-delivered.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "node:net";
import { afterEach, expect, it } from "vitest";
import { startIngest, RECEIVE_MAXIMUM, type IngestOptions } from "../../host/collector/ingest.js";
import { CollectorMetrics } from "../../host/collector/metrics.js";
import { openStore, type Store } from "../../host/collector/store.js";
import type { StoredRecord } from "../../host/wire/record.js";
import { droppedTopic, resultTopic, statusTopic } from "../../host/wire/topics.js";
import { packet, publishPacket, splitPackets } from "../helpers/mqtt-wire.js";
import { record } from "../helpers/records.js";
import { tcpServer, type TestServer } from "../helpers/tcp.js";
import { until } from "../helpers/until.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Puback { connection: number; id: number; at: number }

/**
 * A broker that calls `subscribed(socket, connection)` (1 for the first connection) once it has
 * granted a SUBSCRIBE, answering each CONNACK with `sessionPresent(connection)`.
 */
async function fakeBroker(
  subscribed: (socket: Socket, connection: number) => void,
  onPuback: (ack: Puback) => void = () => {},
  sessionPresent: (connection: number) => boolean = () => false,
) {
  const pubacks: Puback[] = [];
  const sockets: Socket[] = [];
  let connections = 0;
  const server: TestServer = await tcpServer((socket) => {
    const connection = ++connections;
    sockets[connection] = socket;
    let pending = Buffer.alloc(0);
    socket.on("data", (chunk) => {
      const { packets, rest } = splitPackets(Buffer.concat([pending, chunk]));
      pending = Buffer.from(rest);
      for (const { type, body } of packets) {
        if (type === 1) socket.write(Buffer.from([0x20, 0x02, sessionPresent(connection) ? 1 : 0, 0x00]));
        if (type === 8) {
          let filters = 0;
          for (let at = 2; at < body.length; at += 2 + body.readUInt16BE(at) + 1) filters++;
          socket.write(packet(0x90, Buffer.concat([body.subarray(0, 2), Buffer.alloc(filters, 0x01)])));
          subscribed(socket, connection);
        }
        if (type === 4) {
          const ack = { connection, id: body.readUInt16BE(0), at: Date.now() };
          pubacks.push(ack);
          onPuback(ack);
        }
        if (type === 12) socket.write(Buffer.from([0xd0, 0x00]));
      }
    });
  });
  return { server, pubacks, sockets, get connections() { return connections; } };
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function sqliteStore(): Promise<Store> {
  const store = await openStore(join(mkdtempSync(join(tmpdir(), "catprobe-ingest-acks-")), "c.db"));
  cleanups.push(() => store.close());
  return store;
}

async function ingest(port: number, store: Store, more: Partial<IngestOptions> = {}) {
  const client = await startIngest({
    brokerUrl: `mqtt://127.0.0.1:${port}`, clientId: "catprobe-collector-ingest-acks", protocolVersion: 4,
    store, metrics: new CollectorMetrics(), ...more,
  });
  cleanups.push(() => client.endAsync(true));
  return client;
}

it("does not send a PUBACK held on a lost connection over the next one, where its id names another message", async () => {
  const real = await sqliteStore();
  const committed = (r: StoredRecord) => real.db.get<{ found: number }>("SELECT 1 AS found FROM results WHERE id = ?", [r.id]);
  const now = Date.now();
  const first = record("edge-1", "t", now, null);
  const second = record("edge-1", "t", now + 1, null);
  let adds = 0;
  let broker: Awaited<ReturnType<typeof fakeBroker>> | undefined;
  // The first commit outlasts the connection and the reconnect (500 ms later); each later one is
  // slow enough that a PUBACK before it ends is seen as one.
  const store: Store = Object.assign(Object.create(real) as Store, {
    add: async (records: StoredRecord[]) => {
      if (++adds === 1) {
        broker!.sockets[1].destroy(); // the connection goes while the commit of message 1 is pending
        await sleep(1500);
      } else {
        await sleep(200);
      }
      return real.add(records);
    },
  });
  const uncommitted: Promise<boolean>[] = []; // per PUBACK on the second connection: was `second` not stored yet
  broker = await fakeBroker(
    (socket, connection) => {
      // The broker lost the session: its message ids start at 1 again, for a different message.
      const r = connection === 1 ? first : second;
      if (connection <= 2) socket.write(publishPacket(resultTopic(r.probe, r.task), JSON.stringify(r), 1));
    },
    (ack) => {
      if (ack.connection === 2) uncommitted.push(committed(second).then((row) => !row));
    },
  );
  cleanups.push(() => broker!.server.close());
  await ingest(broker.server.port, store);

  await until(async () => !!(await committed(second)), "the second connection's message stored");
  await until(() => broker!.pubacks.some((a) => a.connection === 2), "its PUBACK");
  await sleep(500); // (a stray one would have come by now)
  expect(await committed(first), "the first message, stored though its PUBACK was dropped").toBeTruthy();
  expect(broker.pubacks.filter((a) => a.connection === 2).map((a) => a.id), "PUBACKs on the second connection").toEqual([1]);
  expect(await Promise.all(uncommitted), "acknowledged before it was stored").toEqual([false]);
  expect(broker.pubacks.filter((a) => a.connection === 1)).toEqual([]);
}, 20_000);

it("holds at most RECEIVE_MAXIMUM PUBACKs while a commit is pending, also for messages with no records", async () => {
  const MESSAGES = 5000; // rejected ones, after one with a record
  const real = await sqliteStore();
  const acksAtCommitEnd: number[] = []; // PUBACKs received by the end of each add()'s delay
  let broker: Awaited<ReturnType<typeof fakeBroker>> | undefined;
  const store: Store = Object.assign(Object.create(real) as Store, {
    add: async (records: StoredRecord[]) => {
      await sleep(250);
      acksAtCommitEnd.push(broker!.pubacks.length);
      return real.add(records);
    },
  });
  const r = record("edge-1", "t", Date.now(), null);
  const publishes = [publishPacket(resultTopic(r.probe, r.task), JSON.stringify(r), 1)];
  for (let id = 2; id <= MESSAGES + 1; id++) publishes.push(publishPacket(resultTopic("edge-1", "t"), "not a result", id));
  broker = await fakeBroker((socket) => {
    void (async () => {
      for (const p of publishes) {
        if (socket.destroyed) return;
        if (!socket.write(p)) await new Promise((resolve) => socket.once("drain", resolve));
      }
    })();
  });
  cleanups.push(() => broker!.server.close());
  await ingest(broker.server.port, store);

  await until(() => broker!.pubacks.length >= MESSAGES + 1, "a PUBACK for every message", 30_000);
  await sleep(300);
  // PUBACKs go out after each commit: those between two ends of a commit's delay came from one
  // commit, and are at most the bound plus the one message whose processing waited.
  const released = [...acksAtCommitEnd, broker.pubacks.length].map((n, i, all) => n - (all[i - 1] ?? 0));
  expect(Math.max(...released), `PUBACKs per commit: ${released.join(", ")}`).toBeLessThanOrEqual(RECEIVE_MAXIMUM + 1);
  expect(broker.pubacks.length).toBe(MESSAGES + 1);
  expect(new Set(broker.pubacks.map((a) => a.id)).size).toBe(MESSAGES + 1);
  expect(broker.connections).toBe(1);
  expect(await real.db.get("SELECT 1 AS found FROM results WHERE id = ?", [r.id])).toBeTruthy();
}, 40_000);

const status = (probe: string) => JSON.stringify({
  v: 1, probe, state: "online", ts: Date.now(), labels: {}, appliedVersion: null, configError: null, spooled: 0, dropped: 0, software: "catprobe/test",
});

it.each(["dropped count", "status"] as const)("acknowledges a %s only once written, and not at all when the write fails", async (kind) => {
  const real = await sqliteStore();
  const writes: { done: boolean }[] = []; // each write of the message, in order; the first fails
  const slowWrite = async <T>(write: () => Promise<T>): Promise<T> => {
    const w = { done: false };
    writes.push(w);
    await sleep(300);
    if (writes.length === 1) throw new Error("disk full");
    const out = await write();
    w.done = true;
    return out;
  };
  const store: Store = Object.assign(Object.create(real) as Store, {
    setDropped: (probe: string, total: number) => slowWrite(() => real.setDropped(probe, total)),
  });
  const onStatus = kind === "status" ? () => slowWrite(async () => {}) : undefined;
  const written: boolean[] = []; // per PUBACK: was the write done at its arrival
  const broker = await fakeBroker(
    (socket) => {
      // Delivered on every connection (the broker kept it unacknowledged, or retained it).
      socket.write(kind === "status"
        ? publishPacket(statusTopic("edge-1"), status("edge-1"), 1)
        : publishPacket(droppedTopic("edge-1"), JSON.stringify({ probe: "edge-1", total: 5 }), 1));
    },
    () => written.push(writes.at(-1)?.done ?? false),
  );
  cleanups.push(() => broker.server.close());
  const lines: string[] = [];
  await ingest(broker.server.port, store, { onStatus, log: (line) => lines.push(line) });

  await until(() => broker.pubacks.length > 0, "a PUBACK", 10_000);
  await sleep(300);
  expect(broker.pubacks.filter((a) => a.connection === 1), "PUBACKs on the connection whose write failed").toEqual([]);
  expect(broker.pubacks.map((a) => a.connection)).toEqual([2]);
  expect(written, "written when acknowledged").toEqual([true]);
  expect(lines.some((l) => l.includes("disk full") && l.includes("re-delivery")), lines.join("\n")).toBe(true);
}, 20_000);
