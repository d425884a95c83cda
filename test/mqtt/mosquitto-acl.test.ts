// The shipped Mosquitto identity and authorization (docs/mosquitto/catprobe.conf with
// password_file, acl_file and use_username_as_clientid; docs/mosquitto/catprobe.acl used as
// is; the password file made by the real mosquitto_passwd) against a real Mosquitto: a probe
// publishes and reads only its own topics, no client id takes over another's session, the
// collector's persistent session still works, and the ACL names the topics host/wire/topics.ts
// builds, as the embedded broker's rules do.
//
// "Nothing arrives" is never a sleep: after the forbidden messages a marker goes the same way
// (the same connection, or routed after the forbidden ones were acknowledged: Mosquitto routes
// a QoS 1 message to its subscribers before it sends the PUBACK, and delivers each subscriber's
// messages in that order), and the test waits for the marker.

import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Client, PublishPacket, Subscription } from "aedes";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { BrokerAccess } from "../../host/collector/broker-access.js";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { Publisher } from "../../host/mqtt/publisher.js";
import { Spool } from "../../host/mqtt/spool.js";
import { probeClientId } from "../../host/wire/id.js";
import { DROPPED_FILTER, RESULTS_FILTER, configTopic, droppedTopic, resultTopic, statusTopic } from "../../host/wire/topics.js";
import { AUTH_DIRECTIVES, CATPROBE_ACL, CATPROBE_CONF, Mosquitto, directives, shippedSetting } from "../helpers/mosquitto.js";
import { many, record } from "../helpers/records.js";
import { until } from "../helpers/until.js";

const dir = mkdtempSync(join(tmpdir(), "catprobe-mosquitto-acl-"));
const COLLECTOR = "catprobe-collector";
const PASSWORDS: Record<string, string> = {
  "edge-a": "a-secret", "edge-b": "b-secret", "edge-c": "c-secret", [COLLECTOR]: "collector-secret",
};

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function broker(): Promise<Mosquitto> {
  const b = await Mosquitto.start({ auth: { users: PASSWORDS } });
  cleanup.push(() => b.stop());
  return b;
}

/** An MQTT client logged in as `user` (client id: its probe client id unless given). */
async function login(b: Mosquitto, user: string, extra: IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(b.url, {
    protocolVersion: 4, clientId: probeClientId(user), username: user, password: PASSWORDS[user], reconnectPeriod: 0, ...extra,
  });
  cleanup.push(() => c.endAsync(true));
  return c;
}

/** What the broker answers a connect: "connected", or the CONNACK's refusal code. */
function connectResult(url: string, opts: IClientOptions): Promise<number | "connected" | "closed"> {
  return new Promise((done) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    c.once("connect", () => {
      c.end(true);
      done("connected");
    });
    c.once("error", (err) => {
      c.end(true);
      done((err as { code?: number }).code ?? "closed");
    });
    c.once("close", () => done("closed"));
  });
}

class Inbox {
  readonly messages: { topic: string; payload: string; retain: boolean }[] = [];
  constructor(client: MqttClient) {
    client.on("message", (topic, payload, packet) => this.messages.push({ topic, payload: payload.toString(), retain: packet.retain }));
  }
  topics(): string[] {
    return [...new Set(this.messages.map((m) => m.topic))].sort();
  }
  has(topic: string, payload?: string): boolean {
    return this.messages.some((m) => m.topic === topic && (payload === undefined || m.payload === payload));
  }
  waitFor(topic: string, payload?: string): Promise<void> {
    return until(() => this.has(topic, payload), `${topic}${payload === undefined ? "" : ` "${payload}"`}`);
  }
}

const result = (probe: string, task: string) => JSON.stringify(record(probe, task, Date.now(), null));
const stored = async (c: Collector, probe: string) =>
  (await c.store.db.get<{ n: number }>("SELECT count(DISTINCT id) AS n FROM results WHERE probe = ?", [probe]))!.n;
/** The client id the collector sends for this database (host/collector/collector.ts). */
const collectorClientId = (db: string) => `catprobe-collector-${createHash("sha256").update(resolve(db)).digest("hex").slice(0, 12)}`;

