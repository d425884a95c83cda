// The Prometheus text exposition format (version 0.0.4), as Go's client writes it: families
// sorted by name, each with its HELP and TYPE lines, label values and help text escaped.

import { goFloat } from "./go-float.js";

export const TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: "gauge" | "counter";
  samples: Sample[];
}

const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const escapeLabel = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

function sampleLine(name: string, sample: Sample): string {
  const labels = Object.entries(sample.labels ?? {});
  const set = labels.length ? `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}` : "";
  return `${name}${set} ${goFloat(sample.value)}`;
}

/** The families as exposition text, sorted by name (as Go's registry gathers them). */
export function metricsText(families: MetricFamily[]): string {
  return [...families]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((f) => [`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`,
      ...f.samples.map((s) => sampleLine(f.name, s))].join("\n") + "\n")
    .join("");
}

export const gauge = (name: string, help: string, value: number, labels?: Record<string, string>): MetricFamily =>
  ({ name, help, type: "gauge", samples: [{ value, labels }] });
