// Probe and task ids (DESIGN.md "Task file"): they become MQTT topic levels and file names.

export const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const ID_RULE = "1–64 characters of A-Z a-z 0-9 . _ -";

/**
 * MQTT client ids (DESIGN.md "Identity and security"): a probe connects as
 * `catprobe-probe-{id}`, which is also its identity on an embedded broker without passwords;
 * `catprobe-collector-*` belongs to the collector alone.
 */
export const PROBE_CLIENT_PREFIX = "catprobe-probe-";
export const COLLECTOR_CLIENT_PREFIX = "catprobe-collector-";

export const probeClientId = (probe: string) => `${PROBE_CLIENT_PREFIX}${probe}`;

/** The probe id a client id names, or null when it names none. */
export function probeOfClientId(clientId: string): string | null {
  if (!clientId.startsWith(PROBE_CLIENT_PREFIX)) return null;
  const id = clientId.slice(PROBE_CLIENT_PREFIX.length);
  return ID_PATTERN.test(id) ? id : null;
}