describe("the shipped configuration", () => {
  it("requires passwords, the shipped ACL and username-as-client-id on its listener", () => {
    expect(shippedSetting("allow_anonymous")).toBe("false");
    expect(shippedSetting("password_file")).toBe("/etc/mosquitto/catprobe.passwd");
    expect(shippedSetting("acl_file")).toBe("/etc/mosquitto/catprobe.acl");
    expect(shippedSetting("use_username_as_clientid")).toBe("true");
    expect(shippedSetting("per_listener_settings")).toBe("true");
  });

  it("is what `auth` test brokers run: only the listener, the two files' paths, persistence and log differ; the ACL is a copy", async () => {
    const b = await broker();
    const shipped = directives(readFileSync(CATPROBE_CONF, "utf8"));
    const running = directives(readFileSync(b.configFile, "utf8"));
    const moved = new Set(["listener", "persistence_location", "password_file", "acl_file"]);
    const kept = (ds: typeof shipped) => ds.filter((d) => !moved.has(d.name) && !d.name.startsWith("log_")).map((d) => `${d.name} ${d.value}`);
    expect(kept(running)).toEqual(kept(shipped));
    expect(running.map((d) => d.name)).toEqual(expect.arrayContaining([...AUTH_DIRECTIVES]));
    const acl = running.find((d) => d.name === "acl_file")!.value;
    expect(acl.startsWith(b.dir)).toBe(true);
    expect(readFileSync(acl, "utf8")).toBe(readFileSync(CATPROBE_ACL, "utf8"));
    // The password file is mosquitto_passwd's: one `user:$7$…` (PBKDF2-SHA512) line a user.
    const passwd = readFileSync(running.find((d) => d.name === "password_file")!.value, "utf8").trim().split("\n");
    expect(passwd.map((l) => l.split(":")[0]).sort()).toEqual(Object.keys(PASSWORDS).sort());
    for (const line of passwd) expect(line).toMatch(/^[^:]+:\$7\$/);
  });

  it("is what default test brokers run: the authentication lines become one `allow_anonymous true`", async () => {
    const b = await Mosquitto.start();
    cleanup.push(() => b.stop());
    const running = directives(readFileSync(b.configFile, "utf8"));
    expect(running.filter((d) => AUTH_DIRECTIVES.has(d.name)).map((d) => `${d.name} ${d.value}`)).toEqual(["allow_anonymous true"]);
    expect(await connectResult(b.url, { protocolVersion: 4, clientId: "catprobe-collector-anyone" })).toBe("connected");
  });
});

