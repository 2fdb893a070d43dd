// kernels/emu/emu.cpp: the scheduler behind emu.h. A launch spreads the grid's blocks over
// OpenMP threads; each OS thread runs its blocks one at a time, a block's threads as
// fibers switched cooperatively (a hand-written x86-64 switch: 7 saved registers, no
// system call; ucontext elsewhere). Per OS thread a Worker keeps the fibers, their
// stacks (mmap'd with a guard page, reused across blocks and launches) and the dynamic
// shared memory buffer.
//
// Scheduling of one block: round-robin over the fibers that are ready; a fiber runs until
// it exits or waits (block barrier, warp barrier). The fiber whose arrival completes a
// barrier releases the others and goes on. Odd-numbered blocks go through their threads
// in reverse order, so a missing barrier shows up whichever thread the kernel expects to
// run first. A kernel without barriers runs each fiber once to its end, all on one
// reused stack.
#include "emu.h"

#include <stdarg.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "../cuda_runtime_api.h"

#if defined(__SANITIZE_ADDRESS__)
#define STORY_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STORY_EMU_ASAN 1
#endif
#endif
#ifdef STORY_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

// The assembly switch needs x86-64 and no shadow stack (CET); -DSTORY_EMU_UCONTEXT forces
// the portable path.
#if defined(__x86_64__) && !defined(STORY_EMU_UCONTEXT) && !(defined(__CET__) && (__CET__ & 2))
#define STORY_EMU_ASM 1
#else
#include <ucontext.h>
#endif

#ifdef STORY_EMU_ASM
// story_emu_switch(save, to): push the callee-saved registers on the current stack, store
// the stack pointer in *save, load `to` and pop the same frame from there. A new fiber's
// frame "returns" into story_emu_fiber_entry, which calls r13(r12) on a 16-byte aligned
// stack. The MXCSR / x87 control words are not switched (saving them costs more than the
// rest of the switch): all fibers of an OS thread share its floating-point environment,
// and kernels do not change rounding modes.
extern "C" void story_emu_switch(void **save, void *to);
extern "C" void story_emu_fiber_entry(void);
asm(R"(
    .text
    .p2align 4
    .globl story_emu_switch
    .hidden story_emu_switch
    .type story_emu_switch, @function
story_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size story_emu_switch, .-story_emu_switch

    .p2align 4
    .globl story_emu_fiber_entry
    .hidden story_emu_fiber_entry
    .type story_emu_fiber_entry, @function
story_emu_fiber_entry:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size story_emu_fiber_entry, .-story_emu_fiber_entry
)");
#endif

