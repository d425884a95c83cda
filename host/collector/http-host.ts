// The Host header check against DNS rebinding (DESIGN.md "Identity and security"): a page on
// evil.example whose name an attacker re-points at this machine still sends `Host: evil.example`.

import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { isLoopback } from "./address.js";


/** The name part of a Host value ("A.b.:8080" → "a.b", "[::1]:80" → "::1"), or undefined if malformed. */
function hostName(value: string): string | undefined {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::\d*)?$/i.exec(value);
  return m ? (m[1] ?? m[2]).toLowerCase().replace(/\.$/, "") : undefined;
}

const WILDCARDS = new Set(["0.0.0.0", "::"]);

/** Every address of this machine's interfaces: what a client reaching a wildcard listener may name. */
function interfaceAddresses(): Set<string> {
  return new Set(Object.values(networkInterfaces()).flat().map((i) => i!.address.toLowerCase()));
}

/** A --public-host value as compared: a DNS name or an IP address, lower case, without a trailing dot. */
function publicName(value: string): string {
  if (isIP(value) === 0 && !/^[a-z0-9-]+(\.[a-z0-9-]+)*\.?$/i.test(value)) {
    throw new Error(`--public-host ${value}: expected a DNS name or an IP address, without a port`);
  }
  return value.toLowerCase().replace(/\.$/, "");
}

/**
 * Whether a request's Host names this collector: the listen address (for 0.0.0.0 or ::, any
 * address of the machine), a loopback name, or one of `publicHosts`. The port is ignored: a
 * rebinding page cannot choose the name, whatever port it uses, and a proxy may change the port.
 */
export function hostCheck(listenHost: string, publicHosts: string[]): (host: string | undefined) => boolean {
  const names = new Set([listenHost.toLowerCase(), ...publicHosts.map(publicName)]);
  const wildcard = WILDCARDS.has(listenHost);
  return (host) => {
    const name = host === undefined ? undefined : hostName(host);
    if (name === undefined) return false;
    return names.has(name) || isLoopback(name) || (wildcard && isIP(name) !== 0 && interfaceAddresses().has(name));
  };
}