describe("Mosquitto with the shipped ACL: publishing", () => {
  it("lets a probe publish its own results, status and dropped total, and drops what it publishes as another probe", async () => {
    const b = await broker();
    // The collector's user reads everything it may (`#`): nothing forbidden may reach even it.
    const observer = await login(b, COLLECTOR, { clientId: "observer" });
    const seen = new Inbox(observer);
    expect((await observer.subscribeAsync("#", { qos: 1 }))[0].qos).toBe(1);

    const a = await login(b, "edge-a");
    const own: [string, string, boolean][] = [
      [resultTopic("edge-a", "t"), result("edge-a", "t"), false],
      [statusTopic("edge-a"), "online", true],
      [droppedTopic("edge-a"), JSON.stringify({ probe: "edge-a", total: 3 }), true],
    ];
    for (const [topic, payload, retain] of own) await a.publishAsync(topic, payload, { qos: 1, retain });
    for (const [topic, payload] of own) await seen.waitFor(topic, payload);

    // MQTT 3.1.1: Mosquitto 2.0.11 acknowledges each denied QoS 1 publish with a plain PUBACK
    // (publishAsync resolves), keeps the connection, and delivers and retains nothing.
    const pubacks: number[] = [];
    a.on("packetreceive", (p) => {
      if (p.cmd === "puback") pubacks.push(p.messageId!);
    });
    const forbidden: [string, boolean][] = [
      [resultTopic("edge-b", "t"), false],
      [statusTopic("edge-b"), true],
      [droppedTopic("edge-b"), true],
      [configTopic("edge-a"), true], // its own tasks: the collector's to write
      [configTopic("edge-b"), true],
      ["catprobe/v1/results/edge-a/t/deeper", false],
      ["catprobe/v1/other/edge-a", false],
      ["$SYS/broker/version", true],
    ];
    for (const [topic, retain] of forbidden) {
      const sent = await a.publishAsync(topic, "forged", { qos: 1, retain });
      expect(pubacks, `a PUBACK for ${topic}`).toContain(sent!.messageId);
    }
    expect(a.connected).toBe(true);
    await a.publishAsync(resultTopic("edge-a", "marker"), "after the forged ones", { qos: 1 });
    await seen.waitFor(resultTopic("edge-a", "marker"));
    expect(seen.topics()).toEqual([...own.map(([t]) => t), resultTopic("edge-a", "marker")].sort());
    expect(seen.messages.filter((m) => m.payload === "forged")).toEqual([]);

    // Nor did a forged retained message stay: a new subscriber gets only edge-a's own.
    await observer.endAsync();
    const later = await login(b, COLLECTOR, { clientId: "observer-2" });
    const retained = new Inbox(later);
    await later.subscribeAsync({ "catprobe/v1/status/+": { qos: 1 }, "catprobe/v1/dropped/+": { qos: 1 }, "catprobe/v1/config/+": { qos: 1 }, [RESULTS_FILTER]: { qos: 1 } });
    await a.publishAsync(resultTopic("edge-a", "marker"), "after the retained ones", { qos: 1 });
    await retained.waitFor(resultTopic("edge-a", "marker"), "after the retained ones");
    expect(retained.messages.filter((m) => m.retain).map((m) => m.topic).sort()).toEqual([droppedTopic("edge-a"), statusTopic("edge-a")]);

    // MQTT 5: the same denial answers PUBACK reason code 0x87 (not authorized); still nothing
    // is delivered. (This connection, user edge-a again, replaces the 3.1.1 one.)
    const a5 = await login(b, "edge-a", { protocolVersion: 5 });
    const refused = await a5.publishAsync(resultTopic("edge-b", "t"), "forged over v5", { qos: 1 }).then(() => null, (err: { code?: number }) => err.code);
    expect(refused).toBe(0x87);
    await a5.publishAsync(resultTopic("edge-a", "marker"), "after v5", { qos: 1 });
    await retained.waitFor(resultTopic("edge-a", "marker"), "after v5");
    expect(retained.messages.filter((m) => m.payload.startsWith("forged"))).toEqual([]);
  });

  it("sends a probe's last will only to its own status topic", async () => {
    const b = await broker();
    const observer = await login(b, COLLECTOR, { clientId: "observer" });
    const seen = new Inbox(observer);
    await observer.subscribeAsync("catprobe/v1/status/+", { qos: 1 });
    // Mosquitto 2.0.11 accepts the connection with a will on another probe's status topic and
    // drops the will when it fires.
    const forger = await login(b, "edge-a", { will: { topic: statusTopic("edge-b"), payload: Buffer.from("forged offline"), qos: 1, retain: true } });
    forger.stream.destroy(); // not a clean disconnect: the will fires
    // The next connection of the same user comes after the first one's end was handled.
    await until(() => b.log.join("").includes("Client edge-a closed its connection"), "the forger's disconnect");
    const honest = await login(b, "edge-a", { will: { topic: statusTopic("edge-a"), payload: Buffer.from("offline"), qos: 1, retain: true } });
    honest.stream.destroy();
    await seen.waitFor(statusTopic("edge-a"), "offline");
    expect(seen.topics()).toEqual([statusTopic("edge-a")]);
  });
});

