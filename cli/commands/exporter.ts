// `catprobe exporter --tasks DIR [--listen 127.0.0.1:9115] …`: a drop-in for blackbox_exporter's
// TCP prober. GET /probe?module=<task id>&target=<host:port> runs that task against the target
// and answers Prometheus text with blackbox's metric names; SIGHUP reloads the tasks.

import { parseArgs } from "node:util";
import { ConfigError } from "../../host/config-error.js";
import { DEFAULT_CONCURRENCY, DEFAULT_LISTEN, startExporter } from "../../host/exporter/server.js";
import { DEFAULT_TIMEOUT_OFFSET_S } from "../../host/exporter/timeout.js";
import { ID_PATTERN, ID_RULE } from "../../host/wire/id.js";
import { apiToken } from "../secrets.js";
import { UsageError } from "../usage-error.js";
import { defaultProbeId } from "./run.js";

export async function exporter(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      tasks: { type: "string" },
      listen: { type: "string", default: DEFAULT_LISTEN },
      concurrency: { type: "string", default: String(DEFAULT_CONCURRENCY) },
      "timeout-offset": { type: "string", default: String(DEFAULT_TIMEOUT_OFFSET_S) },
      probe: { type: "string" },
      "api-token": { type: "string" },
      "api-token-file": { type: "string" },
      "metrics-public": { type: "boolean", default: false },
      "public-host": { type: "string", multiple: true, default: [] },
    },
  });
  if (positionals.length) throw new UsageError(`exporter takes no positional arguments (got ${positionals.join(" ")}); give the tasks with --tasks DIR`);
  if (!values.tasks) throw new UsageError("exporter needs --tasks DIR (a task file or a directory of them; each task id is a module)");
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
    throw new UsageError(`--concurrency ${values.concurrency}: must be a whole number from 1 to 10000`);
  }
  const offset = Number(values["timeout-offset"]);
  if (!(offset >= 0 && offset < 60)) throw new UsageError(`--timeout-offset ${values["timeout-offset"]}: must be seconds from 0 to under 60`);
  const probe = values.probe ?? defaultProbeId();
  if (!ID_PATTERN.test(probe)) throw new UsageError(`--probe ${JSON.stringify(probe)}: must be ${ID_RULE}`);
  let e;
  try {
    e = await startExporter({
      tasks: values.tasks,
      listen: values.listen,
      apiToken: apiToken(values["api-token"], values["api-token-file"], "--api-token", "--api-token-file"),
      metricsPublic: values["metrics-public"],
      publicHosts: values["public-host"],
      concurrency,
      timeoutOffsetS: offset,
      probe,
      log: (line) => console.error(`exporter: ${line}`),
    });
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) throw err;
    // a refused --listen, a bad --public-host, an address in use: the flag's problem
    throw new UsageError((err as Error).message);
  }
  const modules = e.modules.list().map((t) => t.spec.id);
  console.log(`exporter: ${modules.length} module${modules.length === 1 ? "" : "s"} from ${values.tasks}: ${modules.join(", ")}`);
  console.log(`exporter: listening on ${e.url}/ (probe: ${e.url}/probe?module=${modules[0]}&target=HOST:PORT)`);
  const reload = () => {
    try {
      e.modules.reload();
      console.error(`exporter: reloaded ${e.modules.size} module${e.modules.size === 1 ? "" : "s"} from ${values.tasks}`);
    } catch (err) {
      console.error(`exporter: reload failed, keeping the modules loaded before\n${(err as Error).message}`);
    }
  };
  process.on("SIGHUP", reload);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  process.off("SIGHUP", reload);
  await e.close();
  return 0;
}
