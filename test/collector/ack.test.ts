// Acknowledge after commit: the collector holds each PUBACK until the batch holding the
// message's records is committed. It does so through mqtt.js's internal _sendPacket (mqtt is
// pinned), so this test is what tells a new mqtt.js version apart: commits that fail must
// leave their messages unacknowledged, and the broker must deliver every one of them again.
// On both stores: PostgreSQL's commits resolve later, while more messages arrive.

import mqtt from "mqtt";
import { describe, expect, it } from "vitest";
import { startIngest } from "../../host/collector/ingest.js";
import { CollectorMetrics } from "../../host/collector/metrics.js";
import type { StoredRecord } from "../../host/wire/record.js";
import { openStore, type Store } from "../../host/collector/store.js";
import { resultTopic } from "../../host/wire/topics.js";
import { STORE_KINDS, newDatabase } from "../helpers/databases.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { record } from "../helpers/records.js";
import { until } from "../helpers/until.js";

/** `store`, but its first `failures` commits with records in them fail, as a full disk would. */
function failingFirst(store: Store, failures: number): Store & { failed: number } {
  const failing = Object.assign(Object.create(store) as Store, { failed: 0 });
  failing.add = async (records: StoredRecord[]) => {
    if (records.length > 0 && failing.failed < failures) {
      failing.failed++;
      throw new Error("disk I/O error (injected)");
    }
    return store.add(records);
  };
  return failing;
}

describe.each(STORE_KINDS)("acknowledge after commit on %s", (kind) => {
  it("leaves every message of a failed commit unacknowledged, so the broker delivers it again", async () => {
    const mosquitto = await Mosquitto.start();
    const store = failingFirst(await openStore(await newDatabase(kind)), 3);
    const ingest = await startIngest({
      brokerUrl: mosquitto.url, clientId: "catprobe-collector-acktest", protocolVersion: 5,
      store, metrics: new CollectorMetrics(),
    });
    const publisher = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 4, clientId: "ack-publisher" });
    try {
      const now = Date.now();
      const sent = Array.from({ length: 600 }, (_, i) => record(`edge-${i % 3}`, "t", now, i % 2 ? 607 : null));
      await Promise.all(sent.map((r) => publisher.publishAsync(resultTopic(r.probe, r.task), JSON.stringify(r), { qos: 1 })));
      const ids = async () => new Set((await store.db.all<{ id: string }>("SELECT id FROM results")).map((r) => r.id));
      await until(async () => (await ids()).size === sent.length, "every result, after the failed commits");
      expect(store.failed).toBe(3);
      expect(await ids()).toEqual(new Set(sent.map((r) => r.id)));
    } finally {
      await publisher.endAsync();
      await ingest.endAsync();
      await store.close();
      await mosquitto.stop();
    }
  });
});
