// The lab's DNS server, exercised with Node's real resolver (c-ares) over loopback UDP; no mocks.
import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { startDnsServer, type DnsServer, type DnsZone } from "../../simulator/servers/dns.js";
import { randomBytes, rng } from "../helpers/random.js";

const ZONE: DnsZone = {
  records: {
    "ok.test": { a: ["192.0.2.1", "192.0.2.2"], aaaa: ["2001:db8::1", "::ffff:198.51.100.7"] },
    "v4only.test": { a: ["192.0.2.4"] },
    "Mixed.Case.Test": { a: ["192.0.2.9"] },
    "broken.test": { a: ["192.0.2.66"] },
  },
  faults: {
    "servfail.test": "servfail",
    "refused.test": "refused",
    "silent.test": "silent",
    "empty.test": "noanswer",
    "broken.test": "servfail",
  },
};

const servers: DnsServer[] = [];

/** Starts a server that afterEach will close, whatever the test does. */
async function serve(zone: DnsZone = ZONE, options?: { host?: "127.0.0.1" | "::1"; port?: number }) {
  const server = await startDnsServer(zone, options);
  servers.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** A fresh resolver per check, so nothing a resolver might cache can hide a server change. */
async function resolverFor(server: DnsServer) {
  const r = new (await import("node:dns")).promises.Resolver({ timeout: 300, tries: 1 });
  r.setServers([server.address]);
  return r;
}

/** Sends one raw datagram and returns the reply, or undefined if none came within `waitMs`. */
async function exchange(server: DnsServer, packet: Buffer, waitMs = 500): Promise<Buffer | undefined> {
  const socket = dgram.createSocket(server.host === "::1" ? "udp6" : "udp4");
  try {
    return await new Promise<Buffer | undefined>((resolve, reject) => {
      const timer = setTimeout(() => resolve(undefined), waitMs);
      socket.once("message", (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      socket.once("error", reject);
      socket.send(packet, server.port, server.host);
    });
  } finally {
    socket.close();
  }
}

/** Builds a query by hand; `edns` appends an OPT record (with a cookie option) like modern resolvers do. */
function rawQuery(id: number, name: string, qtype: number, opts: { rd?: boolean; edns?: boolean } = {}) {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(opts.rd === false ? 0 : 0x0100, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(opts.edns ? 1 : 0, 10);
  const labels = name.split(".").map((label) => Buffer.from([label.length, ...Buffer.from(label)]));
  const question = Buffer.concat([...labels, Buffer.from([0, qtype >> 8, qtype & 0xff, 0, 1])]);
  // OPT: root name, TYPE 41, CLASS = UDP size 1232, TTL 0, RDLEN 12, COOKIE option (10) with 8 bytes.
  const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
  return Buffer.concat([header, question, ...(opts.edns ? [opt] : [])]);
}

/** Sends datagrams from one socket, waits until `done()` and a little longer, and returns any replies. */
async function blast(server: DnsServer, packets: Buffer[], done: () => boolean): Promise<Buffer[]> {
  const socket = dgram.createSocket(server.host === "::1" ? "udp6" : "udp4");
  const replies: Buffer[] = [];
  socket.on("message", (reply) => replies.push(reply));
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  try {
    for (const packet of packets) {
      await new Promise<void>((resolve, reject) =>
        socket.send(packet, server.port, server.host, (error) => (error ? reject(error) : resolve())),
      );
    }
    for (let i = 0; i < 200 && !done(); i++) await sleep(10);
    await sleep(50); // room for a reply that should not come
    return replies;
  } finally {
    socket.close();
  }
}

describe("lab DNS server, through Node's resolver", () => {
  it("answers A and AAAA with the zone's addresses and TTL", async () => {
    const server = await serve({ ...ZONE, ttl: 42 });
    expect(server.host).toBe("127.0.0.1");
    expect(server.address).toBe(`127.0.0.1:${server.port}`);
    const r = await resolverFor(server);
    expect(await r.resolve4("ok.test", { ttl: true })).toEqual([
      { address: "192.0.2.1", ttl: 42 },
      { address: "192.0.2.2", ttl: 42 },
    ]);
    expect(await r.resolve6("ok.test")).toEqual(["2001:db8::1", "::ffff:198.51.100.7"]);
  });

  it("maps each fault to the resolver error a probe will see", async () => {
    const server = await serve();
    const r = await resolverFor(server);
    await expect(r.resolve4("nowhere.test")).rejects.toMatchObject({ code: "ENOTFOUND" });
    await expect(r.resolve4("servfail.test")).rejects.toMatchObject({ code: "ESERVFAIL" });
    await expect(r.resolve4("refused.test")).rejects.toMatchObject({ code: "EREFUSED" });
    await expect(r.resolve4("empty.test")).rejects.toMatchObject({ code: "ENODATA" });
    // A fault wins over the name's records.
    await expect(r.resolve4("broken.test")).rejects.toMatchObject({ code: "ESERVFAIL" });
  });

  it("stays silent for a silent name, so the client times out", async () => {
    const server = await serve();
    const r = await resolverFor(server);
    const started = Date.now();
    await expect(r.resolve4("silent.test")).rejects.toMatchObject({ code: "ETIMEOUT" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(server.queries.get("silent.test")).toBe(1);
  });

  it("gives NOERROR with no answers (ENODATA) for a name without the wanted family", async () => {
    const server = await serve();
    const r = await resolverFor(server);
    await expect(r.resolve6("v4only.test")).rejects.toMatchObject({ code: "ENODATA" });
    expect(await r.resolve4("v4only.test")).toEqual(["192.0.2.4"]);
    // Types other than A and AAAA: the name exists, there is just nothing of that type.
    await expect(r.resolveMx("ok.test")).rejects.toMatchObject({ code: "ENODATA" });
  });

  it("uses `otherwise` for names in neither records nor faults", async () => {
    const server = await serve({ ...ZONE, otherwise: "refused" });
    const r = await resolverFor(server);
    await expect(r.resolve4("unknown.test")).rejects.toMatchObject({ code: "EREFUSED" });
    expect(await r.resolve4("ok.test")).toEqual(["192.0.2.1", "192.0.2.2"]);
  });

  it("matches names case-insensitively, both in the zone and in queries", async () => {
    const server = await serve();
    const r = await resolverFor(server);
    expect(await r.resolve4("mixed.case.test")).toEqual(["192.0.2.9"]);
    expect(await r.resolve4("MIXED.case.TEST")).toEqual(["192.0.2.9"]);
    expect(await r.resolve4("OK.Test")).toEqual(["192.0.2.1", "192.0.2.2"]);
    await expect(r.resolve4("SERVFAIL.TEST")).rejects.toMatchObject({ code: "ESERVFAIL" });
    expect(server.queries.get("mixed.case.test")).toBe(2);
    expect(server.queries.get("ok.test")).toBe(1);
    expect(server.queries.has("OK.Test")).toBe(false);
  });

  it("setZone changes answers live, and rejects a bad zone without losing the old one", async () => {
    const server = await serve();
    // A new resolver for each lookup, so the answer can only come from the server's current zone.
    const lookup = async (name: string) => (await resolverFor(server)).resolve4(name);
    expect(await lookup("ok.test")).toEqual(["192.0.2.1", "192.0.2.2"]);

    server.setZone({ records: { "ok.test": { a: ["203.0.113.5"] } } });
    expect(await lookup("ok.test")).toEqual(["203.0.113.5"]);
    await expect(lookup("v4only.test")).rejects.toMatchObject({ code: "ENOTFOUND" });

    server.setZone({ faults: { "ok.test": "servfail" } });
    await expect(lookup("ok.test")).rejects.toMatchObject({ code: "ESERVFAIL" });

    expect(() => server.setZone({ records: { "ok.test": { a: ["not-an-ip"] } } })).toThrow(/IPv4/);
    expect(() => server.setZone({ records: { "ok.test": { aaaa: ["192.0.2.1"] } } })).toThrow(/IPv6/);
    await expect(lookup("ok.test")).rejects.toMatchObject({ code: "ESERVFAIL" });
  });

  it("counts queries by lower-case name", async () => {
    const server = await serve();
    const r = await resolverFor(server);
    expect(server.queries.size).toBe(0);
    await r.resolve4("ok.test");
    await r.resolve6("Ok.Test");
    await r.resolve4("ok.test");
    await expect(r.resolve4("nowhere.test")).rejects.toMatchObject({ code: "ENOTFOUND" });
    expect(Object.fromEntries(server.queries)).toEqual({ "ok.test": 3, "nowhere.test": 1 });
  });

  it("drops garbage datagrams without crashing and keeps answering", async () => {
    const server = await serve();
    const next = rng(53);
    const header = (flags: number, qdcount: number) =>
      Buffer.from([0xab, 0xcd, flags >> 8, flags & 0xff, 0, qdcount, 0, 0, 0, 0, 0, 0]);
    const garbage = [
      Buffer.alloc(0),
      Buffer.from([1, 2, 3]),
      header(0x0100, 1), // a question promised but missing
      Buffer.concat([header(0x0100, 1), Buffer.from([2, 0x6f])]), // a label running off the end
      Buffer.concat([header(0x0100, 1), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]), // a pointer to itself
      // a 64-byte label (the two top bits then mean an extended label type, not a length)
      Buffer.concat([header(0x0100, 1), Buffer.from([64, ...Buffer.alloc(64, 0x61), 0, 0, 1, 0, 1])]),
      Buffer.concat([header(0x0100, 1), Buffer.from([0, 0, 1])]), // QCLASS cut short
      Buffer.concat([header(0x0100, 2), Buffer.from([0, 0, 1, 0, 1, 0, 0, 1, 0, 1])]), // two questions
      Buffer.concat([header(0x8100, 1), Buffer.from([0, 0, 1, 0, 1])]), // a response, not a query
      Buffer.concat([header(0x0100, 1), Buffer.alloc(300, 1), Buffer.from([0, 0, 1, 0, 1])]), // name > 255
      Buffer.concat([header(0x8000, 0), Buffer.from(randomBytes(next, 1000))]), // a response with noise
    ];
    // Plus pure noise; the seed is fixed, so none of it happens to be a valid query.
    for (let i = 0; i < 50; i++) garbage.push(Buffer.from(randomBytes(next, Math.floor(next() * 600))));
    const replies = await blast(server, garbage, () => server.malformed === garbage.length);
    expect(replies).toEqual([]);
    expect(server.malformed).toBe(garbage.length);
    expect(server.queries.size).toBe(0);

    expect(await (await resolverFor(server)).resolve4("ok.test")).toEqual(["192.0.2.1", "192.0.2.2"]);
    expect(server.malformed).toBe(garbage.length);
  });

  it("works on ::1 too", async () => {
    let server: DnsServer;
    try {
      server = await serve(ZONE, { host: "::1" });
    } catch (error) {
      const why = String(error);
      throw new Error(`could not bind the DNS server to UDP [::1] (is IPv6 loopback disabled?): ${why}`);
    }
    expect(server.host).toBe("::1");
    expect(server.address).toBe(`[::1]:${server.port}`);
    const r = await resolverFor(server);
    expect(await r.resolve4("ok.test")).toEqual(["192.0.2.1", "192.0.2.2"]);
    expect(await r.resolve6("ok.test")).toEqual(["2001:db8::1", "::ffff:198.51.100.7"]);
    await expect(r.resolve4("refused.test")).rejects.toMatchObject({ code: "EREFUSED" });
  });
});

describe("lab DNS server, on the wire", () => {
  it("sets QR, AA, copies ID and RD, clears RA, echoes the question and points answers at it", async () => {
    const server = await serve({ ...ZONE, ttl: 7 });
    const query = rawQuery(0x1234, "Ok.TeSt", 1, { edns: true });
    const reply = await exchange(server, query);
    if (!reply) throw new Error("no reply to an EDNS query");
    const questionEnd = query.length - 23; // the question ends where the OPT record starts
    expect(reply.readUInt16BE(0)).toBe(0x1234);
    expect(reply.readUInt16BE(2)).toBe(0x8000 | 0x0400 | 0x0100); // QR, AA, RD; RA=0, RCODE=0
    expect([reply.readUInt16BE(4), reply.readUInt16BE(6), reply.readUInt16BE(8), reply.readUInt16BE(10)])
      .toEqual([1, 2, 0, 0]);
    expect(reply.subarray(12, questionEnd)).toEqual(query.subarray(12, questionEnd)); // original case kept
    const first = reply.subarray(questionEnd, questionEnd + 16);
    expect([...first]).toEqual([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 7, 0, 4, 192, 0, 2, 1]);
    expect(reply.length).toBe(questionEnd + 32);

    const noRecursion = await exchange(server, rawQuery(0x0001, "nowhere.test", 1, { rd: false }));
    expect(noRecursion?.readUInt16BE(2)).toBe(0x8000 | 0x0400 | 3); // QR, AA, NXDOMAIN
  });

  it("encodes AAAA addresses as 16 bytes", async () => {
    const server = await serve({ records: { "six.test": { aaaa: ["2001:db8:0:1::a:b", "::1"] } } });
    const query = rawQuery(7, "six.test", 28);
    const reply = await exchange(server, query);
    if (!reply) throw new Error("no reply");
    const answers = reply.subarray(query.length);
    expect(answers.readUInt16BE(10)).toBe(16);
    expect(answers.subarray(12, 28).toString("hex")).toBe("20010db80000000100000000000a000b");
    expect(answers.subarray(28 + 12, 28 + 28).toString("hex")).toBe("00000000000000000000000000000001");
  });

  it("keeps a UDP reply within 512 bytes and sets TC when the answers do not fit", async () => {
    const many = Array.from({ length: 40 }, (_, i) => `10.0.0.${i + 1}`);
    const server = await serve({ records: { "many.test": { a: many } } });
    const query = rawQuery(9, "many.test", 1);
    const reply = await exchange(server, query);
    if (!reply) throw new Error("no reply");
    expect(reply.length).toBeLessThanOrEqual(512);
    expect(reply.readUInt16BE(2) & 0x0200).toBe(0x0200);
    expect(reply.readUInt16BE(6)).toBe(Math.floor((512 - query.length) / 16)); // 16 bytes per A record
  });

  it("rejects a zone with a bad address, and a port already in use", async () => {
    await expect(startDnsServer({ records: { "x.test": { a: ["2001:db8::1"] } } })).rejects.toThrow(/IPv4/);
    const server = await serve();
    await expect(serve(ZONE, { port: server.port })).rejects.toMatchObject({ code: "EADDRINUSE" });
  });
});
