// Streaming MD5 (RFC 1321) over a state block in the core's memory.
//
// State layout (MD5_STATE_SIZE bytes at S): a, b, c, d (u32 each), byte count (u64),
// then a 64-byte buffer for a partial block. The rounds are unrolled with their constants
// inline: this is the hot loop for large replies.

export const MD5_STATE_SIZE: i32 = 88;
const COUNT: usize = 16;
const BUFFER: usize = 24;

export function md5Init(s: usize): void {
  store<u32>(s, 0x67452301);
  store<u32>(s, 0xefcdab89, 4);
  store<u32>(s, 0x98badcfe, 8);
  store<u32>(s, 0x10325476, 12);
  store<u64>(s + COUNT, 0);
}

export function md5Update(s: usize, p: usize, len: i32): void {
  if (len <= 0) return;
  const count = load<u64>(s + COUNT);
  store<u64>(s + COUNT, count + <u64>len);
  const used = <i32>(count & 63);
  if (used) {
    const fill = 64 - used;
    if (len < fill) {
      memory.copy(s + BUFFER + used, p, len);
      return;
    }
    memory.copy(s + BUFFER + used, p, fill);
    md5Block(s, s + BUFFER);
    p += fill;
    len -= fill;
  }
  while (len >= 64) {
    md5Block(s, p);
    p += 64;
    len -= 64;
  }
  if (len) memory.copy(s + BUFFER, p, len);
}

/** Pads, processes the last block(s) and leaves the 16-byte digest at s. */
export function md5Final(s: usize): void {
  const count = load<u64>(s + COUNT);
  const used = <i32>(count & 63);
  const buf = s + BUFFER;
  store<u8>(buf + used, 0x80);
  if (used >= 56) {
    memory.fill(buf + used + 1, 0, 63 - used);
    md5Block(s, buf);
    memory.fill(buf, 0, 56);
  } else {
    memory.fill(buf + used + 1, 0, 55 - used);
  }
  store<u64>(buf + 56, count << 3);
  md5Block(s, buf);
}

// Round steps. `b` is the value the previous step just produced, so each step adds the parts
// that do not depend on it (a + x + t, and for G the c & ~d half) first: the chain from one
// step to the next is then two or three operations, not five.
// @ts-ignore: decorator
@inline function ff(a: u32, b: u32, c: u32, d: u32, x: u32, s: u32, t: u32): u32 {
  return rotl<u32>((a + x + t) + (d ^ (b & (c ^ d))), s) + b;
}
// @ts-ignore: decorator
@inline function gg(a: u32, b: u32, c: u32, d: u32, x: u32, s: u32, t: u32): u32 {
  return rotl<u32>((a + x + t + (c & ~d)) + (b & d), s) + b;
}
// @ts-ignore: decorator
@inline function hh(a: u32, b: u32, c: u32, d: u32, x: u32, s: u32, t: u32): u32 {
  return rotl<u32>((a + x + t) + (b ^ (c ^ d)), s) + b;
}
// @ts-ignore: decorator
@inline function ii(a: u32, b: u32, c: u32, d: u32, x: u32, s: u32, t: u32): u32 {
  return rotl<u32>((a + x + t) + (c ^ (b | ~d)), s) + b;
}

