/* qemu_insn_count.c: a minimal QEMU TCG plugin that counts the guest
 * instructions executed by every thread of a qemu-user process and writes the
 * total to a file at exit. tests/bench/cpu_per_reading.py builds it with the
 * host's gcc and runs eport-agent under `qemu-aarch64 -plugin` with it.
 *
 * Debian's qemu-user 7.2 loads plugins but ships no qemu-plugin.h, so the few
 * declarations needed are written here from the documented plugin API
 * (https://www.qemu.org/docs/master/devel/tcg-plugins.html, API version 1).
 *
 * Counting: at translation every block gets an execution callback carrying
 * its instruction count; the callback adds it to a counter of the vCPU (in
 * qemu-user, one vCPU per guest thread, each run by one host thread, so the
 * per-vCPU counters need no atomics; vCPU indexes past the table share an
 * atomic overflow counter). A block left early (a fault, a signal) counts
 * whole, as in QEMU's own example plugins. The inline add of the API is not
 * used: it adds to one shared location without atomics and loses counts when
 * guest threads run at once.
 *
 * Usage: qemu-aarch64 -L / -plugin ./libinsn.so,outfile=/tmp/insns.txt PROG ...
 * The file gets one line: "insns N threads T".
 * Build: gcc -shared -fPIC -O2 -fvisibility=hidden -o libinsn.so qemu_insn_count.c
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

/* --- the plugin API (QEMU_PLUGIN_VERSION 1, as in QEMU 7.2) --- */
typedef uint64_t qemu_plugin_id_t;
typedef struct {
  const char *target_name;
  struct {
    int min, cur;
  } version;
  _Bool system_emulation;
  union {
    struct {
      int smp_vcpus, max_vcpus;
    } system;
  };
} qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

EXPORT int qemu_plugin_version = 1;

/* --- the counter --- */
#define MAX_VCPUS 256
struct counter {
  uint64_t insns;
  char pad[56]; /* one cache line each: threads on different host cores do not share one */
};
static struct counter counters[MAX_VCPUS];
static uint64_t overflow;   /* vCPUs with an index >= MAX_VCPUS, atomically */
static unsigned max_vcpu;   /* highest index seen + 1, atomically */
static char outfile[4096];

static void on_exec(unsigned int vcpu, void *userdata) {
  uint64_t n = (uint64_t)(uintptr_t)userdata;
  if (vcpu < MAX_VCPUS) {
    counters[vcpu].insns += n;
  } else {
    __atomic_fetch_add(&overflow, n, __ATOMIC_RELAXED);
  }
  if (vcpu >= __atomic_load_n(&max_vcpu, __ATOMIC_RELAXED)) {
    __atomic_store_n(&max_vcpu, vcpu + 1, __ATOMIC_RELAXED);
  }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
}

static void write_total(qemu_plugin_id_t id, void *userdata) {
  (void)id;
  (void)userdata;
  uint64_t total = __atomic_load_n(&overflow, __ATOMIC_RELAXED);
  for (unsigned i = 0; i < MAX_VCPUS; i++) total += counters[i].insns;
  char line[128];
  snprintf(line, sizeof line, "insns %" PRIu64 " threads %u\n", total, max_vcpu);
  if (outfile[0]) {
    FILE *f = fopen(outfile, "w");
    if (f) {
      fputs(line, f);
      fclose(f);
      return;
    }
  }
  qemu_plugin_outs(line);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
  if (info->system_emulation) {
    qemu_plugin_outs("qemu_insn_count: for qemu-user only\n");
    return 1;
  }
  for (int i = 0; i < argc; i++) {
    if (strncmp(argv[i], "outfile=", 8) == 0) {
      snprintf(outfile, sizeof outfile, "%s", argv[i] + 8);
    } else {
      qemu_plugin_outs("qemu_insn_count: unknown argument (only outfile=PATH)\n");
      return 1;
    }
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, write_total, NULL);
  return 0;
}
