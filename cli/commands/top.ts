// `catprobe top [--window 1h] [--task ID] [--probe ID] [--collector URL] [--token T]`: the top
// five error types from a running collector, as a table.

import { parseArgs } from "node:util";
import { tokenHeaderBytes } from "../../host/collector/http-token.js";
import type { TopErrors } from "../../host/collector/stats.js";
import { TOKEN_ENV, apiToken } from "../secrets.js";
import { UsageError } from "../usage-error.js";

export async function top(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      window: { type: "string", default: "1h" },
      task: { type: "string" },
      probe: { type: "string" },
      collector: { type: "string", default: "http://127.0.0.1:8080" },
      json: { type: "boolean", default: false },
      // the collector's --api-token (also CATPROBE_API_TOKEN)
      token: { type: "string" },
      "token-file": { type: "string" },
    },
  });
  const query = new URLSearchParams({ window: values.window! });
  if (values.task) query.set("task", values.task);
  if (values.probe) query.set("probe", values.probe);
  const url = `${values.collector!.replace(/\/$/, "")}/api/top-errors?${query}`;
  const token = apiToken(values.token, values["token-file"], "--token", "--token-file");
  let res: Response;
  try {
    res = await fetch(url, { headers: token ? { authorization: `Bearer ${tokenHeaderBytes(token)}` } : {} });
  } catch (err) {
    throw new Error(`cannot reach the collector at ${values.collector}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
  if (res.status === 401) {
    throw new UsageError(token ? `the collector at ${values.collector} refused the API token`
      : `the collector at ${values.collector} requires its API token: give --token-file FILE, --token T or ${TOKEN_ENV}`);
  }
  const body = (await res.json()) as TopErrors & { error?: string };
  if (!res.ok) throw new UsageError(body.error ?? `collector answered ${res.status}`);
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
