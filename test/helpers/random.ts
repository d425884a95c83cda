// Deterministic pseudo-random data for tests and benchmarks, so failures replay.

import { rng } from "../../simulator/random.js";

export { rng };

export function randomInt(next: () => number, below: number): number {
  return Math.floor(next() * below);
}

export function randomBytes(next: () => number, length: number, alphabet = 256): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = randomInt(next, alphabet);
  return out;
}

/** Splits `data` into random chunks of 0..maxChunk bytes (empty chunks included on purpose). */
export function randomChunks(next: () => number, data: Uint8Array, maxChunk: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let pos = 0; pos < data.length;) {
    const n = randomInt(next, maxChunk + 1);
    chunks.push(data.subarray(pos, pos + n));
    pos += n;
  }
  return chunks;
}