function md5Block(s: usize, p: usize): void {
  const x0 = load<u32>(p, 0);
  const x1 = load<u32>(p, 4);
  const x2 = load<u32>(p, 8);
  const x3 = load<u32>(p, 12);
  const x4 = load<u32>(p, 16);
  const x5 = load<u32>(p, 20);
  const x6 = load<u32>(p, 24);
  const x7 = load<u32>(p, 28);
  const x8 = load<u32>(p, 32);
  const x9 = load<u32>(p, 36);
  const x10 = load<u32>(p, 40);
  const x11 = load<u32>(p, 44);
  const x12 = load<u32>(p, 48);
  const x13 = load<u32>(p, 52);
  const x14 = load<u32>(p, 56);
  const x15 = load<u32>(p, 60);
  let a = load<u32>(s);
  let b = load<u32>(s, 4);
  let c = load<u32>(s, 8);
  let d = load<u32>(s, 12);

  a = ff(a, b, c, d, x0, 7, 0xd76aa478);
  d = ff(d, a, b, c, x1, 12, 0xe8c7b756);
  c = ff(c, d, a, b, x2, 17, 0x242070db);
  b = ff(b, c, d, a, x3, 22, 0xc1bdceee);
  a = ff(a, b, c, d, x4, 7, 0xf57c0faf);
  d = ff(d, a, b, c, x5, 12, 0x4787c62a);
  c = ff(c, d, a, b, x6, 17, 0xa8304613);
  b = ff(b, c, d, a, x7, 22, 0xfd469501);
  a = ff(a, b, c, d, x8, 7, 0x698098d8);
  d = ff(d, a, b, c, x9, 12, 0x8b44f7af);
  c = ff(c, d, a, b, x10, 17, 0xffff5bb1);
  b = ff(b, c, d, a, x11, 22, 0x895cd7be);
  a = ff(a, b, c, d, x12, 7, 0x6b901122);
  d = ff(d, a, b, c, x13, 12, 0xfd987193);
  c = ff(c, d, a, b, x14, 17, 0xa679438e);
  b = ff(b, c, d, a, x15, 22, 0x49b40821);

  a = gg(a, b, c, d, x1, 5, 0xf61e2562);
  d = gg(d, a, b, c, x6, 9, 0xc040b340);
  c = gg(c, d, a, b, x11, 14, 0x265e5a51);
  b = gg(b, c, d, a, x0, 20, 0xe9b6c7aa);
  a = gg(a, b, c, d, x5, 5, 0xd62f105d);
  d = gg(d, a, b, c, x10, 9, 0x02441453);
  c = gg(c, d, a, b, x15, 14, 0xd8a1e681);
  b = gg(b, c, d, a, x4, 20, 0xe7d3fbc8);
  a = gg(a, b, c, d, x9, 5, 0x21e1cde6);
  d = gg(d, a, b, c, x14, 9, 0xc33707d6);
  c = gg(c, d, a, b, x3, 14, 0xf4d50d87);
  b = gg(b, c, d, a, x8, 20, 0x455a14ed);
  a = gg(a, b, c, d, x13, 5, 0xa9e3e905);
  d = gg(d, a, b, c, x2, 9, 0xfcefa3f8);
  c = gg(c, d, a, b, x7, 14, 0x676f02d9);
  b = gg(b, c, d, a, x12, 20, 0x8d2a4c8a);

  a = hh(a, b, c, d, x5, 4, 0xfffa3942);
  d = hh(d, a, b, c, x8, 11, 0x8771f681);
  c = hh(c, d, a, b, x11, 16, 0x6d9d6122);
  b = hh(b, c, d, a, x14, 23, 0xfde5380c);
  a = hh(a, b, c, d, x1, 4, 0xa4beea44);
  d = hh(d, a, b, c, x4, 11, 0x4bdecfa9);
  c = hh(c, d, a, b, x7, 16, 0xf6bb4b60);
  b = hh(b, c, d, a, x10, 23, 0xbebfbc70);
  a = hh(a, b, c, d, x13, 4, 0x289b7ec6);
  d = hh(d, a, b, c, x0, 11, 0xeaa127fa);
  c = hh(c, d, a, b, x3, 16, 0xd4ef3085);
  b = hh(b, c, d, a, x6, 23, 0x04881d05);
  a = hh(a, b, c, d, x9, 4, 0xd9d4d039);
  d = hh(d, a, b, c, x12, 11, 0xe6db99e5);
  c = hh(c, d, a, b, x15, 16, 0x1fa27cf8);
  b = hh(b, c, d, a, x2, 23, 0xc4ac5665);

  a = ii(a, b, c, d, x0, 6, 0xf4292244);
  d = ii(d, a, b, c, x7, 10, 0x432aff97);
  c = ii(c, d, a, b, x14, 15, 0xab9423a7);
  b = ii(b, c, d, a, x5, 21, 0xfc93a039);
  a = ii(a, b, c, d, x12, 6, 0x655b59c3);
  d = ii(d, a, b, c, x3, 10, 0x8f0ccc92);
  c = ii(c, d, a, b, x10, 15, 0xffeff47d);
  b = ii(b, c, d, a, x1, 21, 0x85845dd1);
  a = ii(a, b, c, d, x8, 6, 0x6fa87e4f);
  d = ii(d, a, b, c, x15, 10, 0xfe2ce6e0);
  c = ii(c, d, a, b, x6, 15, 0xa3014314);
  b = ii(b, c, d, a, x13, 21, 0x4e0811a1);
  a = ii(a, b, c, d, x4, 6, 0xf7537e82);
  d = ii(d, a, b, c, x11, 10, 0xbd3af235);
  c = ii(c, d, a, b, x2, 15, 0x2ad7d2bb);
  b = ii(b, c, d, a, x9, 21, 0xeb86d391);

  store<u32>(s, load<u32>(s) + a);
  store<u32>(s, load<u32>(s, 4) + b, 4);
  store<u32>(s, load<u32>(s, 8) + c, 8);
  store<u32>(s, load<u32>(s, 12) + d, 12);
}
