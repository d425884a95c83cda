// The `target` of a probe request: `host:port`, `[IPv6]:port`, or a host alone (the task's port).
// The host is checked exactly as a task file's target.host is, so a target the exporter accepts
// is one a task file could name; anything else is the caller's mistake (400), not a probe result.

import { isIP } from "node:net";
import { domainToASCII } from "node:url";
import { taskSchema } from "../task/schema.js";

export interface ProbeTarget {
  host: string;
  /** undefined: the task's own port */
  port?: number;
}

export class TargetError extends Error {}

const hostField = taskSchema.shape.target.shape.host;

function checkPort(text: string, target: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new TargetError(`target ${JSON.stringify(target)}: the port ${JSON.stringify(text)} is not a number from 1 to 65535`);
  return port;
}

export function parseTarget(target: string): ProbeTarget {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    throw new TargetError(`target ${JSON.stringify(target)}: the host must be host:port without a scheme (this is a TCP prober)`);
  }
  let host: string;
  let port: number | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(target);
  if (bracketed) {
    host = bracketed[1];
    if (isIP(host) !== 6) throw new TargetError(`target ${JSON.stringify(target)}: only an IPv6 address goes in brackets`);
    if (bracketed[2] !== undefined) port = checkPort(bracketed[2], target);
  } else if (isIP(target) === 6) {
    host = target; // a bare IPv6 address: its colons are not a port
  } else {
    const colon = target.lastIndexOf(":");
    host = colon < 0 ? target : target.slice(0, colon);
    if (colon >= 0) port = checkPort(target.slice(colon + 1), target);
    if (/^[0-9a-f:.]+$/i.test(host) && host.includes(":")) throw new TargetError(`target ${JSON.stringify(target)}: write an IPv6 address with a port as [address]:port`);
  }
  const checked = hostField.safeParse(host);
  if (!checked.success) {
    const ascii = /[^\x00-\x7f]/.test(host) ? domainToASCII(host) : "";
    const hint = ascii ? ` (an internationalized name goes in its ASCII form: ${ascii})` : "";
    const problem = checked.error.issues[0].message; // "must not be empty", or what the host should be
    throw new TargetError(`target ${JSON.stringify(target)}: the host ${problem.startsWith("must") ? problem : `must be ${problem}`}${hint}`);
  }
  return { host, port };
}
