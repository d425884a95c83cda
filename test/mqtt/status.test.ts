// The publisher's status object on a real broker: its shape for a probe that runs task files,
// republished at once when a config field changes, every statusEveryMs with fresh spool counts,
// and "offline" on close.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Publisher } from "../../host/mqtt/publisher.js";
import { SOFTWARE } from "../../host/mqtt/status.js";
import { Spool } from "../../host/mqtt/spool.js";
import { parseStatus, type ProbeStatus } from "../../host/wire/status.js";
import { statusTopic } from "../../host/wire/topics.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { record } from "../helpers/records.js";
import { until } from "../helpers/until.js";

const dir = mkdtempSync(join(tmpdir(), "catprobe-status-"));
let mosquitto: Mosquitto;
beforeAll(async () => {
  mosquitto = await Mosquitto.start();
});
afterAll(async () => {
  await mosquitto?.stop();
});

describe("the probe's status", () => {
  it("is the status object, republished on a change, periodically with fresh counts, and offline on close", async () => {
    const statuses: { at: number; status: ProbeStatus }[] = [];
    const watcher = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 4, clientId: "status-watcher" });
    watcher.on("message", (_t, payload) => {
      const status = parseStatus("edge-s", payload);
      if (!("state" in status) || "legacy" in status) throw new Error(`not a status object: ${payload}`);
      statuses.push({ at: Date.now(), status });
    });
    await watcher.subscribeAsync(statusTopic("edge-s"), { qos: 1 });
    const spool = new Spool(join(dir, "s.db"));
    const everyMs = 300;
    const labels = { site: "東京-1", rack: "b=2" };
    const publisher = new Publisher({ brokerUrl: mosquitto.url, probe: "edge-s", spool, labels, statusEveryMs: everyMs });
    const last = () => statuses.at(-1)?.status;

    await until(() => statuses.length >= 1, "the status at connect");
    expect(last()).toEqual({ v: 1, probe: "edge-s", state: "online", ts: expect.any(Number), labels, appliedVersion: null,
      configError: null, spooled: 0, dropped: 0, software: SOFTWARE });
    expect(SOFTWARE).toMatch(/^catprobe\/\d+\.\d+\.\d+$/);

    // a change of a config field goes out at once, not at the next period
    const changed = Date.now();
    publisher.updateStatus({ appliedVersion: 3, configError: "config v4 task 0: port: is required" });
    await until(() => last()?.appliedVersion === 3, "the change");
    expect(statuses.at(-1)!.at - changed).toBeLessThan(everyMs);
    expect(last()).toMatchObject({ state: "online", configError: "config v4 task 0: port: is required" });

    // the counts go out with the periodic status, at most and at least every statusEveryMs
    const from = statuses.length;
    publisher.publish({ ...record("edge-s", "t", Date.now(), null), address: null });
    await until(() => statuses.length >= from + 3, "three periodic statuses", 10 * everyMs);
    const periodic = statuses.slice(from);
    for (let i = 1; i < periodic.length; i++) expect(periodic[i].at - periodic[i - 1].at).toBeGreaterThan(everyMs / 2);
    expect(periodic.every((s) => s.status.spooled === 0 && s.status.dropped === 0)).toBe(true); // the result was delivered

    await publisher.close();
    await until(() => last()?.state === "offline", "offline on close");
    expect(last()).toMatchObject({ labels, appliedVersion: 3, configError: "config v4 task 0: port: is required" });
    spool.close();
    await watcher.endAsync();
  });
});
