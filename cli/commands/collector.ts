// `catprobe collector [--broker URL] [--http HOST:PORT] [--db FILE|postgres://…] …`: subscribe, store,
// serve the API and the dashboard until interrupted.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startCollector } from "../../host/collector/collector.js";
import { dbName } from "../../host/collector/store.js";
import { apiToken, mqttPassword } from "../secrets.js";
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
      // an SQLite file, or a postgres:// URL of a database several collectors may share
      db: { type: "string", default: "catprobe.db" },
      "retention-days": { type: "string", default: "30" },
      // The embedded broker: probes' passwords (mosquitto_passwd format), and MQTT over TLS.
      passwords: { type: "string" },
      "mqtt-tls-cert": { type: "string" },
      "mqtt-tls-key": { type: "string" },
      // An external --broker: the collector's credentials there (the password from a file or
      // CATPROBE_MQTT_PASSWORD; --password is only parsed to say so) and its CA.
      username: { type: "string" },
      password: { type: "string" },
      "password-file": { type: "string" },
      ca: { type: "string" },
      share: { type: "string" },
      alerts: { type: "string" },
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
  const [cert, key] = [values["mqtt-tls-cert"], values["mqtt-tls-key"]];
  if ((cert === undefined) !== (key === undefined)) throw new UsageError("--mqtt-tls-cert and --mqtt-tls-key go together");
  if (broker && (values.passwords || cert)) throw new UsageError("--passwords and --mqtt-tls-cert/--mqtt-tls-key are for the embedded broker; an external --broker has its own");
  const c = await startCollector({
    broker,
    mqttListen: values["mqtt-listen"],
    http: values.http,
    apiToken: apiToken(values["api-token"], values["api-token-file"], "--api-token", "--api-token-file"),
    metricsPublic: values["metrics-public"],
    publicHosts: values["public-host"],
    db: values.db!,
    retentionDays,
    passwords: values.passwords,
    mqttTls: cert && key ? { cert, key } : undefined,
    username: values.username,
    password: mqttPassword(values.password, values["password-file"]),
    ca: values.ca ? readFileSync(values.ca) : undefined,
    shareGroup: values.share,
    alerts: values.alerts,
    log: (line) => console.error(`collector: ${line}`),
  });
  console.log(`collector: results from ${c.brokerUrl}${broker ? "" : " (embedded broker)"} into ${dbName(values.db!)}`);
  console.log(`collector: dashboard and API at ${c.httpUrl}/`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await c.close();
  return 0;
}
