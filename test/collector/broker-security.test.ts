// The embedded broker as an attacker on the same machine meets it: every attack of issue 10
// worked on the broker before identity and authorization, and is refused now, with nothing
// lost. Password files are made by the real mosquitto_passwd ($7$ and $6$ lines).

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { COLLECTOR_CLIENT_PREFIX, probeClientId } from "../../host/wire/id.js";
import { configTopic, droppedTopic, resultTopic, statusTopic } from "../../host/wire/topics.js";
import { createLabPki, writePkiFiles } from "../../simulator/certs.js";
import { connectPacket, publishPacket, session } from "../helpers/mqtt-wire.js";
import { ProbeClients } from "../helpers/probe-clients.js";
import { many, record } from "../helpers/records.js";
import { closedPort } from "../helpers/tcp.js";
import { until } from "../helpers/until.js";

const dir = mkdtempSync(join(tmpdir(), "catprobe-broker-security-"));
const PASSWORDS: Record<string, string> = { "edge-1": "sécret-🐈", "edge-2": "hunter2 ünï" };

/** A password file made by mosquitto_passwd: edge-1 as $7$ (its default), edge-2 as $6$. */
function passwordFile(): string {
  const file = join(dir, "passwd");
  writeFileSync(file, "");
  for (const [user, password] of Object.entries(PASSWORDS)) {
    const sha512 = user === "edge-2" ? ["-H", "sha512"] : [];
    const made = spawnSync("mosquitto_passwd", [...sha512, "-b", file, user, password]);
    if (made.error) throw new Error("mosquitto_passwd not found: apt-get install mosquitto");
    if (made.status !== 0) throw new Error(`mosquitto_passwd: ${made.stderr}`);
  }
  return file;
}

const stored = async (c: Collector, probe: string) =>
  (await c.store.db.get<{ n: number }>("SELECT count(*) AS n FROM results WHERE probe = ?", [probe]))!.n;
const port = (c: Collector) => Number(new URL(c.brokerUrl).port);
const login = (user: string) => ({ username: user, password: PASSWORDS[user] });
const metricsText = async (c: Collector) => (await fetch(`${c.httpUrl}/metrics`)).text();
/** The SUBACK's codes for `filters` (mqtt.js rejects a SUBACK holding 128, the packet attached). */
async function granted(client: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters, { qos: 1 })).map((g) => g.qos);
  } catch (err) {
    const suback = (err as { packet?: { granted?: number[] } }).packet;
    if (!suback?.granted) throw err;
    return suback.granted;
  }
}

const CONNACK = { accepted: 0, identifierRejected: 2, badCredentials: 4, notAuthorized: 5 };

/** What a raw session of `clientId` with `credentials` gets for publishing each of `payloads` to `topic`. */
function attack(c: Collector, clientId: string, credentials: { username: string; password: string } | undefined, topic: string, payloads: string[]) {
  return session(port(c), Buffer.concat([connectPacket(clientId, credentials), ...payloads.map((p, i) => publishPacket(topic, p, i + 1))]), payloads.length);
}

