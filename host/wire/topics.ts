// The MQTT topics (DESIGN.md "MQTT"): built and parsed here only, so the probe, the
// collector, the lab and the tests agree on them.

import { ID_PATTERN } from "./id.js";

const ROOT = "catprobe/v1";

export const resultTopic = (probe: string, task: string) => `${ROOT}/results/${probe}/${task}`;
export const statusTopic = (probe: string) => `${ROOT}/status/${probe}`;
export const droppedTopic = (probe: string) => `${ROOT}/dropped/${probe}`;
/** A probe's configuration (its tasks), published by the collector, retained. */
export const configTopic = (probe: string) => `${ROOT}/config/${probe}`;

/** Subscription filters of the collector. */
export const RESULTS_FILTER = `${ROOT}/results/+/+`;
export const DROPPED_FILTER = `${ROOT}/dropped/+`;
export const STATUS_FILTER = `${ROOT}/status/+`;

const RESULT = /^catprobe\/v1\/results\/([^/]+)\/([^/]+)$/;
const DROPPED = /^catprobe\/v1\/dropped\/([^/]+)$/;
const STATUS = /^catprobe\/v1\/status\/([^/]+)$/;

/** The probe and task of a results topic, or null when it is not one (or holds a bad id). */
export function parseResultTopic(topic: string): { probe: string; task: string } | null {
  const m = RESULT.exec(topic);
  return m && ID_PATTERN.test(m[1]) && ID_PATTERN.test(m[2]) ? { probe: m[1], task: m[2] } : null;
}

/** The probe of a dropped-results topic, or null. */
export function parseDroppedTopic(topic: string): string | null {
  const m = DROPPED.exec(topic);
  return m && ID_PATTERN.test(m[1]) ? m[1] : null;
}

/** The probe of a status topic, or null. */
export function parseStatusTopic(topic: string): string | null {
  const m = STATUS.exec(topic);
  return m && ID_PATTERN.test(m[1]) ? m[1] : null;
}
