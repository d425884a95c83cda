// TCP fault servers for tests and the fault lab: each listener plays one healthy or misbehaving
// peer on loopback. Only Node's standard library is used; a fault server never throws on a
// client's misbehaviour, and close() leaves no socket or timer behind.
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";

export type TcpFault =
  /** on each data chunk received, writes `reply` (a healthy server, or a wrong reply) */
  | { kind: "reply"; reply: string }
  /** writes back what it receives */
  | { kind: "echo" }
  /** writes `banner` on accept, then behaves like echo */
  | { kind: "banner"; banner: string }
  /** accepts and reads, never writes */
  | { kind: "silent" }
  /** on the first data, closes (FIN) without writing a byte */
  | { kind: "close" }
  /** on the first data, resets the connection (RST) */
  | { kind: "reset" }
  /** resets right after accepting */
  | { kind: "accept-reset" }
  /** on the first data, writes `reply` one byte per segment, gapMs apart */
  | { kind: "dribble"; reply: string; gapMs: number }
  /** on the first data, writes one "z" every gapMs for as long as the connection lasts */
  | { kind: "stall"; gapMs: number }
  /** on the first data, writes `bytes` bytes of largeBody(bytes), then closes */
  | { kind: "large"; bytes: number }
  /** on the first data, writes "z" bytes as fast as the socket drains, until closed */
  | { kind: "flood" }
  /**
   * answers each request late but steadily: on a data chunk while no answer is under way, one
   * "z" every gapMs for afterMs, then `reply` (a slow dialog: every answer arrives, none quickly)
   */
  | { kind: "slow-reply"; reply: string; afterMs: number; gapMs: number };

export interface FaultServer {
  readonly host: string;
  readonly port: number;
  /** connections accepted so far */
  readonly connections: number;
  /** destroys open sockets and closes the listener; idempotent */
  close(): Promise<void>;
}

export type LoopbackHost = "127.0.0.1" | "::1";

/** Period of largeBody's pattern: a prime, so the pattern never lines up with power-of-two chunks. */
const PATTERN_LENGTH = 251;
const PATTERN = Buffer.from(Array.from({ length: PATTERN_LENGTH }, (_, i) => i));
const FLOOD_CHUNK = Buffer.alloc(64 * 1024, "z");
const STALL_BYTE = Buffer.from("z");

const ignore = (): void => {};

/** Deterministic content for "large": byte i is i % 251, so a test can rebuild it and hash it. */
export function largeBody(bytes: number): Buffer {
  const body = Buffer.alloc(bytes);
  if (bytes > 0) body.fill(PATTERN);
  return body;
}

/** A port where nothing listens: bind one, note it, close it. */
export async function refusedPort(host: LoopbackHost = "127.0.0.1"): Promise<number> {
  const server = createServer();
  await listenLoopback(server, host);
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function startTcpFault(fault: TcpFault, options: { host?: LoopbackHost } = {}): Promise<FaultServer> {
  const server = createServer((socket) => runFault(socket, fault));
  return listenFaultServer(server, options.host ?? "127.0.0.1");
}

/** The live sockets of one fault server, so that close() can destroy them all. */
export class SocketTracker {
  private readonly sockets = new Set<Socket>();

  /** Tracks `socket` until it closes; its errors are expected (resets, broken pipes) and ignored. */
  add(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("error", ignore);
    socket.once("close", () => this.sockets.delete(socket));
  }

  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}

/**
 * Listens on host, port 0, and wraps `server` as a FaultServer. Accepted sockets are tracked
 * here; a caller that wraps them (TLS) passes its tracker to have the wrappers destroyed too.
 */
export async function listenFaultServer(
  server: Server, host: LoopbackHost, tracker = new SocketTracker(),
): Promise<FaultServer> {
  let connections = 0;
  // Prepended so the socket is counted and guarded before any fault handler touches it.
  server.prependListener("connection", (socket: Socket) => {
    connections++;
    tracker.add(socket);
  });
  await listenLoopback(server, host);
  server.on("error", ignore);
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    get connections() {
      return connections;
    },
    close(): Promise<void> {
      closing ??= new Promise((resolve) => {
        server.close(() => resolve());
        tracker.destroyAll();
      });
      return closing;
    },
  };
}

