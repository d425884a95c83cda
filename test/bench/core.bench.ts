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
import { formatRate, measureAll, type Measurement, type Ratios } from "./harness.js";

const SIZES: [string, number][] = [["32B", 32], ["1KiB", 1024], ["64KiB", 65536], ["1MiB", 1 << 20]];
const portable = new Core("release");
const simdCore = new Core("simd");

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
    const [release, simd, node, hw, spark] = measureAll(size, {
      [`catprobe release ${label}`]: () => md5(portable, data),
      [`catprobe simd ${label}`]: () => md5(simdCore, data),
      [`node:crypto ${label}`]: () => createHash("md5").update(data).digest(),
      [`hash-wasm ${label}`]: () => {
        hashWasm.init();
        hashWasm.update(data);
        return hashWasm.digest("binary");
      },
      [`spark-md5 ${label}`]: () => SparkMD5.ArrayBuffer.hash(buffer),
    });
    print(release, simd, node, hw, spark);
    for (const [ours, suffix] of [[release, ""], [simd, "-simd"]] as const) {
      ratios.add(`md5-${label}${suffix}/node-crypto`, ours, node);
      ratios.add(`md5-${label}${suffix}/hash-wasm`, ours, hw);
      ratios.add(`md5-${label}${suffix}/spark-md5`, ours, spark);
    }
  }

  console.log("hex decode of 1 MiB of data (2 MiB of hex text, a string as in a task file)");
  const bytes = randomBytes(next, 1 << 20);
  const text = Buffer.from(bytes).toString("hex");
  const hex = measureAll(bytes.length, {
    "catprobe release": () => hexToBytes(portable, text),
    "catprobe simd": () => hexToBytes(simdCore, text),
    "Buffer.from(hex)": () => Buffer.from(text, "hex"),
  });
  print(...hex);
  ratios.add("hex-decode-1MiB/buffer-from", hex[0], hex[2]);
  ratios.add("hex-decode-1MiB-simd/buffer-from", hex[1], hex[2]);

  console.log("partial match over 1 MiB in 1460-byte chunks (keyword at the end)");
  const reply = Buffer.from(randomBytes(next, 1 << 20, 64).map((c) => 32 + c));
  const keyword = Buffer.from("+PONG\r\n");
  keyword.copy(reply, reply.length - keyword.length);
  const search = (core: Core) => () => {
    const v = createVerifier(core, { mode: "partial", keyword });
    for (let pos = 0; pos < reply.length && v.push(reply.subarray(pos, pos + 1460)) === "pending"; pos += 1460);
    v.release();
  };
  const partial = measureAll(reply.length, {
    "catprobe release": search(portable),
    "catprobe simd": search(simdCore),
    "Buffer.indexOf, whole buffer": () => reply.indexOf(keyword),
  });
  print(...partial);
  ratios.add("partial-1MiB/buffer-indexof", partial[0], partial[2]);
  ratios.add("partial-1MiB-simd/buffer-indexof", partial[1], partial[2]);
}