describe("Mosquitto with the shipped ACL: reading", () => {
  it("lets a probe read its own configuration and nothing of #, results, $SYS or another probe's configuration", async () => {
    const b = await broker();
    const collector = await login(b, COLLECTOR, { clientId: "collector" });
    const collectorSaw = new Inbox(collector);
    await collector.subscribeAsync({ "$SYS/#": { qos: 0 }, [RESULTS_FILTER]: { qos: 1 } });
    const configA = JSON.stringify({ v: 1, version: 1, tasks: [] });
    await collector.publishAsync(configTopic("edge-a"), configA, { qos: 1, retain: true });
    await collector.publishAsync(configTopic("edge-b"), JSON.stringify({ v: 1, version: 1, tasks: [] }), { qos: 1, retain: true });
    const probeB = await login(b, "edge-b");
    await probeB.publishAsync(statusTopic("edge-b"), "online", { qos: 1, retain: true });
    await probeB.publishAsync(resultTopic("edge-b", "t"), result("edge-b", "t"), { qos: 1 });

    const a = await login(b, "edge-a");
    const got = new Inbox(a);
    const filters = ["#", "catprobe/v1/results/#", "$SYS/#", configTopic("edge-b"), configTopic("edge-a")];
    // Mosquitto 2.0 checks reading when it delivers, not when it subscribes: every filter is
    // granted (QoS 1 in the SUBACK), and only what the ACL lets this user read is delivered.
    const granted = await a.subscribeAsync(Object.fromEntries(filters.map((f) => [f, { qos: 1 as const }])));
    expect(granted.map((g) => g.qos)).toEqual([1, 1, 1, 1, 1]);
    await got.waitFor(configTopic("edge-a"), configA); // its own retained configuration

    // Messages flow on everything the filters match: edge-b's results and status, edge-b's
    // configuration, edge-a's own results and status; each routed (PUBACK) before the marker.
    await probeB.publishAsync(resultTopic("edge-b", "t"), result("edge-b", "t"), { qos: 1 });
    await probeB.publishAsync(statusTopic("edge-b"), "online", { qos: 1, retain: true });
    await collector.publishAsync(configTopic("edge-b"), JSON.stringify({ v: 1, version: 2, tasks: [] }), { qos: 1, retain: true });
    await a.publishAsync(resultTopic("edge-a", "t"), result("edge-a", "t"), { qos: 1 }); // not even its own results
    await a.publishAsync(statusTopic("edge-a"), "online", { qos: 1, retain: true });
    const configA2 = JSON.stringify({ v: 1, version: 2, tasks: [] });
    await collector.publishAsync(configTopic("edge-a"), configA2, { qos: 1, retain: true });
    await got.waitFor(configTopic("edge-a"), configA2);
    expect(got.topics()).toEqual([configTopic("edge-a")]);

    // The collector's user reads every result, but not $SYS either.
    await probeB.publishAsync(resultTopic("edge-b", "marker"), result("edge-b", "marker"), { qos: 1 });
    await collectorSaw.waitFor(resultTopic("edge-b", "marker"));
    expect(collectorSaw.topics()).toEqual([resultTopic("edge-a", "t"), resultTopic("edge-b", "marker"), resultTopic("edge-b", "t")]);

    // Without the ACL the same $SYS/# subscription gets the broker's retained $SYS messages
    // at once: the ACL is what kept them from edge-a and the collector above.
    const open = await Mosquitto.start();
    cleanup.push(() => open.stop());
    const anyone = await mqtt.connectAsync(open.url, { protocolVersion: 4, reconnectPeriod: 0 });
    cleanup.push(() => anyone.endAsync(true));
    const sys = new Inbox(anyone);
    await anyone.subscribeAsync("$SYS/#", { qos: 0 });
    await sys.waitFor("$SYS/broker/version");
  });
});

