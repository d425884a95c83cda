// The WebAssembly core against the alternatives a Node host could use instead. Both optimised
// builds are measured: the portable one devices run (ratios without a suffix) and the SIMD one
// Node hosts load by default (ratios marked -simd).

import { createHash } from "node:crypto";
import { createMD5 } from "hash-wasm";
import SparkMD5 from "spark-md5";
import { Core } from "../../host/core/core.js";
import { hexToBytes } from "../../host/core/hex.js";
import { md5 } from "../../host/core/md5.js";
import { createVerifier } from "../../host/core/verifier.js";
import { rng, randomBytes } from "../helpers/random.js";
import { formatRate, measure, type Measurement, type Ratios } from "./harness.js";

const SIZES: [string, number][] = [["32B", 32], ["1KiB", 1024], ["64KiB", 65536], ["1MiB", 1 << 20]];
const CORES = [{ core: new Core("release"), suffix: "" }, { core: new Core("simd"), suffix: "-simd" }];

function print(...measurements: Measurement[]): void {
  for (const m of measurements) console.log("  " + formatRate(m));
}

export async function benchCore(ratios: Ratios): Promise<void> {
  const hashWasm = await createMD5();
  const next = rng(42);

  console.log("MD5");
  for (const [label, size] of SIZES) {
    const data = randomBytes(next, size);
    const buffer = data.buffer as ArrayBuffer;
    const node = measure(`node:crypto ${label}`, size, () => createHash("md5").update(data).digest());
    const hw = measure(`hash-wasm ${label}`, size, () => {
      hashWasm.init();
      hashWasm.update(data);
      return hashWasm.digest("binary");
    });
    const spark = measure(`spark-md5 ${label}`, size, () => SparkMD5.ArrayBuffer.hash(buffer));
    print(node, hw, spark);
    for (const { core, suffix } of CORES) {
      const ours = measure(`catprobe ${core.build} ${label}`, size, () => md5(core, data));
      print(ours);
      ratios.add(`md5-${label}${suffix}/node-crypto`, ours, node);
      ratios.add(`md5-${label}${suffix}/hash-wasm`, ours, hw);
      ratios.add(`md5-${label}${suffix}/spark-md5`, ours, spark);
    }
  }

  console.log("hex decode of 1 MiB of data (2 MiB of hex text, a string as in a task file)");
  const bytes = randomBytes(next, 1 << 20);
  const text = Buffer.from(bytes).toString("hex");
  const bufHex = measure("Buffer.from(hex)", bytes.length, () => Buffer.from(text, "hex"));
  print(bufHex);
  for (const { core, suffix } of CORES) {
    const ours = measure(`catprobe ${core.build}`, bytes.length, () => hexToBytes(core, text));
    print(ours);
    ratios.add(`hex-decode-1MiB${suffix}/buffer-from`, ours, bufHex);
  }

  console.log("partial match over 1 MiB (keyword at the end)");
  const reply = Buffer.from(randomBytes(next, 1 << 20, 64).map((c) => 32 + c));
  const keyword = Buffer.from("+PONG\r\n");
  keyword.copy(reply, reply.length - keyword.length);
  const indexOf = measure("Buffer.indexOf, whole buffer", reply.length, () => reply.indexOf(keyword));
  print(indexOf);
  for (const { core, suffix } of CORES) {
    const ours = measure(`catprobe ${core.build}, 1460-byte chunks`, reply.length, () => {
      const v = createVerifier(core, { mode: "partial", keyword });
      for (let pos = 0; pos < reply.length && v.push(reply.subarray(pos, pos + 1460)) === "pending"; pos += 1460);
      v.release();
    });
    print(ours);
    ratios.add(`partial-1MiB${suffix}/buffer-indexof`, ours, indexOf);
  }
}
