// A probe's tasks on `catprobe/v1/config/{probe}` (DESIGN.md "MQTT", "Fleet control plane"):
// retained, QoS 1, published by the collector only. The tasks are task files' contents; the
// probe checks each with the task schema, as `run` checks a file, before it applies any.

/** The most a config message may hold: the message limit (a probe's share of the task set). */
export { MAX_MESSAGE_BYTES as MAX_CONFIG_BYTES } from "./record.js";

export interface ProbeConfig {
  v: 1;
  /** the version of the whole task set this probe's share comes from */
  version: number;
  /** the task files' JSON, `assign` included */
  tasks: unknown[];
}

export function configMessage(version: number, tasks: unknown[]): string {
  const config: ProbeConfig = { v: 1, version, tasks };
  return JSON.stringify(config);
}

/** The envelope of a config message, or why it is not one (its tasks are checked by the probe). */
export function parseConfig(payload: Buffer): ProbeConfig | { error: string } {
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(payload.toString("utf8"));
  } catch {
    return { error: "not JSON" };
  }
  if (typeof c !== "object" || c === null || Array.isArray(c)) return { error: "not an object" };
  if (c.v !== 1) return { error: "v must be 1" };
  if (!Number.isSafeInteger(c.version) || (c.version as number) < 0) return { error: "version must be a whole number" };
  if (!Array.isArray(c.tasks)) return { error: "tasks must be an array" };
  return { v: 1, version: c.version as number, tasks: c.tasks };
}
