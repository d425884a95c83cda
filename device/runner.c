/* The differential test's device program (test/device/cortex-m3.test.ts): reads the case file
 * through semihosting, runs every case through catprobe_core.h exactly as the Node host
 * wrappers do, and prints one answer line per case. Last lines: the deepest stack any core
 * call used ("stack N") and "done". Record: u8 type, u32 length (LE), payload. */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "catprobe_core.h"

#define MAX_RECORD (256 * 1024)
static uint8_t record[MAX_RECORD];
static uint8_t out[MAX_RECORD];
static char line[2 * MAX_RECORD + 256];
static char *lp;

static void put(const char *s) { while (*s) *lp++ = *s++; }
static void put_int(int32_t v) {
  char tmp[12];
  int n = 0;
  uint32_t u = v < 0 ? (uint32_t)-(int64_t)v : (uint32_t)v;
  if (v < 0) *lp++ = '-';
  do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
  while (n) *lp++ = tmp[--n];
}
static void put_hex(const uint8_t *p, uint32_t n) {
  static const char digits[] = "0123456789abcdef";
  for (uint32_t i = 0; i < n; i++) { *lp++ = digits[p[i] >> 4]; *lp++ = digits[p[i] & 15]; }
}

static const uint8_t *rp;
static uint32_t u8_(void) { return *rp++; }
static uint32_t u16_(void) { uint32_t v = rp[0] | rp[1] << 8; rp += 2; return v; }
static uint32_t u32_(void) { uint32_t v = rp[0] | rp[1] << 8 | rp[2] << 16 | (uint32_t)rp[3] << 24; rp += 4; return v; }

/* Stack depth: the stack below the case runner's frame is painted before each case and
 * scanned after it; the answer line is built without any library call, so what is touched
 * is the runner's own few frames plus the core. */
#define PAINT 0x5a5aa5a5u
extern uint32_t __stack_limit;
static uint32_t deepest;
static uint32_t *case_sp;

__attribute__((noinline)) static void paint(void) {
  uint32_t *sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  case_sp = sp;
  for (uint32_t *p = &__stack_limit; p < sp - 4; p++) *p = PAINT;
}
__attribute__((noinline)) static void scan(void) {
  uint32_t *p = &__stack_limit;
  while (p < case_sp && *p == PAINT) p++;
  uint32_t used = (uint32_t)((uint8_t *)case_sp - (uint8_t *)p);
  if (used > deepest) deepest = used;
}

static const char *const VERDICTS[] = {"pending", "pass", "fail"};

