// `catprobe md5 <file|->`: the digest to put in an md5 verify step, computed by the core.

import { createReadStream } from "node:fs";
import { defaultCore } from "../../host/core/core.js";
import { bytesToHex } from "../../host/core/hex.js";
import { Md5 } from "../../host/core/md5.js";
import { UsageError } from "../usage-error.js";

export async function md5File(args: string[]): Promise<number> {
  if (args.length !== 1) throw new UsageError("md5 takes one file name, or - for standard input");
  const [path] = args;
  const core = defaultCore();
  const hash = new Md5(core);
  const input = path === "-" ? process.stdin : createReadStream(path);
  try {
    for await (const chunk of input) hash.update(chunk as Buffer);
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
  console.log(`${bytesToHex(core, hash.digest())}  ${path}`);
  return 0;
}
