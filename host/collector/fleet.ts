// The collector's side of the fleet control plane (DESIGN.md "Fleet control plane"): the task
// set, the probes' states, and when each probe's config is published: for every probe on each
// change of the set, and for one probe on its first status or a change of its labels (its share
// may differ).

import type { MqttClient } from "mqtt";
import type { ReadStatus } from "../wire/status.js";
import { ConfigPublisher } from "./config-publisher.js";
import type { CollectorMetrics } from "./metrics.js";
import { ProbeStates } from "./probe-states.js";
import type { Store } from "./store.js";
import { TaskSet, type TaskJson, type TaskSetDiff } from "./task-set.js";

export class Fleet {
  readonly tasks: TaskSet;
  readonly probes: ProbeStates;
  private publisher: ConfigPublisher | undefined;
  private statuses: Promise<void> = Promise.resolve();

  constructor(store: Store, private readonly metrics: CollectorMetrics, private readonly log: (line: string) => void) {
    this.tasks = new TaskSet(store.db);
    this.probes = new ProbeStates(store.db);
    // catprobe_probe_up from the stored states, before any status is kept (statuses wait for it)
    this.statuses = this.probes.list().then((all) => {
      for (const p of all) this.metrics.probeState(p.probe, p.state);
    }).catch((err: Error) => this.log(`probe states: cannot read them for /metrics: ${err.message}`));
  }

  /**
   * Starts publishing through the collector's MQTT client, with every known probe's config
   * once: the embedded broker keeps retained messages in memory only, and a collector stopped
   * between storing a set and publishing it must not leave probes behind. Statuses received
   * before (while the client subscribed) are in the database, so this covers them too.
   */
  async attach(client: MqttClient): Promise<void> {
    this.publisher = new ConfigPublisher(client, this.probes, this.metrics.registry, this.log);
    await this.publisher.publish(await this.tasks.current());
  }

  /**
   * A valid status from `probe`'s status topic (`retained`: handed over at subscription).
   * Statuses are kept one after the other, in the order they arrived: each compares with the last.
   */
  status(probe: string, status: ReadStatus, retained: boolean): Promise<void> {
    const now = Date.now();
    this.statuses = this.statuses.then(async () => {
      const { first, labelsChanged } = await this.probes.record(probe, status, now, retained);
      this.metrics.probeState(probe, status.state);
      if (first || labelsChanged) await this.publisher?.publish(await this.tasks.current(), [(await this.probes.get(probe))!]);
    }).catch((err: Error) => this.log(`status of ${probe}: cannot keep it: ${err.message}`));
    return this.statuses;
  }

  /** Resolves once every status received so far is kept (before the store closes). */
  idle(): Promise<void> {
    return this.statuses;
  }

  /** Replaces the task set; on a change, every known probe gets its new config. */
  async apply(tasks: TaskJson[]): Promise<TaskSetDiff> {
    const diff = await this.tasks.apply(tasks);
    const changed = diff.added.length + diff.changed.length + diff.removed.length > 0;
    if (changed) await this.publisher?.publish(await this.tasks.current());
    return diff;
  }
}
