// `catprobe top [--window 1h] [--task ID] [--probe ID] [--collector URL] [--token T]`: the top
// five error types from a running collector, as a table.

import { parseArgs } from "node:util";
import type { TopErrors } from "../../host/collector/stats.js";
import { COLLECTOR_OPTIONS, collectorRequest } from "../collector-api.js";
import { UsageError } from "../usage-error.js";

export async function top(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      window: { type: "string", default: "1h" },
      task: { type: "string" },
      probe: { type: "string" },
      json: { type: "boolean", default: false },
      ...COLLECTOR_OPTIONS,
    },
  });
  const query = new URLSearchParams({ window: values.window! });
  if (values.task) query.set("task", values.task);
  if (values.probe) query.set("probe", values.probe);
  const { status, body: answer } = await collectorRequest(values, `/api/top-errors?${query}`);
  const body = answer as unknown as TopErrors & { error?: string };
  if (status !== 200) throw new UsageError(body.error ?? `collector answered ${status}`);
  if (values.json) {
    console.log(JSON.stringify(body));
    return 0;
  }
  const scope = [values.task && `task ${values.task}`, values.probe && `probe ${values.probe}`].filter(Boolean).join(", ");
  console.log(`top error types, ${new Date(body.from).toISOString()} – ${new Date(body.to).toISOString()}` +
    `${scope ? ` (${scope})` : ""}: ${body.total} results, ${body.failed} failed`);
  if (body.top.length === 0) {
    console.log(body.total ? "no failures" : "no results in this window");
    return 0;
  }
  console.log(`${"#".padEnd(3)}${"CODE".padEnd(6)}${"COUNT".padStart(8)}${"FAILURES".padStart(10)}${"RESULTS".padStart(9)}  DEFINITION`);
  body.top.forEach((e, i) => console.log(`${String(i + 1).padEnd(3)}${String(e.code).padEnd(6)}${String(e.count).padStart(8)}` +
    `${(e.shareOfFailures * 100).toFixed(1).padStart(9)}%${(e.shareOfResults * 100).toFixed(1).padStart(8)}%  ${e.definition}`));
  return 0;
}
