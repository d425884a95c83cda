// Notifications in Alertmanager's webhook format (version "4"), so that receivers written for
// Alertmanager (chat bridges, paging services, scripts) take catprobe's alerts as they are.
// https://prometheus.io/docs/alerting/latest/configuration/#webhook_config

export interface AlertView {
  status: "firing" | "resolved";
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** epoch ms */
  startsAt: number;
  /** epoch ms; null while firing */
  endsAt: number | null;
  fingerprint: string;
}

export interface WebhookAlert {
  status: "firing" | "resolved";
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

export interface WebhookPayload {
  version: "4";
  groupKey: string;
  truncatedAlerts: number;
  status: "firing" | "resolved";
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: WebhookAlert[];
}

/** Alertmanager's endsAt of an alert that has not ended. */
const ZERO_TIME = "0001-01-01T00:00:00Z";
/** Alerts of one notification at most: a rule over a large fleet sends several. */
export const MAX_ALERTS_PER_NOTIFICATION = 500;

/** Labels (or annotations) every alert has with the same value. */
function common(maps: Record<string, string>[]): Record<string, string> {
  const [first, ...rest] = maps;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(first ?? {})) if (rest.every((m) => m[k] === v)) out[k] = v;
  return out;
}

const quote = (v: string) => JSON.stringify(v);

/** The dashboard filtered to the alert's task and probe. */
function generatorURL(externalURL: string, labels: Record<string, string>): string {
  const q = new URLSearchParams({ window: "5m" });
  if (labels.task) q.set("task", labels.task);
  if (labels.probe) q.set("probe", labels.probe);
  return `${externalURL}/?${q}`;
}

/**
 * The notifications of one rule's alerts in one evaluation, grouped by alertname as
 * Alertmanager's `group_by: [alertname]` would: status "firing" when any alert in it fires.
 */
export function notifications(rule: string, alerts: AlertView[], receiver: string, externalURL: string): WebhookPayload[] {
  const out: WebhookPayload[] = [];
  for (let i = 0; i < alerts.length; i += MAX_ALERTS_PER_NOTIFICATION) {
    const chunk = alerts.slice(i, i + MAX_ALERTS_PER_NOTIFICATION);
    out.push({
      version: "4",
      groupKey: `{}:{alertname=${quote(rule)}}`,
      truncatedAlerts: 0,
      status: chunk.some((a) => a.status === "firing") ? "firing" : "resolved",
      receiver,
      groupLabels: { alertname: rule },
      commonLabels: common(chunk.map((a) => a.labels)),
      commonAnnotations: common(chunk.map((a) => a.annotations)),
      externalURL,
      alerts: chunk.map((a) => ({
        status: a.status,
        labels: a.labels,
        annotations: a.annotations,
        startsAt: new Date(a.startsAt).toISOString(),
        endsAt: a.endsAt === null ? ZERO_TIME : new Date(a.endsAt).toISOString(),
        generatorURL: generatorURL(externalURL, a.labels),
        fingerprint: a.fingerprint,
      })),
    });
  }
  return out;
}