describe("Mosquitto with the shipped configuration: identity", () => {
  it("refuses wrong passwords, unknown users, a missing password and anonymous clients", async () => {
    const b = await broker();
    const attempts: [string, IClientOptions][] = [
      ["wrong password", { username: "edge-a", password: "wrong" }],
      ["another probe's password", { username: "edge-a", password: PASSWORDS["edge-b"] }],
      ["unknown user", { username: "edge-z", password: "x" }],
      ["no password", { username: "edge-a" }],
      ["anonymous", {}],
      ["anonymous with a probe's client id", { clientId: probeClientId("edge-a") }],
      ["anonymous with the collector's client id", { clientId: "catprobe-collector-0123456789ab" }],
    ];
    // Measured with 2.0.11: CONNACK 5 (not authorized) under MQTT 3.1.1 for every one, never
    // 4 (bad username or password); under MQTT 5, 0x87 (not authorized) for every one.
    for (const [what, opts] of attempts) {
      expect(await connectResult(b.url, { protocolVersion: 4, ...opts }), what).toBe(5);
      expect(await connectResult(b.url, { protocolVersion: 5, ...opts }), `${what} (MQTT 5)`).toBe(0x87);
    }
    expect(await connectResult(b.url, { protocolVersion: 4, username: "edge-a", password: PASSWORDS["edge-a"] })).toBe("connected");
    await expect(startCollector({ broker: b.url, username: COLLECTOR, password: "wrong", http: "127.0.0.1:0", db: join(dir, "refused.db") }))
      .rejects.toThrow(/cannot connect to MQTT broker/);
  });

  it("lets no client id take over the collector's or another probe's session, and loses none of a probe's results", async () => {
    const b = await broker();
    const db = join(dir, "takeover.db");
    const collectorLog: string[] = [];
    const collector = await startCollector({ broker: b.url, username: COLLECTOR, password: PASSWORDS[COLLECTOR], http: "127.0.0.1:0", db, log: (l) => collectorLog.push(l) });
    cleanup.push(() => collector.close());
    const spool = new Spool(join(dir, "takeover-spool.db"));
    const probe = new Publisher({ brokerUrl: b.url, probe: "edge-b", spool, username: "edge-b", password: PASSWORDS["edge-b"] });
    cleanup.push(async () => {
      await probe.close();
      spool.close();
    });
    const results = many(90, "edge-b", "t", Date.now() - 60_000, null, 10);
    const send = (from: number, to: number) => {
      for (const r of results.slice(from, to)) probe.publish({ ...r, address: null });
    };
    send(0, 30);
    await until(async () => await stored(collector, "edge-b") === 30, "the first 30 results");

    // Every client id that names the collector or edge-b, with a clean session (which, were it
    // taken, would also delete that session and its queue) and without, by user edge-a.
    const ids = [collectorClientId(db), COLLECTOR, probeClientId("edge-b"), "edge-b"];
    let attacks = 0;
    for (const clientId of ids) {
      for (const clean of [true, false]) {
        const attacker = await login(b, "edge-a", { clientId, clean });
        attacks++;
        await attacker.subscribeAsync(RESULTS_FILTER, { qos: 1 });
        send(30 + (attacks - 1) * 5, 30 + attacks * 5); // results keep coming during the attacks
        await attacker.endAsync();
      }
    }
    send(70, 90);
    await probe.drain(20_000);
    await until(async () => await stored(collector, "edge-b") === 90, "all 90 results");

    // Mosquitto 2.0.11 named every attacker by its username and disconnected no one.
    const log = b.log.join("");
    expect(log.match(/New client connected from \S+ as edge-a /g)).toHaveLength(attacks);
    expect(log).not.toMatch(/already connected, closing old connection/);
    expect(log).not.toMatch(/as catprobe-collector-/);
    expect(collectorLog.filter((l) => l.includes("reconnecting"))).toEqual([]);

    // The collector's user reads every probe's results and dropped totals.
    const a = await login(b, "edge-a");
    await a.publishAsync(resultTopic("edge-a", "t"), result("edge-a", "t"), { qos: 1 });
    await a.publishAsync(droppedTopic("edge-a"), JSON.stringify({ probe: "edge-a", total: 7 }), { qos: 1, retain: true });
    await until(async () => await stored(collector, "edge-a") === 1, "edge-a's result");
    await until(async () => (await collector.store.droppedByProbe()).some((d) => d.probe === "edge-a" && d.total === 7), "edge-a's dropped total");
  }, 60_000);

  it("without use_username_as_clientid the same client id disconnects the collector (what the line stops)", async () => {
    // Passwords only: the shipped ACL and use_username_as_clientid left out.
    const b = await Mosquitto.start({ users: PASSWORDS });
    cleanup.push(() => b.stop());
    const victim = await login(b, COLLECTOR, { clientId: "catprobe-collector-0123456789ab", clean: false });
    let closed = false;
    victim.on("close", () => (closed = true));
    await login(b, "edge-a", { clientId: "catprobe-collector-0123456789ab", clean: true });
    await until(() => closed, "the collector's connection closed");
    expect(b.log.join("")).toContain("Client catprobe-collector-0123456789ab already connected, closing old connection");
  });

  for (const protocolVersion of [5, 4] as const) {
    it(`keeps the collector's persistent session (MQTT ${protocolVersion}): results published while it is away arrive when it returns`, async () => {
      const b = await broker();
      const db = join(dir, `session-${protocolVersion}.db`);
      const start = () => startCollector({ broker: b.url, username: COLLECTOR, password: PASSWORDS[COLLECTOR], http: "127.0.0.1:0", db, protocolVersion });
      await (await start()).close();
      // The collector is away: the broker acknowledges, the probe's spool empties, and the
      // results exist only in the collector's queued session (session "catprobe-collector").
      const spool = new Spool(join(dir, `session-spool-${protocolVersion}.db`));
      const probe = new Publisher({ brokerUrl: b.url, probe: "edge-c", spool, username: "edge-c", password: PASSWORDS["edge-c"] });
      for (const r of many(40, "edge-c", "t", Date.now() - 60_000, 607, 10)) probe.publish({ ...r, address: null });
      await probe.drain(20_000);
      await probe.close();
      spool.close();
      const collector = await start();
      cleanup.push(() => collector.close());
      await until(async () => await stored(collector, "edge-c") === 40, "40 results queued while the collector was away");
      expect(b.log.join("")).toMatch(new RegExp(`as catprobe-collector \\(p${protocolVersion === 5 ? 5 : 2}, c0,`));
    }, 60_000);
  }

  it("gives a collector with another database the same session: the session is the user's", async () => {
    const b = await broker();
    const start = (db: string) => startCollector({ broker: b.url, username: COLLECTOR, password: PASSWORDS[COLLECTOR], http: "127.0.0.1:0", db: join(dir, db) });
    await (await start("first.db")).close();
    const probe = await login(b, "edge-c");
    for (const r of many(10, "edge-c", "t", Date.now() - 60_000, 607)) await probe.publishAsync(resultTopic("edge-c", "t"), JSON.stringify(r), { qos: 1 });
    const moved = await start("moved.db"); // another client id sent, the same username
    cleanup.push(() => moved.close());
    await until(async () => await stored(moved, "edge-c") === 10, "the 10 results queued for the first database's collector");
  });
});

