/*
 * crc32c.c - CRC-32C, by ISA-L where the build has it (for 256 bytes or more), else by SSE4.2's
 * crc32 instruction where the CPU has it, else by a byte-wise table (see crc32c.h). The choice is
 * made once and kept in a function pointer. All three give the same values
 * (tests/unit/test_journal.c).
 *
 * ISA-L's crc32_iscsi runs three streams of the instruction at once and folds them with
 * carry-less multiplies: 30-57 GB/s here against 9.3 for one stream, whose every step waits for
 * the last (docs/BENCHMARKS.md section 68); short buffers keep the one stream. The event store
 * checksums every frame it writes and reads, 1.7 KB a CloudTrail record in a hot segment.
 */
#include "ingest/crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#ifdef COINHOUND_HAVE_ISAL
#include <isa-l/crc.h>
#endif

static uint32_t table[256];

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        table[i] = c;
    }
}

static uint32_t crc_soft(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    crc = ~crc;
    while (n--)
        crc = table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, b, 8);
        c = __builtin_ia32_crc32di(c, v);
        b += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *b++);
    return ~c32;
}
#endif

#ifdef COINHOUND_HAVE_ISAL
static uint32_t crc_isal(uint32_t crc, const void *p, size_t n)
{
    /* ISA-L takes an int length and a pointer it only reads, declared without const. */
    unsigned char *b;
    memcpy(&b, &p, sizeof b);
    crc = ~crc;
    while (n > 0) {
        int k = n > (1u << 30) ? 1 << 30 : (int)n;
        crc = crc32_iscsi(b, k, crc);
        b += k;
        n -= (size_t)k;
    }
    return ~crc;
}

#if defined(__x86_64__)
/* Below about 256 bytes ISA-L's set-up costs more than it saves: one stream of the instruction
 * ran 7-9 GB/s at 16-128 bytes where ISA-L ran 1.2-4 (section 68). Journal entries and index
 * frames are that short. */
enum { ISAL_MIN = 256 };

static uint32_t crc_mixed(uint32_t crc, const void *p, size_t n)
{
    return n < ISAL_MIN ? crc_hw(crc, p, n) : crc_isal(crc, p, n);
}
#endif
#endif

static pthread_once_t table_once = PTHREAD_ONCE_INIT;

uint32_t ch__crc32c_bytewise(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&table_once, table_init);
    return crc_soft(crc, p, n);
}

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static crc_fn pick(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
#ifdef COINHOUND_HAVE_ISAL
        return crc_mixed;
#else
        return crc_hw;
#endif
    }
#endif
#ifdef COINHOUND_HAVE_ISAL
    return crc_isal;
#else
    pthread_once(&table_once, table_init);
    return crc_soft;
#endif
}

uint32_t ch_crc32c(uint32_t crc, const void *p, size_t n)
{
    /* Racing first calls both pick the same function: the store is idempotent. */
    static crc_fn fn;
    crc_fn f = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);
    if (f == NULL) {
        f = pick();
        __atomic_store_n(&fn, f, __ATOMIC_RELEASE);
    }
    return f(crc, p, n);
}
