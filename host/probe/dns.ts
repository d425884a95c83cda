// Phase 1: the target's address. IP literals skip DNS; `dns.servers` asks those resolvers
// directly (a lab resolver); otherwise the system resolver. Any failure is a 600.

import { promises as dns } from "node:dns";
import { isIP } from "node:net";
import type { TaskSpec } from "../task/schema.js";
import { type Deadline, Limit, within } from "./deadline.js";
import { RunFault } from "./fault.js";

export interface Resolved {
  address: string;
  family: 4 | 6;
  /** false for an IP literal: no lookup ran, so there is no DNS time to report */
  lookedUp: boolean;
}

const DNS_ERRORS: Record<string, string> = {
  ENOTFOUND: "name not found (NXDOMAIN)",
  ESERVFAIL: "the DNS server failed (SERVFAIL)",
  EREFUSED: "the DNS server refused the query (REFUSED)",
  ENODATA: "no address of the wanted family",
  ETIMEOUT: "no answer from the DNS server",
  ECONNREFUSED: "the DNS server is unreachable",
  EAI_AGAIN: "temporary failure in name resolution",
};

function dnsFault(host: string, err: unknown): RunFault {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  const reason = DNS_ERRORS[code] ?? (err as Error).message;
  return new RunFault(600, `cannot resolve ${host}: ${reason}${code ? ` (${code})` : ""}`);
}

async function viaServers(resolver: dns.Resolver, host: string, family: 0 | 4 | 6): Promise<Resolved> {
  if (family === 6) return { address: (await resolver.resolve6(host))[0], family: 6, lookedUp: true };
  try {
    return { address: (await resolver.resolve4(host))[0], family: 4, lookedUp: true };
  } catch (err) {
    // "any family": a name with only AAAA records answers A queries with no data.
    if (family === 0 && (err as NodeJS.ErrnoException).code === "ENODATA") {
      return { address: (await resolver.resolve6(host))[0], family: 6, lookedUp: true };
    }
    throw err;
  }
}

/** literalTarget's answers by host (a probe's hosts are its tasks'): cleared when it grows past this. */
const literals = new Map<string, Resolved | null>();
const MAX_LITERALS = 4096;

/**
 * The target when its host is an IP literal (no lookup runs, no promise is made); else null.
 * The answer is shared between runs: treat it as read-only.
 */
export function literalTarget(host: string): Resolved | null {
  let known = literals.get(host);
  if (known === undefined) {
    const literal = isIP(host);
    known = literal ? { address: host, family: literal as 4 | 6, lookedUp: false } : null;
    if (literals.size >= MAX_LITERALS) literals.clear();
    literals.set(host, known);
  }
  return known;
}

export async function resolveTarget(spec: TaskSpec, task: Deadline): Promise<Resolved> {
  const host = spec.target.host;
  const literal = literalTarget(host);
  if (literal) return literal;
  const { servers, timeoutMs, family } = spec.dns;
  const limit = new Limit(timeoutMs, 600, `cannot resolve ${host}: no answer within ${timeoutMs} ms (DNS timeout)`);
  let lookup: Promise<Resolved>;
  let resolver: dns.Resolver | undefined;
  if (servers) {
    resolver = new dns.Resolver({ timeout: timeoutMs, tries: 1 });
    resolver.setServers(servers);
    lookup = viaServers(resolver, host, family);
  } else {
    lookup = dns.lookup(host, { family }).then((r) => ({ address: r.address, family: r.family as 4 | 6, lookedUp: true }));
  }
  try {
    return await within(lookup.catch((err) => { throw dnsFault(host, err); }), [limit, task], () => resolver?.cancel());
  } finally {
    lookup.catch(() => {}); // a lookup abandoned at a deadline may still fail later
  }
}
