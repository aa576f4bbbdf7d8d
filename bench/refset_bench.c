/*
 * refset_bench.c - lookups per second against large reference sets (issue 4, "Speed"):
 * a 1M-domain set and a 1M-CIDR set, one core, a random mix of hits and misses, with the same
 * query mix against a 1k-element set as the baseline measured in the same run (the ratio shows
 * whether lookup time depends on set size). Also build rate and memory per element
 * (ch_refset_memory and the change in resident memory).
 *
 * Not built by CMake. From the repository root:
 *
 *   cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc bench/refset_bench.c src/enrich/refset*.c \
 *      src/core/mem.c src/core/error.c src/core/ip.c src/core/diag.c src/ingest/input.c \
 *      -lz -o /tmp/refset_bench && /tmp/refset_bench [elements] [queries] [hit%] [domains|cidrs]
 *
 * The fourth argument runs one half only (for profiling with perf record).
 *
 * Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so that other processes on a
 * shared machine do not count; they still share the caches, so run it on a quiet machine for
 * numbers to publish.
 *
 * Data is synthetic and seeded (same numbers every run):
 *   domains  2 to 4 labels (50/35/15%), 5-14 random letters and digits a label, one of 16 TLDs.
 *            Hits are a listed name or a subdomain of one (www., pool.eu., ...); misses are
 *            fresh random names shaped the same way. hit% (default 50) sets the mix; DNS
 *            traffic against a mining list is nearly all misses (try 1).
 *   cidrs    IPv4 in the shape of block lists: 75% /32, 20% /24, 4.9% /17-/23, 0.1% /12-/16,
 *            so 14 prefix lengths are in use; hits are random addresses inside random entries,
 *            misses random addresses (a few land in the short prefixes and hit). A second run
 *            spreads entries evenly over all 25 lengths /8-/32 as a worst case.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "enrich/refset.h"

#define NOW 1700000000000LL

static unsigned hit_pct = 50; /* share of queries drawn from the set */

