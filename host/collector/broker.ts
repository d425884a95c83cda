// The embedded MQTT broker (aedes, MQTT 3.1.1) that makes one collector process the whole
// server side when no --broker is given.

import { once } from "node:events";
import { createServer, type AddressInfo, type Server } from "node:net";
import { Aedes } from "aedes";
import { parseHostPort } from "./address.js";

export interface EmbeddedBroker {
  readonly url: string;
  close(): Promise<void>;
}

/** `listen` is "host:port"; port 0 picks a free one. */
export async function startEmbeddedBroker(listen: string): Promise<EmbeddedBroker> {
  const { host, port } = parseHostPort(listen, "--mqtt-listen");
  const aedes = await Aedes.createBroker();
  const server: Server = createServer(aedes.handle);
  server.listen(port, host);
  try {
    await once(server, "listening"); // rejects with the listen error
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    const inUse = (err as NodeJS.ErrnoException).code === "EADDRINUSE"
      ? ` (a broker already running there? use it with --broker mqtt://${listen}, or pick another --mqtt-listen)` : "";
    throw new Error(`cannot listen for MQTT on ${listen}: ${(err as Error).message}${inUse}`);
  }
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `mqtt://${host.includes(":") ? `[${host}]` : host}:${bound}`,
    close: async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
