// The fault proxy against real sockets on loopback: an echo (or scripted) server behind it, and a
// client in front that records what arrives and when. Lower time bounds are what a toxic
// guarantees (its sleeps never end early on performance.now()); upper bounds sit a multiple of the
// delay under test away, so scheduling jitter on a loaded machine cannot decide the outcome.
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startFaultProxy, type FaultProxy, type FaultProxyOptions } from "../../simulator/proxy.js";
import { largeBody, refusedPort, startTcpFault } from "../../simulator/servers/tcp.js";
import { runChild } from "../helpers/child.js";
import { tcpServer } from "../helpers/tcp.js";
import { until } from "../helpers/until.js";

const GUARD_MS = 5_000;
const KIB = 1024;

/** Anything a test starts, closed after it. */
const open: { close(): Promise<void> | void }[] = [];

afterEach(async () => {
  for (const resource of open.splice(0).reverse()) await resource.close();
});

/** What a client saw, with times from performance.now(). */
interface Seen {
  data: Buffer[];
  dataAt: number[];
  endedAt: number | undefined;
  closed: boolean;
  errorCode: string | undefined;
}

interface Client {
  socket: Socket;
  seen: Seen;
  bytes(): Buffer;
}

async function startProxy(upstream: { host: string; port: number }, options?: FaultProxyOptions) {
  const proxy = await startFaultProxy(upstream, options);
  open.push(proxy);
  return proxy;
}

/** An echo server with a proxy in front. */
async function echoProxy(options?: FaultProxyOptions): Promise<FaultProxy> {
  const echo = await startTcpFault({ kind: "echo" });
  open.push(echo);
  return startProxy(echo, options);
}

/** A server that runs `handle` on each connection, with a proxy in front. */
async function serverProxy(
  handle: (socket: Socket) => void, options?: FaultProxyOptions,
): Promise<FaultProxy> {
  const server = await tcpServer(handle);
  open.push(server);
  return startProxy(server, options);
}

/** Connects (Nagle off) and records everything that happens to the socket. */
async function client(proxy: FaultProxy): Promise<Client> {
  const socket = connect({ host: proxy.host, port: proxy.port, noDelay: true });
  open.push({ close: () => void socket.destroy() });
  const seen: Seen = { data: [], dataAt: [], endedAt: undefined, closed: false, errorCode: undefined };
  socket.on("data", (chunk: Buffer) => {
    seen.data.push(chunk);
    seen.dataAt.push(performance.now());
  });
  socket.on("end", () => (seen.endedAt = performance.now()));
  socket.on("close", () => (seen.closed = true));
  socket.on("error", (err: NodeJS.ErrnoException) => (seen.errorCode ??= err.code ?? err.message));
  await new Promise<void>((resolve) => {
    socket.once("connect", resolve);
    socket.once("close", resolve);
  });
  return { socket, seen, bytes: () => Buffer.concat(seen.data) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sends `payload` and waits (by event, not polling) for that many more bytes: the elapsed ms. */
function roundTrip(c: Client, payload: string): Promise<number> {
  const target = c.bytes().length + Buffer.byteLength(payload);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error("no echo")), GUARD_MS);
    const check = (): void => {
      if (c.bytes().length < target) return;
      clearTimeout(guard);
      c.socket.off("data", check);
      resolve(performance.now() - started);
    };
    c.socket.on("data", check);
    c.socket.write(payload);
  });
}

