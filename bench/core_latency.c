/*
 * core_latency.c - what handing data from one CPU to another costs on this machine, against a
 * miss to memory measured in the same invocation (docs/BENCHMARKS.md section 71).
 *
 * The pipeline's read-ahead worker writes each event into a ring slot on one CPU and the merge
 * thread reads it on the other (src/ingest/prefetch.c); how much a second thread gives depends on
 * what moving a cache line between the two CPUs costs. Three figures, each the median of ROUNDS:
 * - round trip: two threads pinned to CPU A and CPU B pass one cache line back and forth;
 * - hand-off: the thread on B fills 4 KiB slots of a 64-slot ring, the thread on A reads each
 *   slot and gives it back (the ring's lines go back and forth, as the pipeline's do), and the
 *   same fill-and-read on one thread (no line leaves its CPU) as the baseline;
 * - memory: a dependent load chain through 256 MiB in random order (every load a miss; huge
 *   pages where the kernel gives them), the baseline of the round trip.
 *
 *     cc -O2 -pthread bench/core_latency.c -o /tmp/core_latency
 *     /tmp/core_latency [CPU_A CPU_B [ROUNDS]]      # default 0 1 5
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lines.h" /* lr_now */

#define TRIPS 200000
#define SLOTS 64
#define SLOT 4096
#define RECORDS 200000L
#define CHASE_BYTES ((size_t)256 << 20)
#define CHASE_LOADS 2000000L
#define MAX_ROUNDS 64

/* Each on 128 bytes of its own: the CPU fetches lines in pairs, and a counter that shared a pair
 * with the ring's first slot or with the other counter made the hand-off 1.5x slower or not
 * depending on where the linker put them. */
#define PAIR 128
static _Alignas(PAIR) atomic_int flag;
static _Alignas(PAIR) char ring[SLOTS][SLOT];
static _Alignas(PAIR) atomic_long head;
static _Alignas(PAIR) atomic_long tail;

