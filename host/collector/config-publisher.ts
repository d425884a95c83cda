// Hands each probe its share of the task set (DESIGN.md "Fleet control plane"): the tasks
// assigned to it by its last reported labels, as a retained QoS 1 message on its config topic,
// published through the collector's own MQTT client (the only one the embedded broker lets
// publish configuration; at an external broker, the one with the collector's credentials).

import type { MqttClient } from "mqtt";
import { Counter, type Registry } from "prom-client";
import { isAssigned } from "../task/assign.js";
import type { TaskSpec } from "../task/schema.js";
import { MAX_CONFIG_BYTES, configMessage } from "../wire/config.js";
import { configTopic } from "../wire/topics.js";
import type { ProbeState, ProbeStates } from "./probe-states.js";
import type { TaskSetState } from "./task-set.js";

export class ConfigPublisher {
  private readonly tooLarge: Counter;

  constructor(private readonly client: MqttClient, private readonly probes: ProbeStates, registry: Registry,
    private readonly log: (line: string) => void) {
    this.tooLarge = new Counter({
      name: "catprobe_config_too_large_total", help: "Probe configs not published: larger than the MQTT message limit",
      registers: [registry],
    });
  }

  /** Publishes the config of every probe in `probes` (all known probes when omitted). */
  async publish(set: TaskSetState, probes?: ProbeState[]): Promise<void> {
    for (const probe of probes ?? await this.probes.list()) await this.publishTo(set, probe);
  }

  private async publishTo(set: TaskSetState, { probe, labels, publishError }: ProbeState): Promise<void> {
    const tasks = set.tasks.filter((t) => isAssigned(t.assign as TaskSpec["assign"], probe, labels));
    const message = configMessage(set.version, tasks);
    const bytes = Buffer.byteLength(message);
    if (bytes > MAX_CONFIG_BYTES) {
      // Not published: the probe keeps its last config and the gap shows as desired > applied.
      const error = `version ${set.version}: its ${tasks.length} tasks take ${bytes} bytes, over the ${MAX_CONFIG_BYTES}-byte ` +
        "MQTT message limit; not published (assign fewer or smaller tasks to this probe)";
      await this.probes.setPublishError(probe, error);
      this.tooLarge.inc();
      this.log(`config for ${probe}: ${error}`);
      return;
    }
    if (publishError !== null) await this.probes.setPublishError(probe, null);
    this.client.publish(configTopic(probe), message, { qos: 1, retain: true }, (err) => {
      if (err) this.log(`config for ${probe}: cannot publish: ${err.message}`);
    });
  }
}