// ---------------------------------------------------------------------------------------------
// The ACL file against the topics host/wire/topics.ts builds and the embedded broker's rules.

type Rule = { access: "read" | "write" | "readwrite" | "deny"; topic: string };

/** The rules of a Mosquitto ACL file: pattern lines (every user), and topic lines by user. */
function parseAcl(text: string): { patterns: Rule[]; users: Map<string | null, Rule[]> } {
  const patterns: Rule[] = [];
  const users = new Map<string | null, Rule[]>([[null, []]]);
  let user: string | null = null;
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const [keyword, ...rest] = line.split(/\s+/);
    if (keyword === "user") {
      user = rest.join(" ");
      if (!users.has(user)) users.set(user, []);
      continue;
    }
    if (keyword !== "pattern" && keyword !== "topic") throw new Error(`catprobe.acl:${i + 1}: unknown line ${line}`);
    const access = rest.length > 1 ? rest[0] : "readwrite";
    if (!["read", "write", "readwrite", "deny"].includes(access)) throw new Error(`catprobe.acl:${i + 1}: access ${access}`);
    const rule = { access: access as Rule["access"], topic: rest.length > 1 ? rest.slice(1).join(" ") : rest[0] };
    if (keyword === "pattern") patterns.push(rule);
    else users.get(user)!.push(rule);
  }
  return { patterns, users };
}

