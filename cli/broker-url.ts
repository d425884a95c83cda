// Checks a `--broker` value before mqtt.js sees it: mqtt.js reads "127.0.0.1:1883" as
// something else and retries for ever instead of saying so.
//
// A comma-separated list names the nodes of one broker cluster (host/mqtt-client/broker-list.ts).
// mqtt.js rotates host, port and scheme through the list but keeps the first URL's path,
// credentials and query for all of them, so a list must agree on those, and its schemes must be
// one family: mqtt/mqtts (TCP) or ws/wss (WebSocket).

import { UsageError } from "./usage-error.js";

const SCHEMES = ["mqtt", "mqtts", "ws", "wss"];

/** The broker URL or list, without blanks around its items, or a UsageError naming the option, the value and what is wrong. */
export function checkBrokerUrl(value: string, option = "--broker"): string {
  const items = value.split(",").map((item) => item.trim());
  const urls = items.map((item, i) => {
    const where = items.length > 1 ? `item ${i + 1} (${item}): ` : "";
    return checkOne(item, (why) => new UsageError(`${option} ${value}: ${where}${why}`));
  });
  const bad = (why: string) => new UsageError(`${option} ${value}: ${why}`);
  const first = urls[0];
  for (const [i, url] of urls.entries()) {
    const differs = `item ${i + 1} (${items[i]}) differs from item 1`;
    if (family(url) !== family(first)) throw bad(`${differs}: a list is all mqtt/mqtts or all ws/wss`);
    if (path(url) !== path(first)) throw bad(`${differs} in its path: the nodes of a list share one path`);
    if (url.username !== first.username || url.password !== first.password) {
      throw bad(`${differs} in its credentials: give them with --username/--password-file, once for the list`);
    }
  }
  return items.join(",");
}

const family = (url: URL) => (url.protocol.startsWith("ws") ? "ws" : "mqtt");
const path = (url: URL) => (url.pathname || "/") + url.search;

function checkOne(value: string, bad: (why: string) => UsageError): URL {
  if (!value) throw bad("no URL: a list has one between every two commas");
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
  return url;
}
