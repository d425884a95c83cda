// One collector: database, MQTT ingest (on an external or an embedded broker), the fleet's task
// set and probe states, HTTP API and dashboard, retention. `catprobe collector` and the lab start it through startCollector().

import { createHash, randomUUID } from "node:crypto";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import type { MqttClient } from "mqtt";
import { readFileSync } from "node:fs";
import { ConfigError } from "../config-error.js";
import { isLoopback, parseHostPort } from "./address.js";
import { probeUserProblem } from "./broker-access.js";
import { createEmbeddedBroker, type EmbeddedBroker, type EmbeddedBrokerOptions } from "./broker.js";
import { startAlerts, type AlertEngine } from "./alerts/alerts.js";
import { loadRules } from "./alerts/rules.js";
import { createHttp } from "./http.js";
import { httpGuard } from "./http-guard.js";
import { countedLogger } from "./counted-log.js";
import { isPostgresUrl } from "./db/postgres.js";
import { Fleet } from "./fleet.js";
import { rejectionLogger, startIngest } from "./ingest.js";
import { CollectorMetrics } from "./metrics.js";
import { PasswordFile } from "./passwords.js";
import { dbName, openStore, type Store } from "./store.js";

export interface CollectorOptions {
  /** mqtt://host:port (or mqtts://) of an external broker; absent: an embedded aedes broker is started */
  broker?: string;
  /** embedded broker listen address; "127.0.0.1:0" picks a free port (default "127.0.0.1:1883") */
  mqttListen?: string;
  /** HTTP listen address (default "127.0.0.1:8080"; port 0 picks a free one) */
  http?: string;
  /** Bearer token of every HTTP endpoint but the dashboard page; required when `http` is not loopback */
  apiToken?: string;
  /** /metrics answers without the token */
  metricsPublic?: boolean;
  /** names the HTTP Host header may carry besides the listen address and loopback names */
  publicHosts?: string[];
  /** SQLite database file, or a postgres:// (postgresql://) URL of a database several collectors may share */
  db: string;
  /**
   * the MQTT client id the collector subscribes as; the broker keeps its session (and queues
   * its results) under this id while it is away. Default: derived from the database file, or
   * for PostgreSQL from the URL without password and the HTTP listen address (see ingestClientId)
   */
  clientId?: string;
  /** results older than this many days are deleted (default 30) */
  retentionDays?: number;
  /**
   * embedded broker: probes log in with username = probe id and a password from this file
   * (mosquitto_passwd format); absent: anonymous clients on loopback only
   */
  passwords?: string;
  /** embedded broker: serve MQTT over TLS with this certificate and key (PEM files) */
  mqttTls?: { cert: string; key: string };
  /** credentials at an external broker (the embedded one takes `passwords`) */
  username?: string;
  password?: string;
  /** CA certificate for mqtts:// brokers */
  ca?: Buffer;
  /** MQTT version for an external broker (default 5; the embedded broker always uses 4) */
  protocolVersion?: 4 | 5;
  /** subscribe as a shared subscription in this group (brokers that support $share) */
  shareGroup?: string;
  /** alert rules file (DESIGN.md "Alerts and Prometheus"): evaluated over the stored results, notifications to its webhooks */
  alerts?: string;
  log?: (line: string) => void;
}

export interface Collector {
  readonly httpUrl: string;
  readonly brokerUrl: string;
  readonly store: Store;
  readonly metrics: CollectorMetrics;
  readonly fleet: Fleet;
  close(): Promise<void>;
}

const HOUR_MS = 3_600_000;

/**
 * The same collector always subscribes as the same client, so the broker's queue for it
 * survives restarts. With SQLite one collector owns the file, which names it; collectors
 * sharing a PostgreSQL database differ by their HTTP listen address (one per host and port).
 * An HTTP port 0 is another port at each start: such a collector gets an id of its own each
 * time, as two of them must never share one.
 */
export function ingestClientId(db: string, http: { host: string; port: number }): string {
  const hash = (key: string) => `catprobe-collector-${createHash("sha256").update(key).digest("hex").slice(0, 12)}`;
  if (!isPostgresUrl(db)) return hash(dbName(db));
  return hash(`${dbName(db)}\n${http.port === 0 ? randomUUID() : `${http.host}:${http.port}`}`);
}

/**
 * The embedded broker's password file and TLS files, checked before anything opens: a
 * non-loopback listen address needs passwords, and `username`/`password` (an external
 * broker's) would look like protection the embedded broker does not give.
 */
