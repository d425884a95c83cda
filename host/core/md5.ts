// Streaming MD5 through the core: new Md5(core).update(a).update(b).digest().

import { Core } from "./core.js";
import { CoreBusyError, CoreCallError } from "./errors.js";

export class Md5 {
  private readonly core: Core;
  private ctx: number;

  constructor(core: Core) {
    this.core = core;
    this.ctx = core.exports.md5Open();
    if (this.ctx < 0) throw new CoreBusyError(core.exports.contextCount());
  }

  /** Hashes more data; any length, any chunking. */
  update(data: Uint8Array | string): this {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    const { window, windowSize, exports: x } = this.core;
    for (let pos = 0; pos < bytes.length; pos += windowSize) {
      const chunk = bytes.subarray(pos, pos + windowSize);
      window.set(chunk);
      const r = x.md5Push(this.ctx, chunk.length);
      if (r !== 0) throw new CoreCallError("md5Push", r);
    }
    return this;
  }

  /** The 16-byte digest. Frees the core context: the object cannot be updated afterwards. */
  digest(): Uint8Array {
    const x = this.core.exports;
    const ptr = x.md5Digest(this.ctx);
    if (ptr < 0) throw new CoreCallError("md5Digest", ptr);
    const digest = this.core.read(ptr, 16);
    x.contextRelease(this.ctx);
    this.ctx = -1;
    return digest;
  }
}

/** One-shot MD5 of `data`. */
export function md5(core: Core, data: Uint8Array | string): Uint8Array {
  return new Md5(core).update(data).digest();
}