describe("fault proxy", () => {
  it("without toxics, forwards both ways and counts connections and bytes", async () => {
    const proxy = await echoProxy();
    expect(proxy.host).toBe("127.0.0.1");
    expect(proxy.port).toBeGreaterThan(0);
    const first = await client(proxy);
    await roundTrip(first, "hello");
    expect(first.bytes().toString()).toBe("hello");
    const second = await client(proxy);
    await roundTrip(second, "world!");
    expect(second.bytes().toString()).toBe("world!");
    expect(proxy.stats).toEqual({ connections: 2, bytesUpstream: 11, bytesDownstream: 11 });
    expect(proxy.toxics("upstream")).toEqual([]);
  });

  it("latency: delays the reply, and jitter never reorders chunks", async () => {
    const proxy = await echoProxy({ downstreamToxics: [{ type: "latency", latencyMs: 150 }] });
    const c = await client(proxy);
    const ms = await roundTrip(c, "ping");
    console.log(`latency 150 ms: round trip ${ms.toFixed(1)} ms`);
    expect(ms).toBeGreaterThanOrEqual(150);
    // 4× the delay: catches a delay applied more than once, not a few hundred ms of stall.
    expect(ms).toBeLessThan(4 * 150);

    proxy.setToxics("downstream", [{ type: "latency", latencyMs: 40, jitterMs: 35 }]);
    const jittered = await client(proxy);
    const parts = Array.from({ length: 30 }, (_, i) => `<${i}>`);
    for (const part of parts) {
      jittered.socket.write(part);
      await sleep(3); // separate chunks at the proxy, each with its own jitter
    }
    const expected = parts.join("");
    await until(() => jittered.bytes().length >= expected.length, "every chunk", GUARD_MS);
    expect(jittered.bytes().toString()).toBe(expected);
    const events = jittered.seen.data.length;
    console.log(`latency 40±35 ms: ${parts.length} chunks in order, ${events} data events`);
  });

  it("bandwidth: 50 KiB at 100 KiB/s takes at least half a second", async () => {
    const body = largeBody(50 * KIB);
    const rate = 100 * KIB;
    const proxy = await serverProxy((socket) => socket.end(body), {
      downstreamToxics: [{ type: "bandwidth", bytesPerSecond: rate }],
    });
    const started = performance.now();
    const c = await client(proxy);
    await until(() => c.seen.endedAt !== undefined, "the FIN", GUARD_MS);
    const seconds = (c.seen.dataAt.at(-1)! - started) / 1000;
    const measured = body.length / seconds;
    const took = `${(seconds * 1000).toFixed(0)} ms`;
    const kibPerSecond = (measured / KIB).toFixed(1);
    const events = c.seen.data.length;
    console.log(`bandwidth 100 KiB/s: 50 KiB in ${took} = ${kibPerSecond} KiB/s, ${events} data events`);
    expect(c.bytes().equals(body)).toBe(true);
    // The schedule lets the last byte go no earlier than body/rate after the first reached the
    // proxy (after `started`): never faster than the rate, however loaded the machine.
    expect(measured).toBeLessThanOrEqual(rate);
    // 4× the expected 0.5 s: catches a rate read as bits (8×), not a stalled timer.
    expect(seconds).toBeLessThan((4 * body.length) / rate);
  });

  it("slicer: a 1000-byte reply arrives in many small pieces, unchanged", async () => {
    const body = largeBody(1000);
    const proxy = await serverProxy((socket) => socket.once("data", () => socket.write(body)), {
      downstreamToxics: [{ type: "slicer", averageSize: 10, sizeVariation: 5, delayMs: 1 }],
    });
    const c = await client(proxy);
    c.socket.write("go");
    await until(() => c.bytes().length >= body.length, "the whole body", GUARD_MS);
    const sizes = c.seen.data.map((chunk) => chunk.length);
    console.log(`slicer avg 10: ${sizes.length} data events, largest ${Math.max(...sizes)} bytes`);
    expect(c.seen.data.length).toBeGreaterThanOrEqual(20);
    expect(c.bytes().equals(body)).toBe(true);
  });

  it("applies toxics in order, with stages overlapping: slicer then latency", async () => {
    const body = largeBody(1000);
    const proxy = await serverProxy((socket) => socket.once("data", () => socket.write(body)), {
      downstreamToxics: [
        { type: "slicer", averageSize: 10, delayMs: 1 },
        { type: "latency", latencyMs: 100 },
      ],
    });
    const c = await client(proxy);
    const started = performance.now();
    c.socket.write("go");
    await until(() => c.bytes().length >= body.length, "the whole body", GUARD_MS);
    const firstMs = c.seen.dataAt[0]! - started;
    const lastMs = c.seen.dataAt.at(-1)! - started;
    console.log(`slicer+latency 100: first byte ${firstMs.toFixed(0)} ms, last ${lastMs.toFixed(0)} ms`);
    expect(firstMs).toBeGreaterThanOrEqual(100);
    // ~100 pieces each delayed 100 ms: in a pipeline that is ~100 ms plus the slicing, not 10 s.
    expect(lastMs).toBeLessThan(1000);
    expect(c.bytes().equals(body)).toBe(true);
  });

  it("reset_peer: resets at once on accept, or afterMs later", async () => {
    const echo = await startTcpFault({ kind: "echo" });
    open.push(echo);
    const proxy = await startProxy(echo, { upstreamToxics: [{ type: "reset_peer" }] });
    const c = await client(proxy);
    await until(() => c.seen.closed, "the client's close", GUARD_MS);
    expect(c.seen.errorCode).toBe("ECONNRESET");
    expect(echo.connections).toBe(0); // never dialled

    proxy.setToxics("upstream", []);
    proxy.setToxics("downstream", [{ type: "reset_peer", afterMs: 200 }]);
    const opened = performance.now(); // before the dial, so before the proxy's accept starts the timer
    const later = await client(proxy);
    await roundTrip(later, "still fine");
    await until(() => later.seen.closed, "the reset", GUARD_MS);
    const resetMs = performance.now() - opened;
    expect(later.seen.errorCode).toBe("ECONNRESET");
    // A Node timer may fire up to 1 ms early on performance.now() (libuv's cached loop clock).
    expect(resetMs).toBeGreaterThanOrEqual(199);
    await until(() => proxy.stats.connections === 2, "2 connections counted", GUARD_MS);
  });

  it("timeout: no reply, no FIN, but the connection stays open", async () => {
    const proxy = await echoProxy({ downstreamToxics: [{ type: "timeout" }] });
    const c = await client(proxy);
    c.socket.write("anyone there?");
    await sleep(300);
    expect(c.seen.data.length).toBe(0);
    expect(c.seen).toMatchObject({ endedAt: undefined, closed: false, errorCode: undefined });
    expect(c.socket.readyState).toBe("open");
    // Proof the connection was live: lift the timeout and the same socket gets echoes again.
    proxy.setToxics("downstream", []);
    await roundTrip(c, "back");
    expect(c.bytes().toString()).toBe("back");
  });

  it("limit_data: exactly 100 bytes of a 1000-byte reply, then the connection closes", async () => {
    const body = largeBody(1000);
    const proxy = await serverProxy((socket) => socket.once("data", () => socket.write(body)), {
      downstreamToxics: [{ type: "limit_data", bytes: 100 }],
    });
    const c = await client(proxy);
    c.socket.write("go");
    await until(() => c.seen.closed, "the client's close", GUARD_MS);
    expect(c.bytes().equals(body.subarray(0, 100))).toBe(true);
    expect(c.seen.endedAt).toBeDefined();
    expect(c.seen.errorCode).toBeUndefined();
    expect(proxy.stats.bytesDownstream).toBe(100);
  });

  it("slow_close: the FIN follows the data 300 ms late", async () => {
    const proxy = await serverProxy((socket) => socket.once("data", () => socket.end("bye")), {
      downstreamToxics: [{ type: "slow_close", delayMs: 300 }],
    });
    const c = await client(proxy);
    c.socket.write("go");
    await until(() => c.seen.endedAt !== undefined, "the FIN", GUARD_MS);
    const gapMs = c.seen.endedAt! - c.seen.dataAt.at(-1)!;
    console.log(`slow_close 300 ms: FIN ${gapMs.toFixed(1)} ms after the data`);
    expect(c.bytes().toString()).toBe("bye");
    expect(gapMs).toBeGreaterThanOrEqual(300);
    expect(gapMs).toBeLessThan(3 * 300); // catches a FIN delayed twice, not a stalled timer
  });

  it("changes toxics on a live connection and for new ones", async () => {
    const proxy = await echoProxy();
    const c = await client(proxy);
    const before = await roundTrip(c, "a");
    // Large, so that "toxic gone" (< latency) and "toxic kept" (>= latency) are 500 ms apart.
    const latency = { type: "latency", latencyMs: 500 } as const;
    proxy.setToxics("downstream", [latency]);
    expect(proxy.toxics("downstream")).toEqual([latency]);
    const slowed = await roundTrip(c, "b");
    const fresh = await client(proxy);
    const slowedFresh = await roundTrip(fresh, "c");
    proxy.setToxics("downstream", []);
    const after = await roundTrip(c, "d");
    const steps = [before, slowed, slowedFresh, after].map((ms) => ms.toFixed(1));
    console.log(`live change, round trips: ${steps[0]} → ${steps[1]} (new: ${steps[2]}) → ${steps[3]} ms`);
    expect(slowed).toBeGreaterThanOrEqual(latency.latencyMs);
    expect(slowedFresh).toBeGreaterThanOrEqual(latency.latencyMs);
    expect(after).toBeLessThan(latency.latencyMs);
    expect(c.bytes().toString()).toBe("abd");
  });

  it("rejects invalid toxics, naming the toxic and the field, and keeps the old ones", async () => {
    const proxy = await echoProxy({ upstreamToxics: [{ type: "latency", latencyMs: 10 }] });
    const bad: [unknown, RegExp][] = [
      [{ type: "latency", latencyMs: -1 }, /latency toxic: latencyMs/],
      [{ type: "latency", latencyMs: 5, jitterMs: Number.NaN }, /latency toxic: jitterMs/],
      [{ type: "bandwidth", bytesPerSecond: 0 }, /bandwidth toxic: bytesPerSecond must be .* > 0/],
      [{ type: "slicer", averageSize: 0 }, /slicer toxic: averageSize must be .* >= 1/],
      [{ type: "limit_data", bytes: Infinity }, /limit_data toxic: bytes/],
      [{ type: "slow_close" }, /slow_close toxic: delayMs/],
      [{ type: "timeout", afterMs: "5" }, /timeout toxic: afterMs/],
      [{ type: "warp" }, /unknown type "warp"/],
    ];
    for (const [toxic, message] of bad) {
      const list = [{ type: "latency", latencyMs: 1 }, toxic] as never;
      expect(() => proxy.setToxics("upstream", list)).toThrow(message);
    }
    expect(proxy.toxics("upstream")).toEqual([{ type: "latency", latencyMs: 10 }]);
    const badStart: FaultProxyOptions = { downstreamToxics: [{ type: "bandwidth", bytesPerSecond: -5 }] };
    await expect(startFaultProxy({ host: "127.0.0.1", port: 1 }, badStart)).rejects.toThrow(/bytesPerSecond/);
  });

  it("closes the client when the upstream refuses", async () => {
    const proxy = await startProxy({ host: "127.0.0.1", port: await refusedPort() });
    const c = await client(proxy);
    await until(() => c.seen.closed, "the client's close", GUARD_MS);
    expect(c.seen.data.length).toBe(0);
  });

  it("backpressure: a flooding server is held back while the client does not read", async () => {
    const flood = await startTcpFault({ kind: "flood" });
    open.push(flood);
    const proxy = await startProxy(flood);
    const c = await client(proxy);
    c.socket.pause();
    c.socket.write("go");
    await sleep(300);
    const first = proxy.stats.bytesDownstream;
    await sleep(200);
    const second = proxy.stats.bytesDownstream;
    const mib = (bytes: number): string => (bytes / KIB / KIB).toFixed(1);
    console.log(`backpressure: forwarded ${mib(first)} MiB, 200 ms later ${mib(second)} MiB`);
    // Kernel buffers take a few MiB; without backpressure the proxy would queue GiBs in memory.
    expect(second).toBeLessThan(64 * KIB * KIB);
    expect(second - first).toBeLessThan(KIB * KIB);
  });

  it("close(): destroys live connections, stops listening, is idempotent", async () => {
    const proxy = await echoProxy({ downstreamToxics: [{ type: "latency", latencyMs: 1000 }] });
    const c = await client(proxy);
    c.socket.write("pending");
    await sleep(20);
    await Promise.all([proxy.close(), proxy.close()]);
    await until(() => c.seen.closed, "the client's close", GUARD_MS);
    expect(c.seen.data.length).toBe(0);
    const late = await client(proxy);
    expect(late.seen.errorCode).toBe("ECONNREFUSED");
  });
});

