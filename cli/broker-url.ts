// Checks a `--broker` value before mqtt.js sees it: mqtt.js reads "127.0.0.1:1883" or
// "mqtt://a:1,mqtt://b:2" as something else and retries for ever instead of saying so.

import { UsageError } from "./usage-error.js";

const SCHEMES = ["mqtt", "mqtts", "ws", "wss"];

/** The broker URL, unchanged, or a UsageError naming the option, the value and what is wrong. */
export function checkBrokerUrl(value: string, option = "--broker"): string {
  const bad = (why: string) => new UsageError(`${option} ${value}: ${why}`);
  if (value.includes(",")) throw bad("several brokers (a cluster) are not supported yet: give one URL");
  // Without "scheme://", "localhost:1883" would parse with the scheme "localhost".
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1].toLowerCase();
  if (!scheme) throw bad(`no scheme: expected one of ${SCHEMES.map((s) => `${s}://`).join(", ")} (e.g. mqtt://${value})`);
  if (!SCHEMES.includes(scheme)) throw bad(`the scheme must be one of ${SCHEMES.join(", ")}, not ${scheme}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad("not a valid URL (a host, and a port from 1 to 65535)");
  }
  if (!url.hostname) throw bad("no host: expected mqtt://HOST:PORT");
  if (url.port === "0") throw bad("the port must be from 1 to 65535");
  if (!scheme.startsWith("ws") && url.pathname !== "" && url.pathname !== "/") {
    throw bad(`a path is only for ws:// and wss:// (got ${url.pathname})`);
  }
  return value;
}
