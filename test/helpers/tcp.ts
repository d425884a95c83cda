// Small scripted TCP servers on loopback for probe tests: each test says what the server does
// with a connection, and can ask afterwards what it saw.

import { createServer, type Server, type Socket } from "node:net";
import { once } from "node:events";

export interface TestServer {
  host: string;
  port: number;
  /** connections accepted so far */
  connections: number;
  /** every byte the server received, per connection */
  received: Buffer[][];
  close(): Promise<void>;
}

export async function tcpServer(
  handle: (socket: Socket, received: Buffer[]) => void, host = "127.0.0.1",
): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const state: TestServer = { host, port: 0, connections: 0, received: [], close: async () => {} };
  const server: Server = createServer((socket) => {
    state.connections++;
    const received: Buffer[] = [];
    state.received.push(received);
    sockets.add(socket);
    socket.on("data", (chunk) => received.push(chunk));
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    handle(socket, received);
  });
  server.listen(0, host);
  await once(server, "listening");
  state.port = (server.address() as { port: number }).port;
  state.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  return state;
}

/** Writes the chunks `gapMs` apart (a dribbled or segmented reply), then optionally ends. */
export async function dribble(socket: Socket, chunks: (string | Buffer)[], gapMs: number, end = false): Promise<void> {
  for (const chunk of chunks) {
    if (socket.destroyed) return;
    socket.write(chunk);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  if (end && !socket.destroyed) socket.end();
}

/** A port on which nothing listens (the lab's refused-connection fault). */
export { refusedPort as closedPort } from "../../simulator/servers/tcp.js";
