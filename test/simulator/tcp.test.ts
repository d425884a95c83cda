import { createHash } from "node:crypto";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  largeBody,
  refusedPort,
  startTcpFault,
  type FaultServer,
  type TcpFault,
} from "../../simulator/servers/tcp.js";
import { runChild } from "../helpers/child.js";
import { until } from "../helpers/until.js";

const REQUEST = "PING\r\n";
const GUARD_MS = 5_000;

/** What a client saw on one connection. */
interface Observation {
  data: Buffer;
  /** number of "data" events */
  chunks: number;
  /** the server ended its side (FIN) */
  ended: boolean;
  errorCode: string | undefined;
  /** nothing ended the connection within waitMs (the client then destroyed it) */
  timedOut: boolean;
}

interface ObserveOptions {
  host?: string;
  /** give up (and destroy) after this long; a guard against hangs by default */
  waitMs?: number;
  /** destroy as soon as this many bytes have arrived */
  stopAfterBytes?: number;
}

/** Connects, sends REQUEST, and records what comes back until the connection ends or a limit hits. */
function observe(port: number, options: ObserveOptions = {}): Promise<Observation> {
  return new Promise((resolve) => {
    const socket = connect({ host: options.host ?? "127.0.0.1", port });
    const chunks: Buffer[] = [];
    const seen: Observation = {
      data: Buffer.alloc(0), chunks: 0, ended: false, errorCode: undefined, timedOut: false,
    };
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...seen, data: Buffer.concat(chunks) });
    };
    const timer = setTimeout(() => {
      seen.timedOut = true;
      finish();
    }, options.waitMs ?? GUARD_MS);
    let received = 0;
    socket.on("connect", () => socket.write(REQUEST));
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      seen.chunks++;
      received += chunk.length;
      if (options.stopAfterBytes !== undefined && received >= options.stopAfterBytes) finish();
    });
    socket.on("end", () => (seen.ended = true));
    socket.on("error", (err: NodeJS.ErrnoException) => (seen.errorCode ??= err.code ?? err.message));
    socket.on("close", finish);
  });
}

/** Open handles of one kind in this process (sockets only: an interval stops counting once it fired). */
function handles(kind: string): number {
  return process.getActiveResourcesInfo().filter((name) => name === kind).length;
}

// Runs in a child process: each fault that writes on a timer or on drain meets a client that leaves
// mid-stream, then the server is closed. A timer left running would keep the child alive.
const LEAK_CHECK = `
import { connect } from "node:net";
const { startTcpFault } = await import(process.argv[1]);
const faults = [
  { kind: "stall", gapMs: 5 }, { kind: "dribble", reply: "x".repeat(1000), gapMs: 5 }, { kind: "flood" },
  { kind: "slow-reply", reply: "+PONG", afterMs: 60_000, gapMs: 5 },
];
for (const fault of faults) {
  const server = await startTcpFault(fault);
  await new Promise((resolve) => {
    const client = connect(server.port, "127.0.0.1", () => client.write("PING\\r\\n"));
    client.on("error", () => {});
    client.once("data", () => setTimeout(() => resolve(client.destroy()), 30));
  });
  await new Promise((resolve) => setTimeout(resolve, 50)); // the server sees the client go
  await server.close();
}
process.stdout.write("closed\\n");
`;

function md5(data: Uint8Array): string {
  return createHash("md5").update(data).digest("hex");
}

