// The embedded MQTT broker (aedes, MQTT 3.1.1) that makes one collector process the whole
// server side when no --broker is given. The collector's own client connects inside the
// process, before the broker listens: no other client can publish before the collector's
// subscription is in place (DESIGN.md "MQTT": the collector's start never loses results).

import { once } from "node:events";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { Duplex, PassThrough } from "node:stream";
import { createServer as createTlsServer } from "node:tls";
import { Aedes } from "aedes";
import { parseHostPort } from "./address.js";
import { MAX_PACKET_BYTES } from "../wire/record.js";
import { BrokerAccess, type DenyReason, type Origin } from "./broker-access.js";
import { PacketLimitedStream } from "./packet-limit.js";
import type { PasswordFile } from "./passwords.js";

export interface EmbeddedBrokerOptions {
  /** hears of each connection closed for a packet over MAX_PACKET_BYTES */
  onOversize?: (declared: number, remote: string) => void;
  /** probes log in with these passwords; absent: anonymous clients on loopback only */
  passwords?: PasswordFile;
  /** hears of every refused connection, publish and subscription */
  onDeny?: (reason: DenyReason, detail: string) => void;
  /** serve MQTT over TLS with this certificate and key (PEM) */
  tls?: { cert: Buffer; key: Buffer };
}

export interface EmbeddedBroker {
  /** A new connection from inside this process (for the collector's client). */
  connectLocal(): Duplex;
  /** Starts accepting TCP clients on "host:port" (port 0 picks a free one); resolves with the URL. */
  listen(address: string): Promise<string>;
  close(): Promise<void>;
}

/** Two streams, each reading what the other writes: an in-process connection. */
function streamPair(): [Duplex, Duplex] {
  const toBroker = new PassThrough();
  const toClient = new PassThrough();
  return [Duplex.from({ readable: toClient, writable: toBroker }), Duplex.from({ readable: toBroker, writable: toClient })];
}

export async function createEmbeddedBroker(opts: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const origins = new WeakMap<object, Origin>();
  const access = new BrokerAccess({
    passwords: opts.passwords ?? null,
    originOf: (conn) => origins.get(conn as object) ?? { local: false, address: "unknown" },
    onDeny: opts.onDeny ?? (() => {}),
  });
  const aedes = await Aedes.createBroker({
    authenticate: access.authenticate,
    authorizePublish: access.authorizePublish,
    authorizeSubscribe: access.authorizeSubscribe,
  });
  const accept = (socket: Socket) => {
    const stream = new PacketLimitedStream(socket, MAX_PACKET_BYTES,
      (declared) => opts.onOversize?.(declared, `${socket.remoteAddress}:${socket.remotePort}`));
    origins.set(stream, { local: false, address: socket.remoteAddress ?? "unknown" });
    aedes.handle(stream);
  };
  const server: Server = opts.tls ? createTlsServer({ ...opts.tls, minVersion: "TLSv1.2" }, accept) : createServer(accept);
  const closeAedes = () => new Promise<void>((resolve) => aedes.close(() => resolve()));
  return {
    connectLocal() {
      const [client, broker] = streamPair();
      origins.set(broker, { local: true });
      aedes.handle(broker);
      return client;
    },
    async listen(address) {
      const { host, port } = parseHostPort(address, "--mqtt-listen");
      server.listen(port, host);
      try {
        await once(server, "listening"); // rejects with the listen error
      } catch (err) {
        const inUse = (err as NodeJS.ErrnoException).code === "EADDRINUSE"
          ? ` (a broker already running there? use it with --broker mqtt://${address}, or pick another --mqtt-listen)` : "";
        throw new Error(`cannot listen for MQTT on ${address}: ${(err as Error).message}${inUse}`);
      }
      const bound = (server.address() as AddressInfo).port;
      return `${opts.tls ? "mqtts" : "mqtt"}://${host.includes(":") ? `[${host}]` : host}:${bound}`;
    },
    async close() {
      await closeAedes();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