// Runs in a child process: connections with timers pending in every kind of stage, some ended by
// their peers, the rest by close(). Any timer or socket left behind would keep the child alive.
const LEAK_CHECK = `
import { connect } from "node:net";
const { startFaultProxy } = await import(process.argv[1]);
const { startTcpFault } = await import(process.argv[2]);
const echo = await startTcpFault({ kind: "echo" });
const proxy = await startFaultProxy(echo, {
  upstreamToxics: [
    { type: "slicer", averageSize: 3, delayMs: 5 },
    { type: "bandwidth", bytesPerSecond: 200 },
  ],
  downstreamToxics: [
    { type: "latency", latencyMs: 500, jitterMs: 50 },
    { type: "reset_peer", afterMs: 60000 },
    { type: "slow_close", delayMs: 60000 },
    { type: "timeout", afterMs: 60000 },
  ],
});
const clients = [];
for (let i = 0; i < 4; i++) {
  const client = connect(proxy.port, "127.0.0.1", () => client.write("x".repeat(100)));
  client.on("error", () => {});
  clients.push(client);
}
await new Promise((resolve) => setTimeout(resolve, 100));
clients[0].destroy();
clients[1].end();
await new Promise((resolve) => setTimeout(resolve, 50));
await proxy.close();
for (const client of clients) client.destroy();
await echo.close();
process.stdout.write("closed\\n");
`;

describe("fault proxy cleanup", () => {
  it("leaves no timer or socket behind after close()", async () => {
    const modules = ["../../simulator/proxy.ts", "../../simulator/servers/tcp.ts"];
    const paths = modules.map((module) => fileURLToPath(new URL(module, import.meta.url)));
    const { stdout, exitedMs } = await runChild(LEAK_CHECK, paths, GUARD_MS);
    expect(stdout).toBe("closed\n");
    // 60 s timers were pending: an exit within a second means every one of them was cleared.
    expect(exitedMs).toBeLessThan(1000);
  });
});
