/** "127.0.0.1:8080" or "[::1]:8080" as host and port; `what` names the option in errors. */
export function parseHostPort(value: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`${what} ${value}: expected HOST:PORT, e.g. 127.0.0.1:8080`);
  return { host: m[1] ?? m[2], port };
}
