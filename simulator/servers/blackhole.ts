// A TCP listener whose accept queue is full, so new connection attempts time out (the "connect
// timeout" fault). Node accepts connections on its own, so the listener lives in a child process
// that blocks its event loop right after listen(): libuv never calls accept() and the queue stays full.
import { spawn, type ChildProcess } from "node:child_process";
import { connect, type Socket } from "node:net";

export interface Blackhole { readonly host: string; readonly port: number; close(): Promise<void> }

const STARTUP_TIMEOUT_MS = 5_000;
const PROBE_TIMEOUT_MS = 300;
const MAX_FILLERS = 10;

// Runs in the child: listen with backlog 1, report the port synchronously, then block for good.
// The wait wakes every 500 ms only to exit if the parent died without killing us (e.g. SIGKILL).
const CHILD_CODE = `
const net = require("node:net");
const fs = require("node:fs");
const [host, parentPid] = [process.argv[1], Number(process.argv[2])];
const server = net.createServer();
server.on("error", (err) => { fs.writeSync(2, String(err && err.message) + "\\n"); process.exit(2); });
server.listen({ host, port: 0, backlog: 1 }, () => {
  fs.writeSync(1, server.address().port + "\\n");
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    Atomics.wait(cell, 0, 0, 500);
    try { process.kill(parentPid, 0); } catch { process.exit(0); }
  }
});
`;

/** Starts the child listener and resolves with its port once it is listening. */
function spawnListener(host: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ["-e", CHILD_CODE, host, String(process.pid)], {
    detached: false,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    const fail = (message: string): void => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`blackhole: ${message}${stderr ? `: ${stderr.trim()}` : ""}`));
    };
    const timer = setTimeout(() => fail("listener did not report a port in time"), STARTUP_TIMEOUT_MS);
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", (err) => fail(`cannot start listener (${err.message})`));
    child.on("exit", (code, signal) => fail(`listener exited early (code ${code}, signal ${signal})`));
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /^(\d+)\n/.exec(stdout);
      if (!match) return;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      resolve({ child, port: Number(match[1]) });
    });
  });
}

/** Tries one connection: resolves with the socket if it connects within the timeout, else null. */
function tryConnect(host: string, port: number, timeoutMs: number): Promise<Socket | null> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(null);
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      socket.on("error", () => {}); // a reset on a filler socket is expected and harmless
      resolve(socket);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      const where = `${host}:${port}`;
      reject(new Error(`blackhole: connect to ${where} failed while filling the queue (${err.message})`));
    });
  });
}

/**
 * Opens connections until one does not complete within PROBE_TIMEOUT_MS: the ones that did are the
 * fillers occupying the accept queue, the one that did not proves later SYNs are dropped.
 */
async function fillAcceptQueue(host: string, port: number): Promise<Socket[]> {
  const fillers: Socket[] = [];
  try {
    while (fillers.length < MAX_FILLERS) {
      const socket = await tryConnect(host, port, PROBE_TIMEOUT_MS);
      if (!socket) return fillers;
      fillers.push(socket);
    }
  } catch (err) {
    fillers.forEach((s) => s.destroy());
    throw err;
  }
  fillers.forEach((s) => s.destroy());
  throw new Error(
    `blackhole: accept queue on ${host}:${port} still accepts connections after ${MAX_FILLERS} fillers`,
  );
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

export function startBlackhole(options: { host?: "127.0.0.1" | "::1" } = {}): Promise<Blackhole> {
  return start(options.host ?? "127.0.0.1");
}

async function start(host: string): Promise<Blackhole> {
  const { child, port } = await spawnListener(host);
  // If the test process exits without close(), do not leave the child behind.
  const killOnExit = (): void => void child.kill("SIGKILL");
  process.once("exit", killOnExit);
  let fillers: Socket[];
  try {
    fillers = await fillAcceptQueue(host, port);
  } catch (err) {
    process.removeListener("exit", killOnExit);
    child.kill("SIGKILL");
    await waitForExit(child);
    throw err;
  }
  // Neither the pipes nor the child should keep the test process alive on their own.
  child.stdout!.destroy();
  child.stderr!.destroy();
  child.unref();
  fillers.forEach((s) => s.unref());

  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    close(): Promise<void> {
      closing ??= (async () => {
        fillers.forEach((s) => s.destroy());
        process.removeListener("exit", killOnExit);
        child.ref(); // keep the process alive until the exit is observed
        child.kill("SIGKILL");
        await waitForExit(child);
      })();
      return closing;
    },
  };
}
