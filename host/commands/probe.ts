// `catprobe probe <task.json|dir> --broker URL …`: a probe that runs its tasks on schedule and
// publishes every result over MQTT through its durable spool. Runs until interrupted, or with
// --once runs each schedule once, waits until the spool is delivered, and exits.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CorePool } from "../core/pool.js";
import { MIN_SPOOL_BYTES, Publisher } from "../mqtt/publisher.js";
import { Spool } from "../mqtt/spool.js";
import { makeRunnable } from "../probe/runner.js";
import { runSchedules } from "../probe/schedule.js";
import { loadTasks } from "../task/load.js";
import { ID_PATTERN, ID_RULE } from "../wire/id.js";
import { defaultProbeId } from "./run.js";
import { UsageError } from "./usage.js";

function wholeNumber(value: string, flag: string, max: number, min = 1): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UsageError(`${flag} ${value}: must be a whole number from ${min} to ${max}`);
  return n;
}

export async function probe(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      broker: { type: "string" },
      probe: { type: "string" },
      spool: { type: "string" },
      "spool-bytes": { type: "string", default: String(64 << 20) },
      batch: { type: "string", default: "1" },
      concurrency: { type: "string", default: "64" },
      once: { type: "boolean", default: false },
      "drain-timeout": { type: "string", default: "60000" },
      username: { type: "string" },
      password: { type: "string" },
      ca: { type: "string" },
      mqtt5: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError("probe takes one task file or directory");
  if (!values.broker) throw new UsageError("probe needs --broker mqtt://HOST:PORT");
  const id = values.probe ?? defaultProbeId();
  if (!ID_PATTERN.test(id)) throw new UsageError(`--probe ${JSON.stringify(id)}: must be ${ID_RULE}`);
  const pool = new CorePool();
  const tasks = loadTasks(positionals[0]).map((t) => makeRunnable(t, pool));
  const spool = new Spool(values.spool ?? `catprobe-spool-${id}.db`, wholeNumber(values["spool-bytes"]!, "--spool-bytes", 2 ** 40, MIN_SPOOL_BYTES));
  const publisher = new Publisher({
    brokerUrl: values.broker, probe: id, spool,
    username: values.username, password: values.password ?? process.env.CATPROBE_MQTT_PASSWORD,
    ca: values.ca ? readFileSync(values.ca) : undefined,
    protocolVersion: values.mqtt5 ? 5 : 4,
    batch: wholeNumber(values.batch!, "--batch", 1000),
    log: (line) => console.error(`probe ${id}: ${line}`),
  });
  console.error(`probe ${id}: ${tasks.length} task${tasks.length === 1 ? "" : "s"}, publishing to ${values.broker}` +
    (spool.size ? ` (${spool.size} results waiting in the spool)` : ""));
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    await runSchedules(tasks, {
      probe: id, pool, signal: abort.signal, forever: !values.once,
      concurrency: wholeNumber(values.concurrency!, "--concurrency", 10_000),
      onResult: (r) => {
        publisher.publish(r);
        if (values.json) console.log(JSON.stringify(r));
      },
    });
    if (values.once && !abort.signal.aborted) {
      await publisher.drain(wholeNumber(values["drain-timeout"]!, "--drain-timeout", 86_400_000));
    }
    return 0;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    await publisher.close();
    spool.close();
  }
}
