// Talking to a running collector's HTTP API from the command line (`top`, `tasks`, `probes`):
// the --collector URL, its API token, and errors a user can act on.

import { tokenHeaderBytes } from "../host/collector/http-token.js";
import { TOKEN_ENV, apiToken } from "./secrets.js";
import { UsageError } from "./usage-error.js";

/** The options of every command that talks to a collector. */
export const COLLECTOR_OPTIONS = {
  collector: { type: "string", default: "http://127.0.0.1:8080" },
  // the collector's --api-token (also CATPROBE_API_TOKEN)
  token: { type: "string" },
  "token-file": { type: "string" },
} as const;

export interface CollectorFlags {
  collector?: string;
  token?: string;
  "token-file"?: string;
}

/**
 * A request to the collector's API, answered with its status and JSON body. Unreachable, a
 * refused token, or an answer that is not JSON end the command with a message.
 */
export async function collectorRequest(flags: CollectorFlags, path: string, init: { method?: string; body?: string } = {}) {
  const base = flags.collector!.replace(/\/$/, "");
  const token = apiToken(flags.token, flags["token-file"], "--token", "--token-file");
  const headers: Record<string, string> = init.body === undefined ? {} : { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${tokenHeaderBytes(token)}`;
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { ...init, headers });
  } catch (err) {
    throw new Error(`cannot reach the collector at ${flags.collector}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
  if (res.status === 401) {
    throw new UsageError(token ? `the collector at ${flags.collector} refused the API token`
      : `the collector at ${flags.collector} requires its API token: give --token-file FILE, --token T or ${TOKEN_ENV}`);
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new Error(`the collector at ${flags.collector} answered ${res.status} without JSON: is it a catprobe collector?`);
  }
  return { status: res.status, body: body as Record<string, unknown> };
}

/** A GET of the collector's API that must answer 200. */
export async function collectorGet(flags: CollectorFlags, path: string): Promise<unknown> {
  const { status, body } = await collectorRequest(flags, path);
  if (status !== 200) throw new Error(`the collector answered ${status}: ${String(body.error ?? "")}`);
  return body;
}

