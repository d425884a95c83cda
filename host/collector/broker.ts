// The embedded MQTT broker (aedes, MQTT 3.1.1) that makes one collector process the whole
// server side when no --broker is given. The collector's own client connects inside the
// process, before the broker listens: no other client can publish before the collector's
// subscription is in place (DESIGN.md "MQTT": the collector's start never loses results).

import { once } from "node:events";
import { createServer, type AddressInfo, type Server } from "node:net";
import { Duplex, PassThrough } from "node:stream";
import { Aedes } from "aedes";
import { parseHostPort } from "./address.js";
import { MAX_PACKET_BYTES } from "../wire/record.js";
import { PacketLimitedStream } from "./packet-limit.js";

export interface EmbeddedBrokerOptions {
  /** hears of each connection closed for a packet over MAX_PACKET_BYTES */
  onOversize?: (declared: number, remote: string) => void;
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
  const aedes = await Aedes.createBroker();
  const server: Server = createServer((socket) => {
    aedes.handle(new PacketLimitedStream(socket, MAX_PACKET_BYTES,
      (declared) => opts.onOversize?.(declared, `${socket.remoteAddress}:${socket.remotePort}`)));
  });
  const closeAedes = () => new Promise<void>((resolve) => aedes.close(() => resolve()));
  return {
    connectLocal() {
      const [client, broker] = streamPair();
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
      return `mqtt://${host.includes(":") ? `[${host}]` : host}:${bound}`;
    },
    async close() {
      await closeAedes();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