namespace story_emu {

__thread ThreadState *t_thread = nullptr;
__thread BlockState *t_block = nullptr;

namespace {

enum : uint8_t { F_READY, F_WAIT_BLOCK, F_WAIT_WARP, F_DONE };

struct Context {
#ifdef STORY_EMU_ASM
    void *sp;
#else
    ucontext_t uc;
#endif
};

struct Fiber : ThreadState {
    Context ctx;
    char *stack;  // NULL until the fiber starts in the current block
    uint8_t state;
    // the warp operation it waits in
    uint8_t op;
    int src;
    unsigned wait_mask;
    uint64_t in, out;
    const char *what;
    // result of its last block barrier
    int bar_count, bar_arrivals;
};

struct Warp {
    unsigned arrived;  // lanes waiting in a warp operation
    unsigned exited;
    unsigned absent;  // lanes past the end of a partial last warp
    unsigned common;  // the mask of the first waiting lane ...
    bool mixed;       // ... and whether another waiting lane uses a different one
};

struct Worker {
    std::vector<Fiber> fibers;
    std::vector<char *> free_stacks, all_stacks;
    Warp warps[32];
    BlockState block;
    Context main;
    Fiber *cur = nullptr;
    const LaunchCfg *cfg = nullptr;
    unsigned char *smem = nullptr;  // mapping: smem_cap bytes, then a PROT_NONE page
    size_t smem_cap = 0;
    unsigned char *dyn = nullptr;  // this launch's dynamic shared memory inside it
    int n = 0, exited = 0, bar_arrived = 0, bar_count = 0;
#ifdef STORY_EMU_ASAN
    const void *main_bottom = nullptr;
    size_t main_size = 0;
#endif
    ~Worker();
};

__thread Worker *t_worker = nullptr;
thread_local std::unique_ptr<Worker> t_worker_owner;

const size_t kSmemDefault = 48 * 1024;    // without cudaFuncSetAttribute
const size_t kSmemOptInMax = 227 * 1024;  // sm_90 opt-in maximum per block
const size_t kPage = 4096;

size_t stack_bytes() {
    static const size_t bytes = [] {
        const char *e = getenv("STORY_EMU_STACK_KIB");
        long kib = e ? atol(e) : 256;
        if (kib < 64) kib = 64;
        return (size_t)kib * 1024;
    }();
    return bytes;
}

[[noreturn]] void vfail(const char *fmt, va_list ap) {
    fprintf(stderr, "storyrun: CUDA emulation: ");
    Worker *w = t_worker;
    ThreadState *t = t_thread;
    if (w && t && w->cfg) {
        fprintf(stderr, "kernel %s, block (%u,%u,%u), thread (%u,%u,%u): ", w->cfg->name,
                w->block.bid.x, w->block.bid.y, w->block.bid.z, t->tid.x, t->tid.y, t->tid.z);
    }
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    abort();
}

Worker::~Worker() {
    for (char *s : all_stacks) munmap(s - kPage, stack_bytes() + kPage);
    if (smem) munmap(smem, smem_cap + kPage);
}

Worker *get_worker() {
    if (!t_worker) {
        t_worker_owner.reset(new Worker());
        t_worker = t_worker_owner.get();
    }
    return t_worker;
}

char *take_stack(Worker *w) {
    if (!w->free_stacks.empty()) {
        char *s = w->free_stacks.back();
        w->free_stacks.pop_back();
        return s;
    }
    const size_t bytes = stack_bytes();
    void *p = mmap(nullptr, bytes + kPage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) fail("cannot map a %zu KiB fiber stack", bytes / 1024);
    mprotect(p, kPage, PROT_NONE);  // guard page below the stack: overflow faults
    char *s = (char *)p + kPage;
    w->all_stacks.push_back(s);
    return s;
}

void fiber_main(Fiber *f);

#ifndef STORY_EMU_ASM
void fiber_main_uc() { fiber_main(static_cast<Fiber *>(t_thread)); }
#endif

void prepare_fiber(Worker *w, Fiber *f) {
    f->stack = take_stack(w);
    const size_t bytes = stack_bytes();
#ifdef STORY_EMU_ASM
    // Frame popped by story_emu_switch: r15, r14, r13, r12, rbx, rbp, return address. After
    // the return rsp = top - 16: 16-byte aligned for the call in story_emu_fiber_entry.
    // Stack tops are staggered over a page: at equal page offsets the hot top frames of
    // hundreds of fibers would compete for the same cache sets.
    const uintptr_t color = ((uintptr_t)f->stack / kPage * 37 % 64) * 64;
    const uintptr_t top = ((uintptr_t)(f->stack + bytes) - color) & ~(uintptr_t)15;
    uint64_t *s = (uint64_t *)(top - 72);
    s[0] = s[1] = 0;
    s[2] = (uint64_t)(uintptr_t)&fiber_main;
    s[3] = (uint64_t)(uintptr_t)f;
    s[4] = s[5] = 0;
    s[6] = (uint64_t)(uintptr_t)&story_emu_fiber_entry;
    s[7] = s[8] = 0;  // a null return address ends backtraces
    f->ctx.sp = s;
#else
    if (getcontext(&f->ctx.uc) != 0) fail("getcontext failed");
    f->ctx.uc.uc_stack.ss_sp = f->stack;
    f->ctx.uc.uc_stack.ss_size = bytes;
    f->ctx.uc.uc_link = nullptr;
    makecontext(&f->ctx.uc, fiber_main_uc, 0);
#endif
}

// Switches stacks; `exiting`: the fiber we leave never runs again.
inline void switch_to(Context *from, Context *to, const void *to_stack, size_t to_size,
                      bool exiting) {
#ifdef STORY_EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(exiting ? nullptr : &fake, to_stack, to_size);
#else
    (void)to_stack, (void)to_size, (void)exiting;
#endif
#ifdef STORY_EMU_ASM
    story_emu_switch(&from->sp, to->sp);
#else
    swapcontext(&from->uc, &to->uc);
#endif
#ifdef STORY_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

inline void to_main(Worker *w, Fiber *f, bool exiting) {
#ifdef STORY_EMU_ASAN
    switch_to(&f->ctx, &w->main, w->main_bottom, w->main_size, exiting);
#else
    switch_to(&f->ctx, &w->main, nullptr, 0, exiting);
#endif
}

void release_block_barrier(Worker *w) {
    for (int i = 0; i < w->n; i++) {
        Fiber &f = w->fibers[i];
        if (f.state == F_WAIT_BLOCK || &f == w->cur) {
            if (f.state == F_WAIT_BLOCK) f.state = F_READY;
            f.bar_count = w->bar_count;
            f.bar_arrivals = w->bar_arrived;
        }
    }
    w->bar_arrived = w->bar_count = 0;
}

// All lanes of group have arrived: compute each one's result and let them go on.
void complete_warp_group(Worker *w, unsigned warp, unsigned group) {
    Warp &wp = w->warps[warp];
    Fiber *base = &w->fibers[warp * 32];
    const int lanes = w->n - (int)warp * 32;
    unsigned ballot = 0;
    for (unsigned g = group; g; g &= g - 1) {
        const int l = __builtin_ctz(g);
        if (base[l].op == WOP_BALLOT && base[l].in) ballot |= 1u << l;
    }
    for (unsigned g = group; g; g &= g - 1) {
        const int l = __builtin_ctz(g);
        Fiber &f = base[l];
        if (f.op == WOP_SHFL) {
            f.out = (f.src >= 0 && f.src < 32 && f.src < lanes) ? base[f.src].in : f.in;
        } else if (f.op == WOP_BALLOT) {
            f.out = ballot;
        } else {
            f.out = 0;
        }
        wp.arrived &= ~(1u << l);
        if (&f != w->cur) f.state = F_READY;
    }
}

void release_warp(Worker *w, unsigned warp) {
    Warp &wp = w->warps[warp];
    const Fiber *base = &w->fibers[warp * 32];
    for (bool again = true; again;) {
        again = false;
        for (unsigned p = wp.arrived; p; p &= p - 1) {
            const unsigned m = base[__builtin_ctz(p)].wait_mask;
            if ((m & ~wp.arrived) == 0) {
                complete_warp_group(w, warp, m);
                again = true;
                break;
            }
        }
    }
}

[[noreturn]] void fiber_exit(Worker *w, Fiber *f) {
    f->state = F_DONE;
    Warp &wp = w->warps[f->warp];
    const unsigned bit = 1u << f->lane;
    wp.exited |= bit;
    for (unsigned p = wp.arrived; p; p &= p - 1) {
        const Fiber &o = w->fibers[f->warp * 32 + __builtin_ctz(p)];
        if (o.wait_mask & bit)
            fail(
                "lane %u of warp %u returned while lane %u waits for it in %s (mask 0x%08x); on "
                "the GPU "
                "this is undefined behaviour",
                f->lane, f->warp, o.lane, o.what, o.wait_mask);
    }
    w->exited++;
    if (w->bar_arrived > 0 && w->bar_arrived + w->exited == w->n) release_block_barrier(w);
    to_main(w, f, true);
    __builtin_unreachable();
}

void fiber_main(Fiber *f) {
    Worker *w = t_worker;
#ifdef STORY_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &w->main_bottom, &w->main_size);
#endif
    w->cfg->invoke(w->cfg->ctx);
    fiber_exit(w, f);
}

[[noreturn]] void deadlock(Worker *w) {
    int at_block = 0;
    char warps[512] = "";
    size_t len = 0;
    for (int i = 0; i < w->n; i++) at_block += w->fibers[i].state == F_WAIT_BLOCK;
    for (int k = 0; k * 32 < w->n && len + 64 < sizeof warps; k++) {
        const unsigned a = w->warps[k].arrived;
        if (!a) continue;
        const Fiber &f = w->fibers[k * 32 + __builtin_ctz(a)];
        len += snprintf(warps + len, sizeof warps - len,
                        " warp %d: lanes 0x%08x in %s (mask 0x%08x);", k, a, f.what, f.wait_mask);
    }
    t_thread = nullptr;  // the message is about the block, not one thread
    fail(
        "kernel %s, block (%u,%u,%u) deadlocks: %d thread(s) wait in __syncthreads, %d returned; "
        "waiting in "
        "warp operations:%s (a barrier inside a branch that not every thread takes, or a warp mask "
        "naming "
        "lanes that wait elsewhere)",
        w->cfg->name, w->block.bid.x, w->block.bid.y, w->block.bid.z, at_block, w->exited,
        len ? warps : " none");
}

void prepare_launch(Worker *w, const LaunchCfg &c) {
    const int n = (int)(c.block.x * c.block.y * c.block.z);
    if ((int)w->fibers.size() < n) w->fibers.resize(n);
    for (int i = 0; i < n; i++) {
        Fiber &f = w->fibers[i];
        f.tid = uint3{i % c.block.x, (i / c.block.x) % c.block.y, i / (c.block.x * c.block.y)};
        f.lane = (unsigned)i & 31;
        f.warp = (unsigned)i >> 5;
        f.stack = nullptr;
    }
    for (int k = 0; k < 32; k++) {
        const int lanes = n - k * 32;
        w->warps[k].absent = lanes >= 32 ? 0u : lanes <= 0 ? ~0u : ~((1u << lanes) - 1);
    }
    // The block's dynamic shared memory ends (128-byte rounded) right at a guard page, so
    // running past it faults instead of reading stale memory; with smem 0 any access faults.
    if (c.smem > w->smem_cap) {
        if (w->smem) munmap(w->smem, w->smem_cap + kPage);
        w->smem_cap = (c.smem + kPage - 1) & ~(kPage - 1);
        void *p = mmap(nullptr, w->smem_cap + kPage, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) fail("cannot map %zu bytes of dynamic shared memory", c.smem);
        w->smem = (unsigned char *)p;
        mprotect(w->smem + w->smem_cap, kPage, PROT_NONE);
    }
    w->dyn = w->smem ? w->smem + w->smem_cap - ((c.smem + 127) & ~(size_t)127) : nullptr;
    w->n = n;
    w->cfg = &c;
    w->block.bdim = c.block;
    w->block.gdim = c.grid;
    w->block.dyn_smem = w->dyn;
}

void run_block(Worker *w, uint64_t lin) {
    const LaunchCfg &c = *w->cfg;
    const int n = w->n;
    w->block.bid = uint3{(unsigned)(lin % c.grid.x), (unsigned)(lin / c.grid.x % c.grid.y),
                         (unsigned)(lin / ((uint64_t)c.grid.x * c.grid.y))};
    if (c.smem) memset(w->dyn, 0xFF, c.smem);  // uninitialised shared memory reads as NaN
    for (int i = 0; i < n; i++) w->fibers[i].state = F_READY;
    for (int k = 0; k * 32 < n; k++) w->warps[k].arrived = w->warps[k].exited = 0;
    w->exited = w->bar_arrived = w->bar_count = 0;
    t_block = &w->block;
    const bool reverse = lin & 1;
    for (int live = n; live > 0;) {
        int ran = 0;
        for (int k = 0; k < n; k++) {
            Fiber *f = &w->fibers[reverse ? n - 1 - k : k];
            if (f->state != F_READY) continue;
            if (!f->stack) prepare_fiber(w, f);
            w->cur = f;
            t_thread = f;
            switch_to(&w->main, &f->ctx, f->stack, stack_bytes(), false);
            ran++;
            if (f->state == F_DONE) {
                w->free_stacks.push_back(f->stack);
                f->stack = nullptr;
                live--;
            }
        }
        t_thread = nullptr;
        w->cur = nullptr;
        if (!ran) deadlock(w);
    }
    t_block = nullptr;
}

std::mutex g_attr_mutex;
std::unordered_map<const void *, int> g_max_smem;

}  // namespace

void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(fmt, ap);
}

void outside_kernel(const char *what) {
    fail("%s used outside a kernel (device code must be launched with KERNEL_LAUNCH)", what);
}

int block_barrier(int pred) {
    Fiber *f = static_cast<Fiber *>(cur_thread("__syncthreads"));
    Worker *w = t_worker;
    w->bar_arrived++;
    w->bar_count += pred != 0;
    if (w->bar_arrived + w->exited == w->n) {
        release_block_barrier(w);
    } else {
        f->state = F_WAIT_BLOCK;
        to_main(w, f, false);
    }
    return f->bar_count;
}

int block_arrivals() { return static_cast<Fiber *>(cur_thread("__syncthreads_and"))->bar_arrivals; }

uint64_t warp_exchange(unsigned mask, int op, uint64_t value, int src, const char *what) {
    Fiber *f = static_cast<Fiber *>(cur_thread(what));
    Worker *w = t_worker;
    Warp &wp = w->warps[f->warp];
    const unsigned bit = 1u << f->lane;
    if (!(mask & bit))
        fail("%s: mask 0x%08x does not include the calling lane %u", what, mask, f->lane);
    if (mask & wp.absent)
        fail(
            "%s: mask 0x%08x names lanes 0x%08x that do not exist (the block has %d threads, so "
            "warp %u is "
            "partial)",
            what, mask, mask & wp.absent, w->n, f->warp);
    if (mask & wp.exited)
        fail("%s: mask 0x%08x names lanes 0x%08x that have already returned", what, mask,
             mask & wp.exited);
    f->op = (uint8_t)op;
    f->in = value;
    f->src = src;
    f->wait_mask = mask;
    f->what = what;
    wp.arrived |= bit;
    if (wp.arrived == bit) {
        wp.common = mask;
        wp.mixed = false;
    } else if (mask != wp.common) {
        wp.mixed = true;
    }
    if (!wp.mixed) {  // the usual case: every waiting lane named the same lanes
        if ((mask & ~wp.arrived) == 0) complete_warp_group(w, f->warp, mask);
    } else {
        release_warp(w, f->warp);
    }
    if (wp.arrived & bit) {
        f->state = F_WAIT_WARP;
        to_main(w, f, false);
    }
    return f->out;
}

cudaError_t set_max_dynamic_smem(const void *fn, int bytes) {
    if (bytes < 0 || (size_t)bytes > kSmemOptInMax) return cudaErrorInvalidValue;
    std::lock_guard<std::mutex> lock(g_attr_mutex);
    g_max_smem[fn] = bytes;
    return cudaSuccess;
}

void launch(const LaunchCfg &c) {
    if (t_thread) fail("KERNEL_LAUNCH(%s) from device code is not supported", c.name);
    const dim3 b = c.block, g = c.grid;
    const uint64_t threads = (uint64_t)b.x * b.y * b.z;
    if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 || threads > 1024)
        fail(
            "KERNEL_LAUNCH(%s): block (%u,%u,%u) is invalid: CUDA allows 1..1024 threads per block "
            "(x, y <= 1024, z <= 64)",
            c.name, b.x, b.y, b.z);
    if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 2147483647u || g.y > 65535 || g.z > 65535)
        fail(
            "KERNEL_LAUNCH(%s): grid (%u,%u,%u) is invalid: CUDA allows x in 1..2^31-1, y and z in "
            "1..65535",
            c.name, g.x, g.y, g.z);
    if (c.smem > kSmemDefault) {
        int allowed = -1;
        {
            std::lock_guard<std::mutex> lock(g_attr_mutex);
            auto it = g_max_smem.find(c.fn);
            if (it != g_max_smem.end()) allowed = it->second;
        }
        if (c.smem > kSmemOptInMax)
            fail(
                "KERNEL_LAUNCH(%s): %zu bytes of dynamic shared memory exceed the %zu bytes a "
                "block can have",
                c.name, c.smem, kSmemOptInMax);
        if (allowed < 0 || c.smem > (size_t)allowed)
            fail(
                "KERNEL_LAUNCH(%s): %zu bytes of dynamic shared memory exceed the 48 KiB default; "
                "CUDA needs "
                "cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, %zu) "
                "first",
                c.name, c.smem, c.smem);
    }
    const uint64_t nblocks = (uint64_t)g.x * g.y * g.z;