/** MQTT filter matching, as Mosquitto does it ($ topics are not matched by a leading wildcard). */
function matches(filter: string, topic: string): boolean {
  if (topic.startsWith("$") && !filter.startsWith("$")) return false;
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length || (f[i] !== "+" && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

/** Whether the ACL lets `user` read or write `topic`. */
function aclAllows(acl: ReturnType<typeof parseAcl>, user: string, topic: string, want: "read" | "write"): boolean {
  const rules = [
    ...acl.patterns.map((r) => ({ ...r, topic: r.topic.split("/").map((l) => (l === "%u" ? user : l)).join("/") })),
    ...(acl.users.get(user) ?? []),
  ];
  const applies = rules.filter((r) => matches(r.topic, topic));
  if (applies.some((r) => r.access === "deny")) return false;
  return applies.some((r) => r.access === want || r.access === "readwrite");
}

/** The embedded broker's answers for a probe, from host/collector/broker-access.ts itself. */
async function embeddedProbe(probe: string) {
  const access = new BrokerAccess({ passwords: null, originOf: () => ({ local: false, address: "127.0.0.1" }), onDeny: () => {} });
  const client = { id: probeClientId(probe), conn: {} } as unknown as Client;
  await new Promise((ok, fail) => access.authenticate(client, undefined, undefined, (err) => (err ? fail(err) : ok(null))));
  return {
    mayPublish: (topic: string) => new Promise<boolean>((r) => access.authorizePublish(client, { topic } as PublishPacket, (err) => r(!err))),
    maySubscribe: (topic: string) => new Promise<boolean>((r) => access.authorizeSubscribe(client, { topic, qos: 1 } as Subscription, (_e, sub) => r(!!sub))),
  };
}

describe("the shipped ACL and the embedded broker", () => {
  const acl = parseAcl(readFileSync(CATPROBE_ACL, "utf8"));

  it("name the same topics: a probe's by %u, the collector's by wildcards", () => {
    const P = "\u0000probe\u0000"; // stands for %u below, then is put back
    const u = (topic: string) => topic.replaceAll(P, "%u");
    expect(acl.patterns).toEqual([
      { access: "write", topic: u(resultTopic(P, "+")) },
      { access: "write", topic: u(statusTopic(P)) },
      { access: "write", topic: u(droppedTopic(P)) },
      { access: "read", topic: u(configTopic(P)) },
    ]);
    expect([...acl.users.keys()]).toEqual([null, COLLECTOR]);
    expect(acl.users.get(null)).toEqual([]); // nothing for anonymous clients
    expect(acl.users.get(COLLECTOR)).toEqual([
      { access: "read", topic: RESULTS_FILTER },
      { access: "read", topic: statusTopic("+") },
      { access: "read", topic: DROPPED_FILTER },
      { access: "write", topic: configTopic("+") },
    ]);
  });

  it("agree, topic by topic, on what a probe may publish and read", async () => {
    const candidates = (p: string, q: string) => [
      resultTopic(p, "t"), statusTopic(p), droppedTopic(p), configTopic(p),
      resultTopic(q, "t"), statusTopic(q), droppedTopic(q), configTopic(q),
      `${resultTopic(p, "t")}/more`, `catprobe/v1/results/${p}`, `catprobe/v1/other/${p}`, `catprobe/v2/results/${p}/t`,
      "$SYS/broker/version", `$SYS/broker/clients/${p}`, "other",
    ];
    for (const [p, q] of [["edge-1", "edge-2"], ["edge-2", "edge-1"], ["p.x_y-Z", "catprobe-collector"]]) {
      const embedded = await embeddedProbe(p);
      for (const topic of candidates(p, q)) {
        expect(aclAllows(acl, p, topic, "write"), `${p} publishes ${topic}`).toBe(await embedded.mayPublish(topic));
        expect(aclAllows(acl, p, topic, "read"), `${p} reads ${topic}`).toBe(await embedded.maySubscribe(topic));
      }
    }
  });

  it("let the collector read every probe's results, status and dropped totals and write every configuration, and read no $SYS", () => {
    for (const probe of ["edge-1", "edge-2"]) {
      for (const topic of [resultTopic(probe, "t"), statusTopic(probe), droppedTopic(probe)]) {
        expect(aclAllows(acl, COLLECTOR, topic, "read"), topic).toBe(true);
        expect(aclAllows(acl, COLLECTOR, topic, "write"), topic).toBe(false);
      }
      expect(aclAllows(acl, COLLECTOR, configTopic(probe), "write")).toBe(true);
    }
    expect(aclAllows(acl, COLLECTOR, "$SYS/broker/version", "read")).toBe(false);
    // Nothing for a user the file does not name but the patterns, nor for anonymous clients.
    expect(aclAllows(acl, "edge-1", resultTopic("edge-2", "t"), "read")).toBe(false);
  });
});
