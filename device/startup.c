/* Cortex-M3 startup for QEMU mps2-an385: the vector table, a reset handler that copies .data,
 * clears .bss, opens the semihosting handles and runs main(), and fault handlers that report
 * through semihosting and exit, so a crashed device ends the emulator instead of hanging it. */

#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
extern int main(void);
extern void initialise_monitor_handles(void);

static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

static void fault(const char *what) {
  semihost(0x04, what); /* SYS_WRITE0 */
  /* SYS_EXIT with ADP_Stopped_RunTimeErrorUnknown: QEMU exits with status 1. */
  semihost(0x18, (const void *)0x20023);
  for (;;) {}
}

void Reset_Handler(void) {
  uint32_t *src = &__data_load, *dst = &__data_start;
  while (dst < &__data_end) *dst++ = *src++;
  for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
  initialise_monitor_handles();
  exit(main());
}

void NMI_Handler(void) { fault("device: NMI\n"); }
void HardFault_Handler(void) { fault("device: hard fault\n"); }
void MemManage_Handler(void) { fault("device: memory management fault\n"); }
void BusFault_Handler(void) { fault("device: bus fault\n"); }
void UsageFault_Handler(void) { fault("device: usage fault\n"); }
void Default_Handler(void) { fault("device: unexpected interrupt\n"); }

__attribute__((section(".isr_vector"), used))
static void (*const vectors[16])(void) = {
  (void (*)(void))&__stack_top,
  Reset_Handler,
  NMI_Handler,
  HardFault_Handler,
  MemManage_Handler,
  BusFault_Handler,
  UsageFault_Handler,
  0, 0, 0, 0,
  Default_Handler, /* SVCall */
  Default_Handler, /* DebugMon */
  0,
  Default_Handler, /* PendSV */
  Default_Handler, /* SysTick */
};
