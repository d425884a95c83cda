import { isIP } from "node:net";

/** "127.0.0.1:8080" or "[::1]:8080" as host and port; `what` names the option in errors. */
export function parseHostPort(value: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`${what} ${value}: expected HOST:PORT, e.g. 127.0.0.1:8080`);
  return { host: m[1] ?? m[2], port };
}

/**
 * Whether a host name or address is one only this machine reaches: localhost, ::1, 127.0.0.0/8
 * (also as an IPv4-mapped address, the way a dual-stack socket reports a peer).
 */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return h === "localhost" || h === "::1" || (isIP(v4) === 4 && v4.startsWith("127."));
}
