// Phase 2: the TCP connection. Refused, unreachable, reset during the handshake, or no
// handshake within connectTimeoutMs after the socket was created: a 601.

import { connect, type Socket } from "node:net";
import type { TaskSpec } from "../task/schema.js";
import { type Deadline, Limit, deadlineTimer, earlier } from "./deadline.js";
import { RunFault, describeError } from "./fault.js";
import type { Resolved } from "./dns.js";

/** The target as messages name it: 10.0.0.1:6379, [::1]:6379. */
function where(to: Resolved, port: number): string {
  return to.family === 6 ? `[${to.address}]:${port}` : `${to.address}:${port}`;
}

/**
 * Resolves with the connected socket, or rejects with a 601 (or the task's fault when its
 * deadline is the earlier). One promise and one timer: the socket's own events settle it.
 */
export function connectTarget(spec: TaskSpec, to: Resolved, task: Deadline, now = performance.now()): Promise<Socket> {
  const port = spec.target.port;
  const ms = spec.connectTimeoutMs;
  const limit = new Limit(ms, 601, () => `cannot connect to ${where(to, port)}: no connection within ${ms} ms`, null, now);
  const socket = connect({ host: to.address, port, family: to.family, noDelay: true });
  return new Promise<Socket>((resolve, reject) => {
    const d = earlier(limit, task);
    let connected = false;
    // Plain listeners, not once(): no wrapper made per run. A socket connects once at most.
    const onConnect = () => {
      connected = true;
      clearTimeout(timer);
      resolve(socket);
    };
    // Left on once connected, as a socket must not emit "error" with no listener before the
    // run's Connection has added its own; from then on it does nothing.
    const onError = (err: Error) => {
      if (connected) return;
      clearTimeout(timer);
      socket.off("connect", onConnect).off("error", onError);
      socket.destroy();
      reject(new RunFault(601, `cannot connect to ${where(to, port)}: ${describeError(err)}`));
    };
    const timer = deadlineTimer(() => {
      socket.off("connect", onConnect).off("error", onError);
      socket.destroy();
      reject(d.fault());
    }, d.at);
    socket.on("connect", onConnect);
    socket.on("error", onError);
  });
}