/** Listens on `host`, port 0 (a free port); rejects with the listen error. */
export function listenLoopback(server: Server, host: LoopbackHost): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port: 0 }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function runFault(socket: Socket, fault: TcpFault): void {
  switch (fault.kind) {
    case "reply":
      return onEachData(socket, () => send(socket, fault.reply));
    case "echo":
      return onEachData(socket, (chunk) => send(socket, chunk));
    case "banner":
      send(socket, fault.banner);
      return onEachData(socket, (chunk) => send(socket, chunk));
    case "silent":
      return onEachData(socket, ignore);
    case "close":
      // end() is a half-close: a FIN, and the rest of the request is still read (no RST).
      return onFirstData(socket, () => socket.end());
    case "reset":
      return onFirstData(socket, () => socket.resetAndDestroy());
    case "accept-reset":
      socket.resetAndDestroy();
      return;
    case "dribble":
      return onFirstData(socket, () => dribble(socket, Buffer.from(fault.reply), fault.gapMs));
    case "stall":
      return onFirstData(socket, () => stall(socket, fault.gapMs));
    case "large":
      return onFirstData(socket, () => socket.end(largeBody(fault.bytes)));
    case "flood":
      return onFirstData(socket, () => flood(socket));
    case "slow-reply":
      return slowReplies(socket, fault.reply, fault.afterMs, fault.gapMs);
  }
}

/** Reads everything (so the peer's writes never block) and calls `action` for each chunk. */
function onEachData(socket: Socket, action: (chunk: Buffer) => void): void {
  socket.on("data", action);
}

/** Reads everything, and calls `action` once, on the first chunk. */
function onFirstData(socket: Socket, action: () => void): void {
  let started = false;
  socket.on("data", () => {
    if (started) return;
    started = true;
    action();
  });
}

function send(socket: Socket, data: string | Buffer): void {
  if (socket.writable) socket.write(data);
}

/** Writes `bytes` one per segment: Nagle off, so each byte leaves on its own. */
function dribble(socket: Socket, bytes: Buffer, gapMs: number): void {
  socket.setNoDelay(true);
  let next = 0;
  let timer: NodeJS.Timeout | undefined;
  const writeNext = (): void => {
    if (!socket.writable || next >= bytes.length) return;
    socket.write(bytes.subarray(next, next + 1));
    next++;
    timer = setTimeout(writeNext, gapMs);
  };
  socket.once("close", () => clearTimeout(timer));
  writeNext();
}

/** One "z" every gapMs, never the expected reply, until the connection goes away. */
function stall(socket: Socket, gapMs: number): void {
  socket.setNoDelay(true);
  const timer = setInterval(() => send(socket, STALL_BYTE), gapMs);
  socket.once("close", () => clearInterval(timer));
}

/** Writes as fast as the peer drains; a closed socket stops the pump since it never drains again. */
function flood(socket: Socket): void {
  const pump = (): void => {
    let more = true;
    while (more) more = socket.writable && socket.write(FLOOD_CHUNK);
  };
  socket.on("drain", pump);
  pump();
}

/**
 * Each request (a chunk that arrives while no answer is under way) gets a "z" every gapMs from
 * the start, and `reply` once afterMs have passed. Chunks during an answer are read and ignored.
 */
function slowReplies(socket: Socket, reply: string, afterMs: number, gapMs: number): void {
  socket.setNoDelay(true);
  let ticker: NodeJS.Timeout | undefined;
  let answer: NodeJS.Timeout | undefined;
  socket.on("data", () => {
    if (answer) return;
    send(socket, STALL_BYTE);
    ticker = setInterval(() => send(socket, STALL_BYTE), gapMs);
    answer = setTimeout(() => {
      clearInterval(ticker);
      answer = undefined;
      send(socket, reply);
    }, afterMs);
  });
  socket.once("close", () => {
    clearInterval(ticker);
    clearTimeout(answer);
  });
}