/* Lengths of the chunks that follow, then the data. */
static uint32_t nchunks;
static const uint8_t *chunk_lens;
static void chunks(void) { nchunks = u16_(); chunk_lens = rp; rp += 4 * nchunks; }
static uint32_t chunk_len(uint32_t i) { const uint8_t *p = chunk_lens + 4 * i; return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void case_facts(void) {
  put("facts "); put_int(catprobe_abi_version());
  put(" "); put_int(catprobe_window_ptr()); put(" "); put_int(catprobe_window_size());
  put(" "); put_int(catprobe_window_half()); put(" "); put_int(catprobe_context_count());
  put(" "); put_int(catprobe_max_keyword()); put(" "); put_int(catprobe_heap_base());
  put(" "); put_int(catprobe_contexts_free());
  for (int32_t c = -1; c <= CATPROBE_CONTEXTS; c++) { put(" "); put_int(catprobe_context_capacity(c)); }
}

static void case_md5(void) {
  uint8_t *win = catprobe_window();
  chunks();
  int32_t ctx = catprobe_md5_open();
  if (ctx < 0) { put("md5 open "); put_int(ctx); return; }
  for (uint32_t i = 0; i < nchunks; i++) {
    uint32_t n = chunk_len(i);
    /* Md5.update: window-size slices */
    for (uint32_t pos = 0; pos < n; pos += CATPROBE_WINDOW_SIZE) {
      uint32_t len = n - pos < CATPROBE_WINDOW_SIZE ? n - pos : CATPROBE_WINDOW_SIZE;
      memcpy(win, rp + pos, len);
      int32_t r = catprobe_md5_push(ctx, (int32_t)len);
      if (r != 0) { put("md5 push "); put_int(r); return; }
    }
    rp += n;
  }
  int32_t ptr = catprobe_md5_digest(ctx);
  if (ptr < 0) { put("md5 digest "); put_int(ptr); return; }
  put("md5 "); put_hex(catprobe_memory() + ptr, 16);
  catprobe_context_release(ctx);
  put(" free "); put_int(catprobe_contexts_free());
}

static void case_hex(void) {
  uint8_t *win = catprobe_window();
  chunks();
  uint32_t written = 0;
  int failed = 0;
  catprobe_hex_reset();
  for (uint32_t i = 0; i < nchunks && !failed; i++) {
    uint32_t n = chunk_len(i);
    memcpy(win, rp, n);
    rp += n;
    int32_t got = catprobe_hex_decode((int32_t)n);
    if (got < 0) { failed = 1; break; }
    memcpy(out + written, win, (uint32_t)got);
    written += (uint32_t)got;
  }
  if (catprobe_hex_decode_end() != 0) {
    put("hex err "); put_int(catprobe_hex_error_kind()); put(" "); put_int(catprobe_hex_error_offset());
  } else {
    put("hex ok "); put_hex(out, written);
  }
}

static void case_verify(void) {
  uint8_t *win = catprobe_window();
  int32_t mode = (int32_t)u8_();
  uint32_t spec_len = u32_();
  const uint8_t *spec = rp;
  rp += spec_len;
  chunks();
  int expected = mode == CATPROBE_MODE_FULL || mode == CATPROBE_MODE_PREFIX;
  if (mode == CATPROBE_MODE_PARTIAL || mode == CATPROBE_MODE_MD5) memcpy(win, spec, spec_len);
  int32_t ctx = catprobe_verifier_open(mode, (int32_t)spec_len);
  if (ctx < 0) { put("verify open "); put_int(ctx); return; }
  int32_t verdict = 0, decided = 0, digest = -1, start = 0;
  uint32_t slice = expected ? CATPROBE_WINDOW_HALF : CATPROBE_WINDOW_SIZE;
  for (uint32_t i = 0; i <= nchunks; i++) {
    int32_t r;
    if (i == nchunks) {
      if (verdict != 0) break;
      r = catprobe_verifier_end(ctx);
    } else {
      uint32_t n = chunk_len(i);
      const uint8_t *chunk = rp;
      rp += n;
      r = 0;
      for (uint32_t pos = 0; pos < n && verdict == 0; pos += slice) {
        uint32_t len = n - pos < slice ? n - pos : slice;
        memcpy(win, chunk + pos, len);
        if (expected) {
          uint32_t from = (uint32_t)start + pos, to = from + len;
          if (to > spec_len) to = spec_len;
          if (from < to) memcpy(win + CATPROBE_WINDOW_HALF, spec + from, to - from);
        }
        r = catprobe_verifier_push(ctx, (int32_t)len);
        if (r < 0) break;
        verdict = r;
      }
      start += (int32_t)n;
      if (verdict != 0 || r < 0) { if (r < 0) { put("verify push "); put_int(r); return; } continue; }
      continue;
    }
    if (r < 0) { put("verify end "); put_int(r); return; }
    verdict = r;
  }
  if (verdict != 0) {
    decided = catprobe_verifier_decided_at(ctx);
    if (mode == CATPROBE_MODE_MD5) digest = catprobe_verifier_digest(ctx);
    catprobe_context_release(ctx);
  }
  put("verify "); put(VERDICTS[verdict]); put(" "); put_int(decided); put(" ");
  if (digest >= 0) put_hex(catprobe_memory() + digest, 16); else put("-");
  put(" free "); put_int(catprobe_contexts_free());
}

/* Ops: 1 open(mode, len) [partial: keyword of len bytes 'k'; md5: a digest], 2 release(ctx). */
static void case_pool(void) {
  uint32_t n = u16_();
  put("pool");
  for (uint32_t i = 0; i < n; i++) {
    uint32_t op = u8_(), a = u8_(), b = u16_();
    int32_t r;
    if (op == 1) {
      memset(catprobe_window(), 'k', b);
      r = catprobe_verifier_open((int32_t)a, (int32_t)b);
    } else {
      r = catprobe_context_release((int32_t)b);
    }
    put(" "); put_int(r); put("/"); put_int(catprobe_contexts_free());
  }
}

static void case_trap(void) {
  /* a length past the window is refused, never a trap */
  put("window "); put_int(catprobe_hex_decode(CATPROBE_WINDOW_SIZE + 1));
  put(" "); put_int(catprobe_md5_push(0, 1 << 20));
}

__attribute__((noinline)) static void run_case(uint32_t type) {
  switch (type) {
    case 1: case_facts(); break;
    case 2: put("selftest "); put_int(catprobe_self_test()); break;
    case 3: case_md5(); break;
    case 4: case_hex(); break;
    case 5: case_verify(); break;
    case 6: case_pool(); break;
    case 7: case_trap(); break;
    default: put("unknown case "); put_int((int32_t)type);
  }
}

int main(void) {
  FILE *f = fopen("cases.bin", "rb");
  if (!f) { puts("error cannot open cases.bin"); return 2; }
  paint();
  int32_t rc = catprobe_init();
  scan();
  printf("init %ld stack %lu\n", (long)rc, (unsigned long)deepest);
  if (rc != 0) return 1;
  for (;;) {
    uint8_t head[5];
    if (fread(head, 1, 5, f) != 5 || head[0] == 0) break;
    uint32_t len = head[1] | head[2] << 8 | head[3] << 16 | (uint32_t)head[4] << 24;
    if (len > MAX_RECORD || fread(record, 1, len, f) != len) { puts("error bad record"); return 2; }
    rp = record;
    lp = line;
    paint();
    run_case(head[0]);
    scan();
    *lp++ = '\n';
    *lp = 0;
    fputs(line, stdout);
  }
  fclose(f);
  printf("stack %lu\ndone\n", (unsigned long)deepest);
  return 0;
}
