// Who may ask the exporter for probes, by the collector's rules (DESIGN.md "Identity and
// security"): nothing listens beyond loopback without a token; a request whose Host names
// neither the listen address, a loopback name nor a --public-host gets 421 (DNS rebinding);
// with a token, every endpoint needs `Authorization: Bearer TOKEN` (/metrics may be opened
// with --metrics-public). Unlike the collector's dashboard, the exporter's page lists the
// modules and their targets, so it is not open either.

import type { IncomingMessage } from "node:http";
import { isLoopback } from "../collector/address.js";
import { hostCheck } from "../collector/http-host.js";
import { bearerCheck, tokenProblem } from "../collector/http-token.js";

export interface GuardOptions {
  listen: { host: string; port: number };
  apiToken?: string;
  metricsPublic?: boolean;
  publicHosts?: string[];
}

export interface Refusal {
  status: 401 | 421;
  headers: Record<string, string>;
  error: string;
}

export type Guard = (req: IncomingMessage, path: string) => Refusal | undefined;

const UNAUTHORIZED = {
  missing: { header: 'Bearer realm="catprobe-exporter"', error: "this exporter requires Authorization: Bearer <its --api-token> (Prometheus: authorization: { credentials_file: … })" },
  invalid: { header: 'Bearer realm="catprobe-exporter", error="invalid_token"', error: "the token is not this exporter's" },
};

/** Checks the options (a bad one throws, naming its flag) and returns the check of each request. */
export function exporterGuard(opts: GuardOptions): Guard {
  const { host, port } = opts.listen;
  const token = opts.apiToken;
  if (token === undefined && !isLoopback(host)) {
    throw new Error(`--listen ${host.includes(":") ? `[${host}]` : host}:${port} is reachable beyond this machine: ` +
      "give a token (--api-token-file FILE, --api-token or CATPROBE_API_TOKEN), or listen on loopback");
  }
  const problem = token === undefined ? undefined : tokenProblem(token);
  if (problem) throw new Error(`--api-token: ${problem}`);
  const hostOk = hostCheck(host, opts.publicHosts ?? []);
  const bearer = token === undefined ? undefined : bearerCheck(token);
  return (req, path): Refusal | undefined => {
    if (!hostOk(req.headers.host)) {
      return { status: 421, headers: {}, error: `Host ${JSON.stringify(req.headers.host ?? "")} is not a name of this exporter (see --public-host)` };
    }
    if (!bearer || (opts.metricsPublic && path === "/metrics")) return undefined;
    const verdict = bearer(req.headers.authorization);
    if (verdict === "ok") return undefined;
    return { status: 401, headers: { "www-authenticate": UNAUTHORIZED[verdict].header }, error: UNAUTHORIZED[verdict].error };
  };
}
