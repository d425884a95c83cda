// Deterministic pseudo-random data for tests and benchmarks (mulberry32), so failures replay.

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