#pragma omp parallel if (nblocks > 1)
    {
        Worker *w = get_worker();
        prepare_launch(w, c);
#pragma omp for schedule(dynamic)
        for (uint64_t i = 0; i < nblocks; i++) run_block(w, i);
        w->cfg = nullptr;
    }
}

}  // namespace story_emu

void wmma::detail::check_mem(const void *p, unsigned ldm, size_t elem_size, const char *what) {
    if ((uintptr_t)p & 31)
        story_emu::fail("%s: pointer %p is not 32-byte (256-bit) aligned, as CUDA requires", what,
                        p);
    if (((size_t)ldm * elem_size) % 16)
        story_emu::fail(
            "%s: ldm %u is not a multiple of 16 bytes (%zu-byte elements), as CUDA requires", what,
            ldm, elem_size);
}

void __trap() { story_emu::fail("__trap() called"); }

// ---- story_cuda_*: "device" memory is host memory in the emulation ----------------------
extern "C" {

int story_cuda_device_count(const char **why) {
    if (why) *why = "CUDA emulation build: kernels run on the CPU, there is no device";
    return 0;
}
int story_cuda_device_info(int index, StoryDeviceInfo *info) {
    (void)index;
    (void)info;
    return -1;
}
int story_cuda_set_device(int index) {
    (void)index;
    return -1;
}
void *story_cuda_malloc(size_t bytes) { return aligned_alloc(256, (bytes + 255) & ~(size_t)255); }
void story_cuda_free(void *p) { free(p); }
void story_cuda_memcpy(void *dst, const void *src, size_t bytes, int kind) {
    (void)kind;
    if (bytes) memmove(dst, src, bytes);
}
void story_cuda_sync(void) {}

}  // extern "C"