static int pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *pong(void *arg)
{
    pin(*(const int *)arg);
    for (int i = 0; i < TRIPS; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 1)
            ;
        atomic_store_explicit(&flag, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

static void start(pthread_t *t, void *(*fn)(void *), int *cpu)
{
    if (pthread_create(t, NULL, fn, cpu) != 0) {
        perror("core_latency: pthread_create");
        exit(1);
    }
}

/* ns per round trip of one cache line between the caller's CPU and cpu_b. */
static double round_trip(int cpu_b)
{
    pthread_t t;
    atomic_store(&flag, 0);
    start(&t, pong, &cpu_b);
    double t0 = lr_now();
    for (int i = 0; i < TRIPS; i++) {
        atomic_store_explicit(&flag, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 2)
            ;
    }
    double dt = lr_now() - t0;
    pthread_join(t, NULL);
    return dt / TRIPS * 1e9;
}

static void fill(long i) { memset(ring[i % SLOTS], (int)(i & 0xff), SLOT); }

static uint64_t sum_slot(long i)
{
    const uint64_t *p = (const uint64_t *)(const void *)ring[i % SLOTS];
    uint64_t s = 0;
    for (size_t k = 0; k < SLOT / sizeof *p; k++)
        s += p[k];
    return s;
}

static void *producer(void *arg)
{
    pin(*(const int *)arg);
    for (long i = 0; i < RECORDS; i++) {
        while (i - atomic_load_explicit(&tail, memory_order_acquire) >= SLOTS)
            ;
        fill(i);
        atomic_store_explicit(&head, i + 1, memory_order_release);
    }
    return NULL;
}

/* ns per 4 KiB slot filled on cpu_b and read on the caller's CPU; *sink keeps the reads. */
static double hand_off(int cpu_b, uint64_t *sink)
{
    pthread_t t;
    atomic_store(&head, 0);
    atomic_store(&tail, 0);
    start(&t, producer, &cpu_b);
    double t0 = lr_now();
    for (long i = 0; i < RECORDS; i++) {
        while (atomic_load_explicit(&head, memory_order_acquire) <= i)
            ;
        *sink += sum_slot(i);
        atomic_store_explicit(&tail, i + 1, memory_order_release);
    }
    double dt = lr_now() - t0;
    pthread_join(t, NULL);
    return dt / RECORDS * 1e9;
}

/* The same slots filled and read by one thread. */
static double one_thread(uint64_t *sink)
{
    double t0 = lr_now();
    for (long i = 0; i < RECORDS; i++) {
        fill(i);
        *sink += sum_slot(i);
    }
    return (lr_now() - t0) / RECORDS * 1e9;
}

/* ns per load of a dependent chain through CHASE_BYTES in random order (a cyclic permutation of
 * cache lines, Sattolo's algorithm, so that the chain visits every line once). The chain is made
 * anew each round, in fresh memory, as the figures in docs/BENCHMARKS.md section 71 were taken.
 * Exits when out of memory. */
static double memory_miss(uint64_t *sink)
{
    size_t n = CHASE_BYTES / 64;
    size_t *next = NULL;
    size_t *order = malloc(n * sizeof *order);
    if (order == NULL || posix_memalign((void **)&next, (size_t)2 << 20, n * 64) != 0) {
        fprintf(stderr, "core_latency: out of memory\n");
        exit(1);
    }
    /* Huge pages where the kernel gives them, so that the figure is the memory's latency rather
     * than page walks'. */
    (void)madvise(next, n * 64, MADV_HUGEPAGE);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    uint64_t x = 88172645463325252ull;
    for (size_t i = n - 1; i > 0; i--) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t j = (size_t)(x % i);
        size_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    for (size_t i = 0; i < n; i++)
        next[order[i] * 8] = order[(i + 1) % n] * 8;
    free(order);
    size_t p = 0;
    double t0 = lr_now();
    for (long i = 0; i < CHASE_LOADS; i++)
        p = next[p];
    double dt = lr_now() - t0;
    *sink += p;
    free(next);
    return dt / CHASE_LOADS * 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int a = argc > 1 ? atoi(argv[1]) : 0, b = argc > 2 ? atoi(argv[2]) : 1;
    int rounds = argc > 3 ? atoi(argv[3]) : 5;
    if (a == b || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr,
                "usage: core_latency [CPU_A CPU_B [ROUNDS]]: two different CPUs, "
                "1 to %d rounds\n",
                MAX_ROUNDS);
        return 2;
    }
    if (pin(a) != 0) {
        fprintf(stderr, "core_latency: cannot run on CPU %d\n", a);
        return 1;
    }
    double rt[MAX_ROUNDS], ho[MAX_ROUNDS], one[MAX_ROUNDS], mem[MAX_ROUNDS];
    uint64_t sink = 0; /* everything read, printed so that no read is optimised away */
    for (int r = 0; r < rounds; r++) {
        rt[r] = round_trip(b);
        ho[r] = hand_off(b, &sink);
        one[r] = one_thread(&sink);
        mem[r] = memory_miss(&sink);
        printf("round %d: round trip %.0f ns, hand-off %.0f ns/slot, one thread %.0f ns/slot, "
               "memory %.0f ns/load\n",
               r + 1, rt[r], ho[r], one[r], mem[r]);
    }
    double m_rt = median(rt, rounds), m_ho = median(ho, rounds), m_one = median(one, rounds),
           m_mem = median(mem, rounds);
    printf(
        "CPUs %d,%d, medians of %d rounds: round trip %.0f ns (%.2fx a memory load of %.0f "
        "ns); 4 KiB hand-off %.0f ns (%.2fx the one-thread fill and read of %.0f ns); check %llu\n",
        a, b, rounds, m_rt, m_rt / m_mem, m_mem, m_ho, m_ho / m_one, m_one,
        (unsigned long long)sink);
    return 0;
}
