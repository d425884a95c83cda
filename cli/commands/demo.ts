// `catprobe demo`: the core's self-test, then one buffer-mode exchange with a loopback server
// whose reply arrives split across segments, verified as it streams in. Everything a probe
// decides here goes through the core.

import { createServer, connect, type AddressInfo, type Server } from "node:net";
import { once } from "node:events";
import { defaultCore, type Core } from "../../host/core/core.js";
import { bytesToHex, hexToBytes } from "../../host/core/hex.js";
import { createVerifier } from "../../host/core/verifier.js";
import { selfTest } from "./selftest.js";

const SEND_HEX = "50 49 4e 47 0d 0a"; // PING\r\n, as a buffer-mode task would hold it
const KEYWORD = "+PONG";

/** Answers each line after a short pause, one byte at a time, so the keyword spans segments. */
async function dribblingServer(): Promise<Server> {
  const server = createServer((socket) => {
    socket.once("data", async () => {
      for (const byte of Buffer.from("+PONG\r\n")) {
        socket.write(Buffer.of(byte));
        await new Promise((r) => setTimeout(r, 5));
      }
      socket.end();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}

async function exchange(core: Core, port: number): Promise<void> {
  const request = hexToBytes(core, SEND_HEX);
  const verifier = createVerifier(core, { mode: "partial", keyword: Buffer.from(KEYWORD) });
  const socket = connect(port, "127.0.0.1");
  const started = performance.now();
  await once(socket, "connect");
  socket.write(request);
  let chunks = 0;
  try {
    for await (const chunk of socket) {
      chunks++;
      if (verifier.push(chunk as Buffer) !== "pending") break;
    }
    if (verifier.verdict === "pending") verifier.end();
  } finally {
    verifier.release();
    socket.destroy();
  }
  const ms = (performance.now() - started).toFixed(1);
  console.log(`sent ${request.length} bytes (hex ${bytesToHex(core, request)}) to 127.0.0.1:${port}`);
  console.log(`keyword "${KEYWORD}": ${verifier.verdict} after ${verifier.decidedAt} bytes in ${chunks} segments, ${ms} ms`);
  if (verifier.verdict !== "pass") throw new Error("the demo exchange did not verify");
}

export async function demo(): Promise<number> {
  console.log("catprobe core self-test");
  if (selfTest() !== 0) return 1;
  const core = defaultCore();
  console.log(`\nhost core: ${core.build} build, ${core.exports.contextCount()} verifier contexts, ` +
    `keywords up to ${core.maxKeyword} bytes, ${core.windowSize}-byte I/O window\n`);
  const server = await dribblingServer();
  try {
    await exchange(core, (server.address() as AddressInfo).port);
  } finally {
    server.close();
  }
  console.log("\nnext: npm test, npm run bench; see README.md");
  return 0;
}
