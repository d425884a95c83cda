// Phase 2: the TCP connection. Refused, unreachable, reset during the handshake, or no
// handshake within connectTimeoutMs after the socket was created: a 601.

import { connect, type Socket } from "node:net";
import type { TaskSpec } from "../task/schema.js";
import { type Deadline, Limit, within } from "./deadline.js";
import { RunFault, describeError } from "./fault.js";
import type { Resolved } from "./dns.js";

export async function connectTarget(spec: TaskSpec, to: Resolved, task: Deadline): Promise<Socket> {
  const where = to.family === 6 ? `[${to.address}]:${spec.target.port}` : `${to.address}:${spec.target.port}`;
  const limit = new Limit(spec.connectTimeoutMs, 601, `cannot connect to ${where}: no connection within ${spec.connectTimeoutMs} ms`);
  const socket = connect({ host: to.address, port: spec.target.port, family: to.family, noDelay: true });
  const connected = new Promise<Socket>((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("error", (err) => reject(new RunFault(601, `cannot connect to ${where}: ${describeError(err)}`)));
  });
  try {
    return await within(connected, [limit, task], () => socket.destroy());
  } catch (err) {
    socket.destroy();
    throw err;
  }
}
