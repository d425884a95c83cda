// The wiring of a managed probe (DESIGN.md "Fleet control plane"), shared by `catprobe probe
// --managed` and the lab's managed fleet: a Publisher whose config topic feeds a ManagedProbe,
// which applies each config onto a Scheduler that runs for good; every result is published
// (spooled, then sent), and each change of the config state goes into the probe's status.

import { Publisher, type PublisherOptions } from "../mqtt/publisher.js";
import { ManagedProbe, type ConfigState } from "./managed.js";
import { Scheduler, type SchedulerOptions } from "./schedule.js";

export interface ManagedRunOptions {
  /** the probe's MQTT side (its config topic is wired here) */
  publisher: Omit<PublisherOptions, "onConfig" | "log">;
  /** how the tasks run; onResult is called after the result was handed to the publisher */
  scheduler: SchedulerOptions;
  /** where the applied config is kept */
  configFile: string;
  log: (line: string) => void;
  /** each change of the config state, after the status took it */
  onState?: (state: ConfigState) => void;
}

export interface ManagedRun {
  publisher: Publisher;
  scheduler: Scheduler;
  managed: ManagedProbe;
}

/**
 * Starts a managed probe: runs the config kept in `configFile` at once (if any), and every
 * config its topic brings once the publisher has connected. Stop it with the scheduler's
 * signal, wait for `scheduler.idle()` (runs in flight are published), then close the publisher.
 */
export function startManagedRun(opts: ManagedRunOptions): ManagedRun {
  // set below in the same turn, before the client can connect and a config arrive
  let managed: ManagedProbe | undefined;
  const publisher = new Publisher({ ...opts.publisher, log: opts.log, onConfig: (payload) => managed!.receive(payload) });
  const { onResult } = opts.scheduler;
  const scheduler = new Scheduler({
    ...opts.scheduler,
    onResult: (record, ran, scheduled) => {
      publisher.publish(record);
      return onResult?.(record, ran, scheduled);
    },
  });
  managed = new ManagedProbe({
    scheduler, pool: opts.scheduler.pool, configFile: opts.configFile, log: opts.log,
    onState: (state) => {
      publisher.updateStatus(state);
      opts.onState?.(state);
    },
  });
  managed.resume();
  return { publisher, scheduler, managed };
}
