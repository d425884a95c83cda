import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls, type ConnectionOptions } from "node:tls";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLabPki, type LabPki } from "../../simulator/certs.js";
import type { FaultServer } from "../../simulator/servers/tcp.js";
import { startTlsFault, type TlsFault } from "../../simulator/servers/tls.js";

const REQUEST = "PING\r\n";
const REPLY = "+PONG\r\n";
const GUARD_MS = 5_000;

/** What a TLS client concluded about one connection. */
interface TlsOutcome {
  authorized?: boolean;
  reply?: string;
  errorCode?: string;
}

/**
 * A verifying TLS client (rejectUnauthorized stays on): handshakes, sends REQUEST and waits for
 * `expectBytes` of reply, or for an error.
 */
function tlsExchange(options: ConnectionOptions, expectBytes = REPLY.length): Promise<TlsOutcome> {
  return new Promise((resolve) => {
    const socket = connectTls(options);
    let reply = "";
    const finish = (outcome: TlsOutcome): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ errorCode: "TEST_TIMEOUT" }), GUARD_MS);
    socket.once("secureConnect", () => socket.write(REQUEST));
    socket.on("data", (chunk: Buffer) => {
      reply += chunk.toString("latin1");
      if (reply.length >= expectBytes) finish({ authorized: socket.authorized, reply });
    });
    socket.once("error", (err: NodeJS.ErrnoException) => finish({ errorCode: err.code ?? err.message }));
  });
}

/** Reads from a plain socket until `text` has arrived; resolves with everything read. */
function readUntil(socket: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = "";
    const done = (err?: Error): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", done);
      if (err) reject(err);
      else resolve(received);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.toString("latin1");
      if (received.includes(text)) done();
    };
    const timeout = (): void => done(new Error(`timed out waiting for ${JSON.stringify(text)}`));
    const timer = setTimeout(timeout, GUARD_MS);
    socket.on("data", onData);
    socket.once("error", done);
  });
}

function connectPlain(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

describe("TLS fault servers", () => {
  let pki: LabPki;
  const servers: FaultServer[] = [];
  const sockets: Socket[] = [];

  beforeAll(() => {
    pki = createLabPki();
  });

  async function start(fault: TlsFault, host?: "127.0.0.1" | "::1"): Promise<FaultServer> {
    const server = await startTlsFault(fault, pki, host ? { host } : {});
    servers.push(server);
    return server;
  }

  function trusting(server: FaultServer): ConnectionOptions {
    return { host: server.host, port: server.port, ca: pki.ca.cert, servername: "localhost" };
  }

  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.destroy());
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it("valid: a client trusting the lab CA is authorized and gets the reply", async () => {
    const server = await start({ kind: "valid", reply: REPLY });
    expect(server.host).toBe("127.0.0.1");
    expect(await tlsExchange(trusting(server))).toEqual({ authorized: true, reply: REPLY });
    expect(server.connections).toBe(1);
  });

  it("valid: answers each chunk", async () => {
    const server = await start({ kind: "valid", reply: REPLY });
    const socket = connectTls(trusting(server));
    sockets.push(socket);
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    for (let i = 0; i < 2; i++) {
      socket.write(REQUEST);
      expect(await readUntil(socket, REPLY)).toBe(REPLY);
    }
  });

  it("untrusted: a self-signed certificate fails verification", async () => {
    const server = await start({ kind: "untrusted", reply: REPLY });
    expect(await tlsExchange(trusting(server))).toEqual({ errorCode: "DEPTH_ZERO_SELF_SIGNED_CERT" });
  });

  it("expired: the expired certificate fails verification", async () => {
    const server = await start({ kind: "expired", reply: REPLY });
    expect(await tlsExchange(trusting(server))).toEqual({ errorCode: "CERT_HAS_EXPIRED" });
  });

  it("plaintext: a TLS client gets a protocol error, not a hang", async () => {
    const server = await start({ kind: "plaintext" });
    const outcome = await tlsExchange(trusting(server));
    expect(outcome.errorCode).toBeDefined();
    expect(outcome.errorCode).not.toBe("TEST_TIMEOUT");
    expect(outcome.errorCode).toMatch(/^ERR_SSL_/); // e.g. ERR_SSL_WRONG_VERSION_NUMBER
  });

  it("plaintext: a plain client reads the banner", async () => {
    const server = await start({ kind: "plaintext" });
    const socket = await connectPlain(server.port);
    sockets.push(socket);
    expect(await readUntil(socket, "\r\n")).toBe("220 plain text here\r\n");
  });

  it("starttls: plain banner, STARTTLS, then an authorized TLS session with the reply", async () => {
    const server = await start({ kind: "starttls", reply: REPLY });
    const plain = await connectPlain(server.port);
    sockets.push(plain);
    expect(await readUntil(plain, "\r\n")).toBe("220 ready\r\n");
    plain.write("EHLO probe\r\n");
    expect(await readUntil(plain, "\r\n")).toBe("250 ok\r\n");
    plain.write("STARTTLS\r\n");
    expect(await readUntil(plain, "\r\n")).toBe("220 go ahead\r\n");
    const secure = connectTls({ socket: plain, servername: "localhost", ca: pki.ca.cert });
    sockets.push(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    expect(secure.authorized).toBe(true);
    secure.write(REQUEST);
    expect(await readUntil(secure, REPLY)).toBe(REPLY);
    expect(server.connections).toBe(1);
  });

  it("starttls: a TLS client that skips STARTTLS fails instead of hanging", async () => {
    const server = await start({ kind: "starttls", reply: REPLY });
    const outcome = await tlsExchange(trusting(server));
    expect(outcome.errorCode).toMatch(/^ERR_SSL_/);
  });

  it("IPv6 loopback: a valid server on ::1", async () => {
    const server = await start({ kind: "valid", reply: REPLY }, "::1");
    expect(server.host).toBe("::1");
    expect(await tlsExchange(trusting(server))).toEqual({ authorized: true, reply: REPLY });
  });

  it("close() ends open TLS sessions, resolves promptly and is idempotent", async () => {
    const server = await start({ kind: "valid", reply: REPLY });
    const socket = connectTls(trusting(server));
    sockets.push(socket);
    socket.on("error", () => {});
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    const closed = new Promise((resolve) => socket.once("close", resolve));
    const started = Date.now();
    await server.close();
    await server.close();
    await closed;
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