describe("the embedded broker with a password file", () => {
  let c: Collector;
  const logged: string[] = [];
  let probes: ProbeClients;

  beforeAll(async () => {
    c = await startCollector({
      mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(dir, "pw.db"), passwords: passwordFile(), log: (l) => logged.push(l),
    });
    probes = new ProbeClients(c.brokerUrl, (p) => PASSWORDS[p]);
  });
  afterAll(async () => {
    await probes?.end();
    await c?.close();
  });

  it("lets probes in with $7$ and $6$ passwords made by mosquitto_passwd (non-ASCII too)", async () => {
    for (const user of ["edge-1", "edge-2"]) {
      expect(await attack(c, probeClientId(user), login(user), resultTopic(user, "t"), [])).toEqual({ connack: CONNACK.accepted, pubacks: 0 });
    }
  });

  it("refuses a wrong password, an unknown user and an anonymous client", async () => {
    const tries = [
      { clientId: probeClientId("edge-1"), credentials: { username: "edge-1", password: "hunter2 ünï" } },
      { clientId: probeClientId("edge-9"), credentials: { username: "edge-9", password: "anything" } },
      { clientId: probeClientId("edge-1"), credentials: undefined },
    ];
    for (const t of tries) {
      const before = Number((await metricsText(c)).match(/catprobe_broker_denied_total\{reason="credentials"\} (\d+)/)![1]);
      const out = await attack(c, t.clientId, t.credentials, resultTopic("edge-1", "t"), [JSON.stringify(record("edge-1", "t", Date.now(), null))]);
      expect(out).toEqual({ connack: CONNACK.badCredentials, pubacks: 0 });
      expect(await c.metrics.deniedCount("credentials")).toBe(before + 1);
    }
    expect(await stored(c, "edge-1")).toBe(0);
  });

  it("refuses forged results, presence and dropped counts of another probe; nothing of them is stored", async () => {
    // The attack that stored 50 of 50: edge-1, logged in, publishing as edge-2.
    // (in one batch message: aedes closes a connection that pipelines over 42 packets before its CONNACK)
    const forged = JSON.stringify(many(50, "edge-2", "t", Date.now(), 601));
    expect(await attack(c, probeClientId("edge-1"), login("edge-1"), resultTopic("edge-2", "t"), [forged])).toEqual({ connack: CONNACK.accepted, pubacks: 0 });
    for (const [topic, payload] of [[statusTopic("edge-2"), "offline"], [droppedTopic("edge-2"), JSON.stringify({ probe: "edge-2", total: 123_456 })]]) {
      expect(await attack(c, probeClientId("edge-1"), login("edge-1"), topic, [payload]), topic).toEqual({ connack: CONNACK.accepted, pubacks: 0 });
    }
    expect(await c.metrics.deniedCount("publish")).toBe(3);
    // The real edge-2 still gets through, and only its own results are there.
    await probes.publish(resultTopic("edge-2", "t"), JSON.stringify(many(20, "edge-2", "t", Date.now(), null)));
    await probes.publish(droppedTopic("edge-2"), JSON.stringify({ probe: "edge-2", total: 3 }));
    await until(async () => await stored(c, "edge-2") === 20, "edge-2's own 20 results");
    await until(async () => /catprobe_probe_dropped_results_total 3$/m.test(await metricsText(c)), "edge-2's own dropped total");
    expect(await (await fetch(`${c.httpUrl}/api/dropped`)).json()).toEqual([{ probe: "edge-2", total: 3 }]);
  });

  it("lets nobody but the collector read results or $SYS; a probe reads only its own config", async () => {
    const edge1 = await probes.as("edge-1");
    for (const filter of ["#", "catprobe/v1/results/+/+", "catprobe/v1/results/edge-2/t", "$SYS/#", configTopic("edge-2")]) {
      expect(await granted(edge1, [filter]), filter).toEqual([128]);
    }
    expect(await granted(edge1, [configTopic("edge-1")])).toEqual([1]);
    expect(await c.metrics.deniedCount("subscribe")).toBe(5);
  });

  it("keeps the collector's client id and every probe's session to their owners", async () => {
    const collectorId = `${COLLECTOR_CLIENT_PREFIX}${createHash("sha256").update(resolve(join(dir, "pw.db"))).digest("hex").slice(0, 12)}`;
    // taking the collector's id (with valid credentials, and without), or another probe's
    const takeovers = [
      { clientId: collectorId, credentials: login("edge-1") },
      { clientId: collectorId, credentials: undefined },
      { clientId: probeClientId("edge-2"), credentials: login("edge-1") },
    ];
    const edge2 = await probes.as("edge-2");
    let edge2Closed = false;
    edge2.on("close", () => (edge2Closed = true));
    for (const t of takeovers) {
      const { connack } = await attack(c, t.clientId, t.credentials, resultTopic("edge-1", "t"), []);
      expect(connack === CONNACK.identifierRejected || connack === CONNACK.badCredentials, `${t.clientId}: CONNACK ${connack}`).toBe(true);
    }
    // The attempt that lost 20 of 20 results: the collector is still subscribed and acknowledging.
    const before = await stored(c, "edge-1");
    await probes.publish(resultTopic("edge-1", "t"), JSON.stringify(many(20, "edge-1", "t", Date.now(), 607)));
    await until(async () => await stored(c, "edge-1") === before + 20, "20 results after the takeover attempts");
    expect(edge2Closed).toBe(false);
    expect(await c.metrics.deniedCount("client_id")).toBeGreaterThanOrEqual(2);
  });

  it("logs denials without control characters, and counts them in /metrics by reason", async () => {
    const evil = "catprobe-probe-x\u001b[2J\r\nfake line\u202e";
    await attack(c, evil, login("edge-1"), resultTopic("edge-1", "t"), []);
    await until(() => logged.some((l) => l.includes("fake line")), "the denial in the log");
    for (const line of logged) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/);
    expect(logged.join("\n")).toContain("\\u001b[2J");
    const text = await metricsText(c);
    for (const reason of ["credentials", "client_id", "publish", "subscribe"]) {
      expect(text).toMatch(new RegExp(`catprobe_broker_denied_total\\{reason="${reason}"\\} [1-9]`));
    }
  });
});

