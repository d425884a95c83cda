/* catprobe_core.h over the wasm2c output: one static instance, every call guarded so that a
 * trap comes back as CATPROBE_TRAPPED - trap. */

#include <setjmp.h>
#include <stddef.h>

#include "core.h"
#include "catprobe_core.h"

extern jmp_buf *catprobe_trap_target;

static Z_core_instance_t instance;
static int ready;

/* Runs `call` with traps caught: a trap longjmps back here with the trap number + 1. */
#define GUARDED(type, call)                                   \
  do {                                                        \
    jmp_buf here;                                             \
    int trapped = setjmp(here);                               \
    if (trapped) {                                            \
      catprobe_trap_target = NULL;                            \
      return (type)(CATPROBE_TRAPPED - (trapped - 1));        \
    }                                                         \
    catprobe_trap_target = &here;                             \
    type result = (type)(call);                               \
    catprobe_trap_target = NULL;                              \
    return result;                                            \
  } while (0)

static int32_t boot(void) {
  if (ready) Z_core_free(&instance);
  ready = 0;
  wasm_rt_init();
  Z_core_init_module();
  Z_core_instantiate(&instance);
  ready = 1;
  return 0;
}

int32_t catprobe_init(void) { GUARDED(int32_t, boot()); }
uint8_t *catprobe_memory(void) { return instance.w2c_memory.data; }
uint8_t *catprobe_window(void) { return instance.w2c_memory.data + Z_coreZ_windowPtr(&instance); }

#define I (&instance)
int32_t catprobe_abi_version(void) { GUARDED(int32_t, Z_coreZ_abiVersion(I)); }
int32_t catprobe_window_ptr(void) { GUARDED(int32_t, Z_coreZ_windowPtr(I)); }
int32_t catprobe_window_size(void) { GUARDED(int32_t, Z_coreZ_windowSize(I)); }
int32_t catprobe_window_half(void) { GUARDED(int32_t, Z_coreZ_windowHalf(I)); }
int32_t catprobe_context_count(void) { GUARDED(int32_t, Z_coreZ_contextCount(I)); }
int32_t catprobe_context_capacity(int32_t ctx) { GUARDED(int32_t, Z_coreZ_contextCapacity(I, (u32)ctx)); }
int32_t catprobe_contexts_free(void) { GUARDED(int32_t, Z_coreZ_contextsFree(I)); }
int32_t catprobe_context_release(int32_t ctx) { GUARDED(int32_t, Z_coreZ_contextRelease(I, (u32)ctx)); }
int32_t catprobe_max_keyword(void) { GUARDED(int32_t, Z_coreZ_maxKeyword(I)); }
int32_t catprobe_heap_base(void) { GUARDED(int32_t, Z_coreZ_heapBase(I)); }

void catprobe_hex_reset(void) {
  jmp_buf here;
  if (setjmp(here)) { catprobe_trap_target = NULL; return; }
  catprobe_trap_target = &here;
  Z_coreZ_hexReset(I);
  catprobe_trap_target = NULL;
}
int32_t catprobe_hex_decode(int32_t len) { GUARDED(int32_t, Z_coreZ_hexDecode(I, (u32)len)); }
int32_t catprobe_hex_decode_end(void) { GUARDED(int32_t, Z_coreZ_hexDecodeEnd(I)); }
int32_t catprobe_hex_error_kind(void) { GUARDED(int32_t, Z_coreZ_hexErrorKind(I)); }
int32_t catprobe_hex_error_offset(void) { GUARDED(int32_t, Z_coreZ_hexErrorOffset(I)); }
int32_t catprobe_hex_encode(int32_t len) { GUARDED(int32_t, Z_coreZ_hexEncode(I, (u32)len)); }

int32_t catprobe_md5_open(void) { GUARDED(int32_t, Z_coreZ_md5Open(I)); }
int32_t catprobe_md5_push(int32_t ctx, int32_t len) { GUARDED(int32_t, Z_coreZ_md5Push(I, (u32)ctx, (u32)len)); }
int32_t catprobe_md5_digest(int32_t ctx) { GUARDED(int32_t, Z_coreZ_md5Digest(I, (u32)ctx)); }

int32_t catprobe_verifier_open(int32_t mode, int32_t len) { GUARDED(int32_t, Z_coreZ_verifierOpen(I, (u32)mode, (u32)len)); }
int32_t catprobe_verifier_push(int32_t ctx, int32_t len) { GUARDED(int32_t, Z_coreZ_verifierPush(I, (u32)ctx, (u32)len)); }
int32_t catprobe_verifier_end(int32_t ctx) { GUARDED(int32_t, Z_coreZ_verifierEnd(I, (u32)ctx)); }
int32_t catprobe_verifier_decided_at(int32_t ctx) { GUARDED(int32_t, Z_coreZ_verifierDecidedAt(I, (u32)ctx)); }
int32_t catprobe_verifier_digest(int32_t ctx) { GUARDED(int32_t, Z_coreZ_verifierDigest(I, (u32)ctx)); }

int32_t catprobe_self_test(void) { GUARDED(int32_t, Z_coreZ_selfTest(I)); }