static uint64_t rs = 0x243f6a8885a308d3ull;
static uint64_t rnd(void)
{
    uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Thread CPU time: on a shared machine, wall time counts other processes' turns too. */
static int want_hit(void) { return rnd() % 100 < hit_pct; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static ch_refset *new_set(const char *name, ch_refset_type t, size_t max)
{
    ch_refset *s = NULL;
    ch_error err = {0};
    ch_refset_opts o = {.max_elems = max + 16};
    if (ch_refset_new(&s, name, t, &o, &err) != CH_OK) {
        fprintf(stderr, "refset_bench: %s\n", err.msg);
        exit(1);
    }
    return s;
}

/* ---- domains ---------------------------------------------------------------------------- */

static const char *const tlds[] = {"com", "net", "org", "io",  "xyz", "cc", "ru",   "info",
                                   "top", "de",  "pw",  "biz", "co",  "me", "club", "online"};

static size_t random_label(char *out)
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = 5 + rnd() % 10;
    for (size_t i = 0; i < n; i++)
        out[i] = alpha[rnd() % 36];
    return n;
}

static size_t random_domain(char *out)
{
    uint64_t r = rnd() % 100;
    int labels = r < 50 ? 2 : r < 85 ? 3 : 4;
    size_t n = 0;
    for (int i = 0; i < labels - 1; i++) {
        n += random_label(out + n);
        out[n++] = '.';
    }
    const char *t = tlds[rnd() % 16];
    size_t tl = strlen(t);
    memcpy(out + n, t, tl + 1);
    return n + tl;
}

typedef struct query {
    char *text;
    size_t len;
} query;

typedef struct result {
    double lookups_per_s, ns_per_lookup, hit_ratio;
} result;

#define BATCH 256

/* batch: prepare BATCH queries, then one ch_refset_contains_dq_batch (preparing is timed). */
static result run_domain_queries(const ch_refset *s, const query *q, size_t nq, int rounds,
                                 bool batch)
{
    result best = {0, 0, 0};
    static ch_refset_dq dq[BATCH];
    const ch_refset_dq *dqp[BATCH];
    const ch_refset_elem *hit[BATCH];
    int64_t at[BATCH];
    for (int i = 0; i < BATCH; i++) {
        dqp[i] = &dq[i];
        at[i] = NOW;
    }
    for (int r = 0; r < rounds; r++) {
        size_t hits = 0;
        double t0 = now_s();
        if (!batch) {
            for (size_t i = 0; i < nq; i++)
                hits += ch_refset_contains_domain(s, q[i].text, q[i].len, NOW, NULL);
        } else {
            for (size_t i = 0; i < nq; i += BATCH) {
                size_t m = nq - i < BATCH ? nq - i : BATCH;
                for (size_t j = 0; j < m; j++)
                    ch_refset_dq_prepare(&dq[j], q[i + j].text, q[i + j].len);
                hits += ch_refset_contains_dq_batch(s, dqp, at, m, hit);
            }
        }
        double dt = now_s() - t0;
        if (nq / dt > best.lookups_per_s) {
            best.lookups_per_s = nq / dt;
            best.ns_per_lookup = dt * 1e9 / nq;
            best.hit_ratio = (double)hits / nq;
        }
    }
    return best;
}

static void bench_domains(size_t n, size_t nq)
{
    char **names = malloc(n * sizeof *names);
    char buf[300];
    for (size_t i = 0; i < n; i++) {
        size_t l = random_domain(buf);
        names[i] = malloc(l + 1);
        memcpy(names[i], buf, l + 1);
    }
    long rss0 = rss_kb();
    double t0 = now_s();
    ch_refset *big = new_set("domains_1m", CH_REFSET_DOMAIN, n);
    ch_refset_meta m = ch_refset_meta_make("bench", NOW);
    for (size_t i = 0; i < n; i++)
        ch_refset_add(big, names[i], strlen(names[i]), &m, NULL);
    double build = now_s() - t0;
    long rss1 = rss_kb();
    ch_refset *small = new_set("domains_1k", CH_REFSET_DOMAIN, 1000);
    for (size_t i = 0; i < 1000; i++)
        ch_refset_add(small, names[i], strlen(names[i]), &m, NULL);

    static const char *const sub[] = {"", "www.", "pool.eu.", "xmr.", "a.b.c."};
    query *q = malloc(nq * sizeof *q), *qs = malloc(nq * sizeof *qs);
    for (size_t i = 0; i < nq; i++) {
        size_t l;
        if (want_hit()) {
            const char *p = sub[rnd() % 5];
            l = (size_t)snprintf(buf, sizeof buf, "%s%s", p, names[rnd() % n]);
        } else {
            l = random_domain(buf);
        }
        q[i].text = malloc(l + 1);
        memcpy(q[i].text, buf, l + 1);
        q[i].len = l;
        /* The baseline asks the same shapes of the 1k set. */
        if (want_hit()) {
            const char *p = sub[rnd() % 5];
            l = (size_t)snprintf(buf, sizeof buf, "%s%s", p, names[rnd() % 1000]);
        } else {
            l = random_domain(buf);
        }
        qs[i].text = malloc(l + 1);
        memcpy(qs[i].text, buf, l + 1);
        qs[i].len = l;
    }
    result rb = run_domain_queries(small, qs, nq, 3, false);
    result r = run_domain_queries(big, q, nq, 3, false);
    result bb = run_domain_queries(small, qs, nq, 3, true);
    result b = run_domain_queries(big, q, nq, 3, true);
    printf("domains: %zu elements (%zu distinct), built in %.2f s (%.2f M adds/s)\n",
           ch_refset_count(big), ch_refset_keys(big), build, n / build / 1e6);
    printf("  memory: ch_refset_memory %.1f bytes/element, resident +%.1f bytes/element\n",
           (double)ch_refset_memory(big) / n, (double)(rss1 - rss0) * 1024.0 / n);
    printf("  1M set: %.2f M lookups/s (%.1f ns each), %.0f%% hits\n", r.lookups_per_s / 1e6,
           r.ns_per_lookup, r.hit_ratio * 100);
    printf("  1k set: %.2f M lookups/s (%.1f ns each), %.0f%% hits  -> 1M/1k ratio %.2f\n",
           rb.lookups_per_s / 1e6, rb.ns_per_lookup, rb.hit_ratio * 100,
           r.lookups_per_s / rb.lookups_per_s);
    printf("  batches of %d, 1M set: %.2f M lookups/s (%.1f ns each), %.0f%% hits\n", BATCH,
           b.lookups_per_s / 1e6, b.ns_per_lookup, b.hit_ratio * 100);
    printf("  batches of %d, 1k set: %.2f M lookups/s (%.1f ns each)  -> 1M/1k ratio %.2f\n", BATCH,
           bb.lookups_per_s / 1e6, bb.ns_per_lookup, b.lookups_per_s / bb.lookups_per_s);
    for (size_t i = 0; i < nq; i++) {
        free(q[i].text);
        free(qs[i].text);
    }
    free(q);
    free(qs);
    ch_refset_free(big);
    ch_refset_free(small);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* ---- CIDRs ------------------------------------------------------------------------------ */

static unsigned blocklist_len(void)
{
    uint64_t r = rnd() % 10000;
    if (r < 7500)
        return 32;
    if (r < 9500)
        return 24;
    if (r < 9990)
        return 17 + (unsigned)(rnd() % 7);
    return 12 + (unsigned)(rnd() % 5);
}

static unsigned uniform_len(void) { return 8 + (unsigned)(rnd() % 25); }

static ch_ip v4(uint32_t a)
{
    ch_ip ip;
    memset(&ip, 0, sizeof ip);
    ip.b[10] = ip.b[11] = 0xff;
    ip.b[12] = (uint8_t)(a >> 24);
    ip.b[13] = (uint8_t)(a >> 16);
    ip.b[14] = (uint8_t)(a >> 8);
    ip.b[15] = (uint8_t)a;
    ip.family = 4;
    return ip;
}

static result run_ip_queries(const ch_refset *s, const ch_ip *q, size_t nq, int rounds, bool batch)
{
    result best = {0, 0, 0};
    const ch_refset_elem *hit[BATCH];
    int64_t at[BATCH];
    for (int i = 0; i < BATCH; i++)
        at[i] = NOW;
    for (int r = 0; r < rounds; r++) {
        size_t hits = 0;
        double t0 = now_s();
        if (!batch) {
            for (size_t i = 0; i < nq; i++)
                hits += ch_refset_contains_ip(s, &q[i], NOW, NULL);
        } else {
            for (size_t i = 0; i < nq; i += BATCH)
                hits +=
                    ch_refset_contains_ip_batch(s, q + i, at, nq - i < BATCH ? nq - i : BATCH, hit);
        }
        double dt = now_s() - t0;
        if (nq / dt > best.lookups_per_s) {
            best.lookups_per_s = nq / dt;
            best.ns_per_lookup = dt * 1e9 / nq;
            best.hit_ratio = (double)hits / nq;
        }
    }
    return best;
}

static void bench_cidrs(const char *label, unsigned (*len_of)(void), size_t n, size_t nq)
{
    uint32_t *net = malloc(n * sizeof *net);
    unsigned *len = malloc(n * sizeof *len);
    for (size_t i = 0; i < n; i++) {
        len[i] = len_of();
        net[i] = (uint32_t)rnd() & (len[i] ? 0xffffffffu << (32 - len[i]) : 0);
    }
    long rss0 = rss_kb();
    double t0 = now_s();
    ch_refset *big = new_set("cidrs_1m", CH_REFSET_IP, n);
    ch_refset_meta m = ch_refset_meta_make("bench", NOW);
    for (size_t i = 0; i < n; i++) {
        ch_ip ip = v4(net[i]);
        ch_refset_add_ip(big, &ip, len[i], &m, NULL);
    }
    double build = now_s() - t0;
    long rss1 = rss_kb();
    ch_refset *small = new_set("cidrs_1k", CH_REFSET_IP, 1000);
    for (size_t i = 0; i < 1000; i++) {
        ch_ip ip = v4(net[i]);
        ch_refset_add_ip(small, &ip, len[i], &m, NULL);
    }
    ch_ip *q = malloc(nq * sizeof *q), *qs = malloc(nq * sizeof *qs);
    for (size_t i = 0; i < nq; i++) {
        size_t j = rnd() % n, k = rnd() % 1000;
        uint32_t host = (uint32_t)rnd();
        q[i] = want_hit() ? v4(net[j] | (len[j] < 32 ? host & (0xffffffffu >> len[j]) : 0))
                          : v4((uint32_t)rnd());
        qs[i] = want_hit() ? v4(net[k] | (len[k] < 32 ? host & (0xffffffffu >> len[k]) : 0))
                           : v4((uint32_t)rnd());
    }
    result rb = run_ip_queries(small, qs, nq, 3, false);
    result r = run_ip_queries(big, q, nq, 3, false);
    result bb = run_ip_queries(small, qs, nq, 3, true);
    result b = run_ip_queries(big, q, nq, 3, true);
    printf("cidrs (%s): %zu elements (%zu distinct), built in %.2f s (%.2f M adds/s)\n", label,
           ch_refset_count(big), ch_refset_keys(big), build, n / build / 1e6);
    printf("  memory: ch_refset_memory %.1f bytes/element, resident +%.1f bytes/element\n",
           (double)ch_refset_memory(big) / n, (double)(rss1 - rss0) * 1024.0 / n);
    printf("  1M set: %.2f M lookups/s (%.1f ns each), %.0f%% hits\n", r.lookups_per_s / 1e6,
           r.ns_per_lookup, r.hit_ratio * 100);
    printf("  1k set: %.2f M lookups/s (%.1f ns each), %.0f%% hits  -> 1M/1k ratio %.2f\n",
           rb.lookups_per_s / 1e6, rb.ns_per_lookup, rb.hit_ratio * 100,
           r.lookups_per_s / rb.lookups_per_s);
    printf("  batches of %d, 1M set: %.2f M lookups/s (%.1f ns each), %.0f%% hits\n", BATCH,
           b.lookups_per_s / 1e6, b.ns_per_lookup, b.hit_ratio * 100);
    printf("  batches of %d, 1k set: %.2f M lookups/s (%.1f ns each)  -> 1M/1k ratio %.2f\n", BATCH,
           bb.lookups_per_s / 1e6, bb.ns_per_lookup, b.lookups_per_s / bb.lookups_per_s);
    free(q);
    free(qs);
    free(net);
    free(len);
    ch_refset_free(big);
    ch_refset_free(small);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    size_t nq = argc > 2 ? strtoul(argv[2], NULL, 10) : 4000000;
    if (argc > 3)
        hit_pct = (unsigned)strtoul(argv[3], NULL, 10) % 101;
    if (n < 1000)
        n = 1000;
    /* Big blocks straight from mmap and back on free, so that each scenario's resident delta is
     * its own (glibc otherwise raises the threshold and keeps freed blocks). */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    printf("refset_bench: %zu elements, %zu queries per run (%u%% drawn from the set), best of 3 "
           "runs, one thread\n",
           n, nq, hit_pct);
    const char *only = argc > 4 ? argv[4] : "";
    if (strcmp(only, "cidrs") != 0)
        bench_domains(n, nq);
    if (strcmp(only, "domains") == 0)
        return 0;
    malloc_trim(0);
    bench_cidrs("block-list shape", blocklist_len, n, nq);
    malloc_trim(0);
    bench_cidrs("uniform /8-/32, worst case", uniform_len, n, nq);
    return 0;
}
