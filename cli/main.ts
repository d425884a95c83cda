// catprobe command line: `npx tsx host/cli.ts <command>` (which loads this file) or the `catprobe` bin.
// Exit status: 0 success, 1 a check failed, 2 a usage or configuration error.

import { UsageError } from "./usage-error.js";
import { ConfigError } from "../host/config-error.js";

const USAGE = `usage: catprobe <command>

commands:
  run <task.json|dir> [--probe ID] [--json] [--concurrency N]
                    run each task's schedule now; print a table, or one JSON result a line
  probe <task.json|dir> | --managed [--config-file FILE]  --broker URL[,URL…] [--probe ID]
        [--label K=V]… [--spool FILE] [--spool-bytes N] [--batch N] [--concurrency N] [--once]
        [--password-file FILE [--username U]] [--ca FILE] [--mqtt5] [--json]
                    run tasks on schedule for good (or --once) and publish every result over
                    MQTT through a durable spool; --managed runs the tasks the collector
                    assigns (the last config kept in FILE, run at start even offline)
  collector [--broker URL[,URL…]] [--http HOST:PORT] [--db FILE|postgres://…] [--alerts FILE]
            [--mqtt-listen HOST:PORT] [--retention-days N] [--passwords FILE] [--mqtt-tls-cert FILE --mqtt-tls-key FILE]
            [--username U --password-file FILE] [--ca FILE] [--share GROUP]
            [--api-token T | --api-token-file FILE] [--metrics-public] [--public-host NAME]…
                    store results from MQTT and serve the API and dashboard (embedded broker
                    unless --broker is given); with a token, every endpoint but the dashboard
                    page requires it (also CATPROBE_API_TOKEN; a non-loopback --http needs one)
  top [--window 1h] [--task ID] [--probe ID] [--collector URL] [--json]
      [--token T | --token-file FILE]
                    the top five error types from a running collector (the token also
                    from CATPROBE_API_TOKEN)
  tasks apply <task.json|dir> [--collector URL] [--token T | --token-file FILE]
                    check every file as run does, then replace the collector's task set with
                    them (a task not given is removed); print what changed and the new version
  tasks list [--collector URL] [--json] [--token T | --token-file FILE]
                    the collector's task set and its version
  probes [--collector URL] [--json] [--token T | --token-file FILE]
                    each probe's state, last seen, labels, applied/desired config version
                    ("!" when behind or in error), spooled and dropped results
  exporter --tasks DIR [--listen 127.0.0.1:9115] [--concurrency 64] [--timeout-offset 0.5]
           [--api-token T | --api-token-file FILE] [--metrics-public] [--public-host NAME]…
                    a blackbox_exporter-compatible TCP prober: GET /probe?module=<task id>
                    &target=<host:port> runs the task there and answers Prometheus metrics
                    (probe_success, …); a non-loopback --listen needs a token; SIGHUP or
                    POST /-/reload reloads the tasks
  lab <scenario.json> [--keep] [--json] [--http HOST:PORT] [--db FILE]
                    run a lab scenario: fault servers, virtual probes, a collector; compare
                    the collector's top five with the faults injected (exit 1 if they differ)
  lab serve <fault> [--reply TEXT]
                    start one fault server and print where it listens
  selftest          run the WebAssembly core's power-on self-test on every build
  md5 <file|->      MD5 of a file (or standard input) through the core, for md5 verify tasks
  demo              self-test, then one verified exchange with a loopback server

environment:
  CATPROBE_MQTT_PASSWORD  the MQTT password (probe; collector at an external broker) instead of
                    --password-file; the username defaults to the probe id
  CATPROBE_CORE     core build for the host: simd (default where supported), release, debug`;

// Each command is loaded when it runs: `run` need not load the collector, aedes and the lab.
async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case "run": return (await import("./commands/run.js")).run(args);
    case "probe": return (await import("./commands/probe.js")).probe(args);
    case "collector": return (await import("./commands/collector.js")).collector(args);
    case "top": return (await import("./commands/top.js")).top(args);
    case "tasks": return (await import("./commands/tasks.js")).tasks(args);
    case "probes": return (await import("./commands/probes.js")).probes(args);
    case "lab": return (await import("./commands/lab.js")).lab(args);
    case "exporter": return (await import("./commands/exporter.js")).exporter(args);
    case "selftest": return (await import("./commands/selftest.js")).selfTest();
    case "md5": return (await import("./commands/md5.js")).md5File(args);
    case "demo": return (await import("./commands/demo.js")).demo();
    case undefined: case "help": case "--help": case "-h":
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`catprobe: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

/** A bad option or value: parseArgs' own errors (an unknown option, a missing value) or ours. */
function isUsageError(err: Error): boolean {
  return err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS") === true;
}

/**
 * npx runs the bin through `sh -c` and forwards SIGTERM only to that shell, which dies without
 * passing it on: under npx, the parent going away is how a stop request (systemd, `timeout`,
 * `kill <npx pid>`) arrives, so it is taken as one.
 */
function stopWhenNpxIsGone(): void {
  if (process.env.npm_command !== "exec") return;
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    process.kill(process.pid, "SIGTERM");
  }, 200).unref();
}

// A closed pipe (`catprobe run … --json | head`) ends the output, not the process with a trace.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});

stopWhenNpxIsGone();
// A finished command ends the process: a socket a library failed to close (mqtt.js on a peer
// that is not an MQTT broker) must not keep a stopped probe running.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    if (err instanceof ConfigError) console.error(`catprobe: configuration error\n${err.message}`);
    else console.error(`catprobe: ${err.message}`);
    if (isUsageError(err)) console.error("see catprobe --help");
    process.exit(2);
  },
);