describe("TCP fault servers", () => {
  const servers: FaultServer[] = [];

  async function start(fault: TcpFault, host?: "127.0.0.1" | "::1"): Promise<FaultServer> {
    const server = await startTcpFault(fault, host ? { host } : {});
    servers.push(server);
    return server;
  }

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it("reply: answers the request and counts connections", async () => {
    const server = await start({ kind: "reply", reply: "+PONG\r\n" });
    expect(server.host).toBe("127.0.0.1");
    expect(server.port).toBeGreaterThan(0);
    const first = await observe(server.port, { stopAfterBytes: 7 });
    expect(first.data.toString()).toBe("+PONG\r\n");
    await observe(server.port, { stopAfterBytes: 7 });
    expect(server.connections).toBe(2);
  });

  it("echo: writes back what it receives", async () => {
    const server = await start({ kind: "echo" });
    const seen = await observe(server.port, { stopAfterBytes: REQUEST.length });
    expect(seen.data.toString()).toBe(REQUEST);
  });

  it("banner: the banner first, then echo", async () => {
    const server = await start({ kind: "banner", banner: "HELLO lab\r\n" });
    const expected = "HELLO lab\r\n" + REQUEST;
    const seen = await observe(server.port, { stopAfterBytes: expected.length });
    expect(seen.data.toString()).toBe(expected);
  });

  it("silent: accepts and reads, but no byte comes back", async () => {
    const server = await start({ kind: "silent" });
    const seen = await observe(server.port, { waitMs: 200 });
    expect(seen).toMatchObject({ chunks: 0, ended: false, timedOut: true, errorCode: undefined });
    expect(server.connections).toBe(1);
  });

  it("close: ends the connection without a byte", async () => {
    const server = await start({ kind: "close" });
    const seen = await observe(server.port);
    expect(seen).toMatchObject({ chunks: 0, ended: true, timedOut: false, errorCode: undefined });
  });

  it("reset: the client sees ECONNRESET and no data", async () => {
    const server = await start({ kind: "reset" });
    const seen = await observe(server.port);
    expect(seen).toMatchObject({ chunks: 0, ended: false, errorCode: "ECONNRESET" });
  });

  it("accept-reset: reset right after the connection is accepted", async () => {
    const server = await start({ kind: "accept-reset" });
    const seen = await observe(server.port);
    // The RST may beat the request (read: ECONNRESET) or follow it (write: EPIPE): both are resets.
    expect(seen.chunks).toBe(0);
    expect(seen.ended).toBe(false);
    expect(["ECONNRESET", "EPIPE"]).toContain(seen.errorCode);
    expect(server.connections).toBe(1);
  });

  it("dribble: the reply arrives one byte per segment", async () => {
    const reply = "+OK\r\n";
    const server = await start({ kind: "dribble", reply, gapMs: 10 });
    const seen = await observe(server.port, { stopAfterBytes: reply.length });
    expect(seen.data.toString()).toBe(reply);
    expect(seen.chunks).toBeGreaterThanOrEqual(reply.length);
  });

  it("stall: bytes keep arriving, all 'z', never an end", async () => {
    const server = await start({ kind: "stall", gapMs: 20 });
    const seen = await observe(server.port, { waitMs: 300 });
    expect(seen).toMatchObject({ timedOut: true, ended: false, errorCode: undefined });
    expect(seen.chunks).toBeGreaterThanOrEqual(3);
    expect(seen.data.toString()).toMatch(/^z+$/);
  });

  it("slow-reply: each request gets a 'z' every gapMs, then the reply after afterMs; requests meanwhile are ignored", async () => {
    const server = await start({ kind: "slow-reply", reply: "+PONG\r\n", afterMs: 200, gapMs: 20 });
    const socket = connect({ host: "127.0.0.1", port: server.port });
    await new Promise((resolve) => socket.once("connect", resolve));
    let data = "";
    const arrivals: { at: number; text: string }[] = [];
    socket.on("data", (chunk: Buffer) => {
      data += chunk.toString();
      arrivals.push({ at: performance.now(), text: chunk.toString() });
    });
    const answered = (count: number) => until(() => data.split("+PONG\r\n").length - 1 >= count, `answer ${count}`, GUARD_MS, 5);
    try {
      const sent = performance.now();
      socket.write(REQUEST);
      await until(() => data.length > 0, "the first byte", GUARD_MS, 5);
      socket.write(REQUEST); // during the answer: not a new one
      await answered(1);
      const first = arrivals.find((a) => a.text.includes("+PONG"))!;
      expect(first.at - sent).toBeGreaterThanOrEqual(200 - 5); // timers may round down a little
      expect(data).toMatch(/^z{3,}\+PONG\r\n$/);
      socket.write(REQUEST); // the next request: a second answer
      await answered(2);
      expect(data).toMatch(/^z{3,}\+PONG\r\nz{3,}\+PONG\r\n$/);
      await new Promise((r) => setTimeout(r, 300));
      expect(data.split("+PONG").length - 1).toBe(2); // the ignored request got no answer of its own
    } finally {
      socket.destroy();
    }
  });

  it("large: exactly largeBody(bytes), then a close", async () => {
    const bytes = 3 * 1024 * 1024 + 7; // not a multiple of the pattern or of any chunk size
    const server = await start({ kind: "large", bytes });
    const seen = await observe(server.port);
    expect(seen).toMatchObject({ ended: true, errorCode: undefined, timedOut: false });
    expect(seen.data.length).toBe(bytes);
    expect(seen.data.equals(largeBody(bytes))).toBe(true);
    // Rebuilt independently of largeBody: the content is the documented pattern, byte i = i % 251.
    const pattern = new Uint8Array(bytes);
    for (let i = 0; i < bytes; i++) pattern[i] = i % 251;
    expect(md5(seen.data)).toBe(md5(pattern));
  });

  it("large: zero bytes is an immediate close", async () => {
    const server = await start({ kind: "large", bytes: 0 });
    const seen = await observe(server.port);
    expect(seen).toMatchObject({ chunks: 0, ended: true, errorCode: undefined });
  });

  it("flood: over 1 MiB within 2 s, and the server stops once the client goes", async () => {
    const server = await start({ kind: "flood" });
    const sockets = handles("TCPSocketWrap");
    const started = Date.now();
    const seen = await observe(server.port, { waitMs: 2_000, stopAfterBytes: 1024 * 1024 + 1 });
    expect(seen.timedOut).toBe(false);
    expect(seen.data.length).toBeGreaterThan(1024 * 1024);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(seen.data.every((byte) => byte === 0x7a)).toBe(true);
    // The server's side of the connection closes on its own once the client destroyed its end.
    await until(() => handles("TCPSocketWrap") <= sockets, `the open sockets back to ${sockets}`, 5_000);
    expect(server.connections).toBe(1);
    const closing = Date.now();
    await server.close();
    expect(Date.now() - closing).toBeLessThan(500);
  });

  it("close() destroys open connections, resolves promptly and is idempotent", async () => {
    const server = await start({ kind: "stall", gapMs: 10 });
    const pending = observe(server.port);
    await new Promise((r) => setTimeout(r, 50));
    const closing = Date.now();
    await server.close();
    await server.close();
    expect(Date.now() - closing).toBeLessThan(500);
    const seen = await pending;
    expect(seen.timedOut).toBe(false); // the server ended it, not the client's guard
    expect(await observe(server.port)).toMatchObject({ errorCode: "ECONNREFUSED" });
  });

  it("leaves no timer or socket behind: a process using the writing faults exits on its own", async () => {
    const module = new URL("../../simulator/servers/tcp.js", import.meta.url).href;
    const result = await runChild(LEAK_CHECK, [module], GUARD_MS);
    expect(result.stdout).toBe("closed\n");
    expect(result.exitedMs).toBeLessThan(1_000);
  });

  it("refusedPort: nothing listens there", async () => {
    const port = await refusedPort();
    expect(port).toBeGreaterThan(0);
    expect(await observe(port)).toMatchObject({ errorCode: "ECONNREFUSED", chunks: 0 });
  });

  it("IPv6 loopback: a reply server and a refused port on ::1", async () => {
    const server = await start({ kind: "reply", reply: "+PONG\r\n" }, "::1");
    expect(server.host).toBe("::1");
    const seen = await observe(server.port, { host: "::1", stopAfterBytes: 7 });
    expect(seen.data.toString()).toBe("+PONG\r\n");
    const port = await refusedPort("::1");
    expect(await observe(port, { host: "::1" })).toMatchObject({ errorCode: "ECONNREFUSED" });
  });
});