describe("the embedded broker without a password file", () => {
  let c: Collector;

  beforeAll(async () => {
    c = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(dir, "anon.db") });
  });
  afterAll(() => c?.close());

  it("takes a loopback client's identity from its client id catprobe-probe-{id}, and refuses any other", async () => {
    const one = JSON.stringify(record("edge-1", "t", Date.now(), null));
    expect(await attack(c, "mallory", undefined, resultTopic("edge-1", "t"), [one])).toEqual({ connack: CONNACK.identifierRejected, pubacks: 0 });
    expect(await attack(c, probeClientId("edge-1"), undefined, resultTopic("edge-1", "t"), [one])).toEqual({ connack: CONNACK.accepted, pubacks: 1 });
    // as edge-1, publishing as edge-2
    const forged = JSON.stringify(record("edge-2", "t", Date.now(), null));
    expect(await attack(c, probeClientId("edge-1"), undefined, resultTopic("edge-2", "t"), [forged])).toEqual({ connack: CONNACK.accepted, pubacks: 0 });
    await until(async () => await stored(c, "edge-1") === 1, "edge-1's result");
    expect(await stored(c, "edge-2")).toBe(0);
  });

  it("refuses credentials it cannot check rather than seem to check them", async () => {
    const out = await attack(c, probeClientId("edge-1"), { username: "edge-1", password: "p" }, resultTopic("edge-1", "t"), []);
    expect(out.connack).toBe(CONNACK.badCredentials);
  });

  it("refuses $SYS and every result to a subscriber", async () => {
    const client = await mqtt.connectAsync(c.brokerUrl, { clientId: probeClientId("edge-3"), protocolVersion: 4, reconnectPeriod: 0 });
    try {
      expect(await granted(client, ["$SYS/#", "#", configTopic("edge-3")])).toEqual([128, 128, 1]);
    } finally {
      await client.endAsync();
    }
  });
});

describe("starting a collector with an embedded broker", () => {
  const db = () => join(dir, `start-${Math.random().toString(36).slice(2)}.db`);

  it("refuses a non-loopback --mqtt-listen without a password file", async () => {
    await expect(startCollector({ mqttListen: "0.0.0.0:0", http: "127.0.0.1:0", db: db() }))
      .rejects.toThrow(/--mqtt-listen 0\.0\.0\.0:0: not a loopback address; without --passwords FILE/);
  });

  it("refuses --username/--password, which only an external broker would check", async () => {
    await expect(startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: db(), username: "u", password: "p" }))
      .rejects.toThrow(/--username\/--password are credentials at an external --broker/);
  });

  it("names the file and the line of a bad password file", async () => {
    const file = join(dir, "bad-passwd");
    writeFileSync(file, "# probes\nedge-1:$7$101$c2FsdA==$aGFzaA==\nno colon\nedge 2:$6$c2FsdA==$aGFzaA==\nedge-3:plain\n");
    const err = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: db(), passwords: file }).catch((e: Error) => e);
    expect((err as Error).message.split("\n")).toEqual([
      `${file}: line 2: $7$: the hash must be 64 bytes, not 4`,
      `${file}: line 3: expected user:hash`,
      `${file}: line 4: user "edge 2" is not a probe id (1–64 characters of A-Z a-z 0-9 . _ -)`,
      `${file}: line 5: the hash must start with $7$ or $6$ (made by mosquitto_passwd)`,
    ]);
  });
});

describe("a probe over mqtts:// with a password file", () => {
  it("delivers through the embedded broker's TLS listener, user defaulting to the probe id", async () => {
    const pki = writePkiFiles(join(dir, "pki"), createLabPki());
    const c = await startCollector({
      mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(dir, "tls.db"), passwords: passwordFile(),
      mqttTls: { cert: pki.serverCertFile, key: pki.serverKeyFile },
    });
    try {
      expect(c.brokerUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
      const tasks = join(dir, "tls-tasks");
      mkdirSync(tasks, { recursive: true });
      writeFileSync(join(tasks, "t.json"), JSON.stringify({
        id: "tls-task", target: { host: "127.0.0.1", port: await closedPort() }, count: 5, intervalMs: 0, steps: [{ verify: "none" }],
      }));
      const passwordFileOfProbe = join(dir, "edge-1.password");
      writeFileSync(passwordFileOfProbe, `${PASSWORDS["edge-1"]}\n`, { mode: 0o600 });
      const probe = spawn(process.execPath, ["bin/catprobe.js", "probe", tasks, "--broker", c.brokerUrl, "--probe", "edge-1",
        "--ca", pki.caFile, "--password-file", passwordFileOfProbe, "--spool", join(dir, "tls-spool.db"), "--once"], { stdio: "ignore" });
      expect((await once(probe, "exit"))[0]).toBe(1); // its runs are refused connects (601), all delivered
      await until(async () => await stored(c, "edge-1") === 5, "5 results over TLS");
    } finally {
      await c.close();
    }
  }, 60_000);

  it("refuses a password on the command line (exit 2), pointing to --password-file", async () => {
    const probe = spawn(process.execPath, ["bin/catprobe.js", "probe", join(dir, "none"), "--broker", "mqtt://127.0.0.1:1", "--password", "s3cret"],
      { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    probe.stderr!.on("data", (d) => (err += d));
    expect((await once(probe, "exit"))[0]).toBe(2);
    expect(err).toContain("--password: a password on the command line is visible to every user of this machine");
    expect(err).toContain("--password-file FILE or CATPROBE_MQTT_PASSWORD");
  });
});
