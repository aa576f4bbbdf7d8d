/*
 * geoip_bench.c - GeoIP lookups per second with and without the cache.
 *
 * Not built by CMake. From the repository root:
 *   cc -O2 -std=gnu17 -D_GNU_SOURCE -I src bench/geoip_bench.c src/enrich/geoip.c src/core/ip.c \
 *      src/core/mem.c src/core/error.c -lmaxminddb -o build/geoip_bench
 *   build/geoip_bench [--lookups N] [--distinct N] [DB.mmdb...]
 * (default database: data/geoip/country.mmdb, installed by scripts/install-geoip).
 *
 * The address stream imitates a log stream: `distinct` addresses (default 10,000: 85% public
 * IPv4, 10% public IPv6, 5% internal), drawn with Zipf-like repeats (rank k has weight 1/k), so
 * a few addresses (the NAT gateway, the busy API endpoint) dominate and a long tail appears a
 * few times. The stream is generated before timing. Each configuration runs on the same stream
 * in the same invocation, so the ratio is what matters, not the absolute rate of this machine.
 * A last run with 1M distinct addresses drawn uniformly shows the cache's cost when it mostly
 * misses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enrich/geoip.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void) /* xorshift64*: deterministic, fast */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static void make_addr(ch_ip *ip)
{
    uint64_t r = rng();
    unsigned kind = (unsigned)(r % 100);
    memset(ip, 0, sizeof *ip);
    if (kind < 5) { /* internal: 10/8 */
        ip->family = 4;
        ip->b[10] = ip->b[11] = 0xff;
        ip->b[12] = 10;
        ip->b[13] = (uint8_t)(r >> 8);
        ip->b[14] = (uint8_t)(r >> 16);
        ip->b[15] = (uint8_t)(r >> 24);
        return;
    }
    if (kind < 15) { /* public IPv6: 2000::/3 */
        ip->family = 6;
        for (int i = 0; i < 16; i++)
            ip->b[i] = (uint8_t)(rng() >> 32);
        ip->b[0] = (uint8_t)(0x20 | (ip->b[0] & 0x1f));
        if (ch_ip_is_internal(ip))
            ip->b[0] = 0x2a;
        return;
    }
    for (;;) { /* public IPv4 */
        uint32_t a = (uint32_t)(rng() >> 32);
        ip->family = 4;
        ip->b[10] = ip->b[11] = 0xff;
        ip->b[12] = (uint8_t)(a >> 24);
        ip->b[13] = (uint8_t)(a >> 16);
        ip->b[14] = (uint8_t)(a >> 8);
        ip->b[15] = (uint8_t)a;
        if (!ch_ip_is_internal(ip))
            return;
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double run(const char *label, const char *const *paths, size_t npaths, size_t cache,
                  const ch_ip *addrs, const uint32_t *seq, size_t n)
{
    ch_geoip *g = NULL;
    ch_error err = {0};
    ch_geoip_opts opts = {.cache_entries = cache};
    if (ch_geoip_open_ex(&g, paths, npaths, &opts, &err) != 0) {
        fprintf(stderr, "geoip_bench: %s\n", err.msg);
        exit(1);
    }
    /* Warm the file mapping (page cache, TLB) so that both runs start equal. */
    for (size_t i = 0; i < n && i < 100000; i++) {
        ch_geo geo;
        ch_geoip_lookup(g, &addrs[seq[i]], &geo);
    }
    ch_geoip_close(g);
    if (ch_geoip_open_ex(&g, paths, npaths, &opts, &err) != 0) {
        fprintf(stderr, "geoip_bench: %s\n", err.msg);
        exit(1);
    }
    unsigned long sink = 0;
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        ch_geo geo;
        ch_geoip_lookup(g, &addrs[seq[i]], &geo);
        sink += (unsigned char)geo.country[0] + geo.asn + geo.city.n;
    }
    double dt = now() - t0;
    ch_geoip_stats st;
    ch_geoip_stats_get(g, &st);
    double rate = (double)n / dt;
    uint64_t looked = st.cache_hits + st.cache_misses;
    printf("%-28s %10.0f lookups/s  %6.1f ns/lookup  hit rate %5.1f%%  (internal %llu, "
           "unknown %llu, errors %llu, sink %lu)\n",
           label, rate, dt * 1e9 / (double)n,
           looked ? 100.0 * (double)st.cache_hits / (double)looked : 0.0,
           (unsigned long long)st.internal, (unsigned long long)st.unknown,
           (unsigned long long)st.errors, sink % 10);
    ch_geoip_close(g);
    return rate;
}

int main(int argc, char **argv)
{
    size_t nlookups = 2000000, distinct = 10000;
    const char *paths[CH_GEOIP_MAX_DBS];
    size_t npaths = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--lookups") == 0 && i + 1 < argc)
            nlookups = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--distinct") == 0 && i + 1 < argc)
            distinct = strtoul(argv[++i], NULL, 10);
        else if (npaths < CH_GEOIP_MAX_DBS)
            paths[npaths++] = argv[i];
    }
    if (npaths == 0)
        paths[npaths++] = "data/geoip/country.mmdb";
    if (distinct == 0 || nlookups == 0)
        return 2;

    ch_ip *addrs = calloc(distinct, sizeof *addrs);
    double *cdf = calloc(distinct, sizeof *cdf);
    uint32_t *seq = calloc(nlookups, sizeof *seq);
    if (!addrs || !cdf || !seq)
        return 1;
    for (size_t i = 0; i < distinct; i++)
        make_addr(&addrs[i]);
    double total = 0;
    for (size_t k = 0; k < distinct; k++)
        cdf[k] = (total += 1.0 / (double)(k + 1));
    for (size_t i = 0; i < nlookups; i++) {
        double u = (double)(rng() >> 11) / 9007199254740992.0 * total;
        size_t lo = 0, hi = distinct - 1;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        seq[i] = (uint32_t)lo; /* rank lo is address lo: addresses are random already */
    }

    printf("databases:");
    for (size_t i = 0; i < npaths; i++)
        printf(" %s", paths[i]);
    printf("\n%zu lookups over %zu distinct addresses (Zipf s=1), one core\n", nlookups, distinct);
    double with =
        run("cache 64K entries", paths, npaths, CH_GEOIP_CACHE_DEFAULT, addrs, seq, nlookups);
    double without = run("no cache", paths, npaths, 0, addrs, seq, nlookups);
    printf("speed-up from the cache: %.1fx\n", with / without);

    /* Mostly misses: 1M distinct addresses, uniform. */
    size_t wide = 1000000;
    ch_ip *many = calloc(wide, sizeof *many);
    if (!many)
        return 1;
    for (size_t i = 0; i < wide; i++)
        make_addr(&many[i]);
    for (size_t i = 0; i < nlookups; i++)
        seq[i] = (uint32_t)(rng() % wide);
    printf("\n%zu lookups over %zu distinct addresses (uniform): the cache mostly misses\n",
           nlookups, wide);
    double w2 =
        run("cache 64K entries", paths, npaths, CH_GEOIP_CACHE_DEFAULT, many, seq, nlookups);
    double wo2 = run("no cache", paths, npaths, 0, many, seq, nlookups);
    printf("ratio: %.2fx\n", w2 / wo2);

    free(many);
    free(addrs);
    free(cdf);
    free(seq);
    return 0;
}