function embeddedBrokerSecurity(opts: CollectorOptions, mqttListen: string): Pick<EmbeddedBrokerOptions, "passwords" | "tls"> {
  if (opts.username !== undefined || opts.password !== undefined) {
    throw new ConfigError(["--username/--password are credentials at an external --broker; the embedded broker checks probes against --passwords FILE"]);
  }
  const { host } = parseHostPort(mqttListen, "--mqtt-listen");
  if (!opts.passwords && !isLoopback(host)) {
    throw new ConfigError([`--mqtt-listen ${mqttListen}: not a loopback address; without --passwords FILE the embedded broker accepts anonymous clients, so it listens on loopback only`]);
  }
  return {
    passwords: opts.passwords ? PasswordFile.load(opts.passwords, probeUserProblem) : undefined,
    tls: opts.mqttTls && { cert: readPem(opts.mqttTls.cert, "--mqtt-tls-cert"), key: readPem(opts.mqttTls.key, "--mqtt-tls-key") },
  };
}

function readPem(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError([`${flag} ${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
}

export async function startCollector(opts: CollectorOptions): Promise<Collector> {
  const log = opts.log ?? (() => {});
  // HTTP options are checked before anything opens.
  const listen = parseHostPort(opts.http ?? "127.0.0.1:8080", "--http");
  const guard = httpGuard({ listen, apiToken: opts.apiToken, metricsPublic: opts.metricsPublic, publicHosts: opts.publicHosts });
  const rules = opts.alerts === undefined ? undefined : loadRules(opts.alerts);
  const alerts: { engine?: AlertEngine } = {};
  const store = await openStore(opts.db);
  const metrics = new CollectorMetrics();
  const fleet = new Fleet(store, metrics, log);
  const { server, events } = createHttp({ store, metrics, guard, fleet, alerts });
  let broker: EmbeddedBroker | undefined;
  let ingest: MqttClient | undefined;
  try {
    const mqttListen = opts.mqttListen ?? "127.0.0.1:1883";
    if (!opts.broker) {
      const logOversize = rejectionLogger(log);
      const logDenial = countedLogger(log, "denied");
      broker = await createEmbeddedBroker({
        ...embeddedBrokerSecurity(opts, mqttListen),
        onOversize: (declared, remote) => {
          metrics.reject("too_large");
          logOversize("too_large", `connection from ${remote}`, `a ${declared}-byte packet; connection closed`);
        },
        onDeny: (reason, detail) => {
          metrics.deny(reason);
          logDenial(reason, detail);
        },
      });
    }
    const clientId = opts.clientId ?? ingestClientId(opts.db, listen);
    ingest = await startIngest({
      brokerUrl: opts.broker ?? `embedded broker on ${mqttListen}`, stream: broker?.connectLocal,
      clientId, store, metrics, shareGroup: opts.shareGroup,
      protocolVersion: opts.broker ? opts.protocolVersion ?? 5 : 4,
      username: opts.username, password: opts.password, ca: opts.ca,
      onStored: (n) => events.stored(n), onStatus: (probe, status, retained) => fleet.status(probe, status, retained), log,
    });
    await fleet.attach(ingest);
    // Subscribed: only now may probes reach the embedded broker.
    const brokerUrl = opts.broker ?? await broker!.listen(mqttListen);
    const { host, port } = listen;
    server.listen(port, host);
    await once(server, "listening").catch((err: Error) => {
      throw new Error(`cannot serve HTTP on ${host}:${port}: ${err.message}`);
    });
    const retention = (opts.retentionDays ?? 30) * 24 * HOUR_MS;
    const prune = async () => {
      const removed = await store.prune(Date.now() - retention);
      if (removed) log(`retention: deleted ${removed} results older than ${opts.retentionDays ?? 30} days`);
    };
    await prune();
    const pruner = setInterval(() => prune().catch((err: Error) => log(`retention: ${err.message}`)), HOUR_MS).unref();
    const bound = (server.address() as AddressInfo).port;
    const httpUrl = `http://${host.includes(":") ? `[${host}]` : host}:${bound}`;
    if (rules) {
      alerts.engine = await startAlerts({ rules, db: store.db, externalURL: httpUrl, log });
      alerts.engine.registerMetrics(metrics.registry);
    }
    return {
      httpUrl,
      brokerUrl,
      store,
      metrics,
      fleet,
      close: async () => {
        clearInterval(pruner);
        await alerts.engine?.close();
        events.close();
        await ingest!.endAsync();
        await fleet.idle();
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
        await broker?.close();
        await store.close();
      },
    };
  } catch (err) {
    await ingest?.endAsync(true);
    server.close();
    await broker?.close();
    await store.close();
    throw err;
  }
}
