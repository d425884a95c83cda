// The WebAssembly core against the alternatives a Node host could use instead.

import { createHash } from "node:crypto";
import { createMD5 } from "hash-wasm";
import SparkMD5 from "spark-md5";
import { Core } from "../../host/core/core.js";
import { hexToBytes } from "../../host/core/hex.js";
import { md5 } from "../../host/core/md5.js";
import { createVerifier } from "../../host/core/verifier.js";
import { rng, randomBytes } from "../helpers/random.js";
import { formatRate, measure, type Ratios } from "./harness.js";

const SIZES: [string, number][] = [["32B", 32], ["1KiB", 1024], ["64KiB", 65536], ["1MiB", 1 << 20]];

export async function benchCore(ratios: Ratios): Promise<void> {
  const core = new Core();
  const hashWasm = await createMD5();
  const next = rng(42);

  console.log("MD5");
  for (const [label, size] of SIZES) {
    const data = randomBytes(next, size);
    const buffer = data.buffer as ArrayBuffer;
    const ours = measure(`catprobe core ${label}`, size, () => md5(core, data));
    const node = measure(`node:crypto ${label}`, size, () => createHash("md5").update(data).digest());
    const hw = measure(`hash-wasm ${label}`, size, () => {
      hashWasm.init();
      hashWasm.update(data);
      return hashWasm.digest("binary");
    });
    const spark = measure(`spark-md5 ${label}`, size, () => SparkMD5.ArrayBuffer.hash(buffer));
    for (const m of [ours, node, hw, spark]) console.log("  " + formatRate(m));
    ratios.add(`md5-${label}/node-crypto`, ours, node);
    ratios.add(`md5-${label}/hash-wasm`, ours, hw);
    ratios.add(`md5-${label}/spark-md5`, ours, spark);
  }

  console.log("hex decode of 1 MiB of data (2 MiB of hex text)");
  const bytes = randomBytes(next, 1 << 20);
  const text = Buffer.from(bytes).toString("hex");
  const oursHex = measure("catprobe core", bytes.length, () => hexToBytes(core, text));
  const bufHex = measure("Buffer.from(hex)", bytes.length, () => Buffer.from(text, "hex"));
  for (const m of [oursHex, bufHex]) console.log("  " + formatRate(m));
  ratios.add("hex-decode-1MiB/buffer-from", oursHex, bufHex);

  console.log("partial match over 1 MiB (keyword at the end)");
  const reply = Buffer.from(randomBytes(next, 1 << 20, 64).map((c) => 32 + c));
  const keyword = Buffer.from("+PONG\r\n");
  keyword.copy(reply, reply.length - keyword.length);
  const oursMatch = measure("catprobe core, 1460-byte chunks", reply.length, () => {
    const v = createVerifier(core, { mode: "partial", keyword });
    for (let pos = 0; pos < reply.length && v.push(reply.subarray(pos, pos + 1460)) === "pending"; pos += 1460);
    v.release();
  });
  const indexOf = measure("Buffer.indexOf, whole buffer", reply.length, () => reply.indexOf(keyword));
  for (const m of [oursMatch, indexOf]) console.log("  " + formatRate(m));
  ratios.add("partial-1MiB/buffer-indexof", oursMatch, indexOf);
}
