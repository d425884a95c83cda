// `catprobe collector [--broker URL] [--http HOST:PORT] [--db FILE] …`: subscribe, store,
// serve the API and the dashboard until interrupted.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startCollector } from "../../host/collector/collector.js";
import { apiToken } from "../api-token.js";
import { checkBrokerUrl } from "../broker-url.js";
import { UsageError } from "../usage-error.js";

export async function collector(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      broker: { type: "string" },
      "mqtt-listen": { type: "string", default: "127.0.0.1:1883" },
      http: { type: "string", default: "127.0.0.1:8080" },
      db: { type: "string", default: "catprobe.db" },
      "retention-days": { type: "string", default: "30" },
      username: { type: "string" },
      password: { type: "string" },
      ca: { type: "string" },
      share: { type: "string" },
      // HTTP: the token every endpoint but the dashboard page requires (also CATPROBE_API_TOKEN),
      // /metrics without it, and names the Host header may carry besides --http and localhost.
      "api-token": { type: "string" },
      "api-token-file": { type: "string" },
      "metrics-public": { type: "boolean", default: false },
      "public-host": { type: "string", multiple: true, default: [] },
    },
  });
  if (positionals.length) throw new UsageError(`collector takes no positional arguments (got ${positionals.join(" ")})`);
  const retentionDays = Number(values["retention-days"]);
  if (!(retentionDays > 0)) throw new UsageError(`--retention-days ${values["retention-days"]}: must be a positive number`);
  const broker = values.broker === undefined ? undefined : checkBrokerUrl(values.broker);
  const c = await startCollector({
    broker,
    mqttListen: values["mqtt-listen"],
    http: values.http,
    apiToken: apiToken(values["api-token"], values["api-token-file"], "--api-token", "--api-token-file"),
    metricsPublic: values["metrics-public"],
    publicHosts: values["public-host"],
    db: values.db!,
    retentionDays,
    username: values.username,
    password: values.password ?? process.env.CATPROBE_MQTT_PASSWORD,
    ca: values.ca ? readFileSync(values.ca) : undefined,
    shareGroup: values.share,
    log: (line) => console.error(`collector: ${line}`),
  });
  console.log(`collector: results from ${c.brokerUrl}${broker ? "" : " (embedded broker)"} into ${values.db}`);
  console.log(`collector: dashboard and API at ${c.httpUrl}/`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await c.close();
  return 0;
}
