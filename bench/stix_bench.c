/*
 * stix_bench.c - load time of a 100k-indicator STIX 2.1 bundle (issue 4, "Speed"): generated
 * here (seeded, same bytes every run): 60% domain-name, 30% ipv4-addr (one in five a CIDR),
 * 10% compound ORs of a domain and two addresses, every indicator with name, types, labels,
 * confidence, created_by_ref and a validity window. Measured: JSON parse + ingest into memory
 * sets and catalog, then the same into a fresh SQLite database (one transaction), with the
 * bundle size and elements per second. The baseline in the same run is parsing alone.
 *
 * Not built by CMake. From the repository root, after building build-stix (or any build dir):
 *
 *   cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc bench/stix_bench.c build-stix/libcoinhound_core.a \
 *      -lsimdjson -lz -lmaxminddb -lpcre2-8 -lyaml -lsqlite3 -lstdc++ -lm -lpthread \
 *      -o /tmp/stix_bench && /tmp/stix_bench [indicators] [db path]
 *
 * Times are wall-clock (CLOCK_MONOTONIC) because SQLite's fsyncs belong in the figure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/json.h"
#include "intel/intel_store.h"
#include "intel/stix.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void domain(char *b)
{
    static const char *tld[] = {"com", "net", "org", "io", "xyz", "cc", "ru", "cn"};
    int n = 6 + (int)(next() % 8);
    for (int i = 0; i < n; i++)
        b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[next() % 36];
    sprintf(b + n, ".%s", tld[next() % 8]);
}

static void ipv4(char *b, bool cidr)
{
    uint32_t a = (uint32_t)next();
    if (cidr)
        sprintf(b, "%u.%u.%u.0/24", (a >> 24) | 1, (a >> 16) & 255, (a >> 8) & 255);
    else
        sprintf(b, "%u.%u.%u.%u", (a >> 24) | 1, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static void gen(ch_buf *b, int n)
{
    ch_buf_adds(b, "{\"type\":\"bundle\",\"id\":\"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d\","
                   "\"objects\":[{\"type\":\"identity\",\"spec_version\":\"2.1\",\"id\":"
                   "\"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff\",\"name\":\"Bench Feed\"}");
    for (int i = 0; i < n; i++) {
        char pat[512], d[64], a1[32], a2[32];
        int k = (int)(next() % 10);
        if (k < 6) {
            domain(d);
            snprintf(pat, sizeof pat, "[domain-name:value = '%s']", d);
        } else if (k < 9) {
            ipv4(a1, next() % 5 == 0);
            snprintf(pat, sizeof pat, "[ipv4-addr:value = '%s']", a1);
        } else {
            domain(d);
            ipv4(a1, false);
            ipv4(a2, false);
            snprintf(pat, sizeof pat,
                     "[domain-name:value = '%s' OR ipv4-addr:value = '%s'] OR "
                     "[ipv4-addr:value = '%s']",
                     d, a1, a2);
        }
        ch_buf_printf(b,
                      ",{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--"
                      "%08x-%04x-4%03x-8%03x-%012llx\",\"created\":\"2024-01-01T00:00:00.000Z\","
                      "\"modified\":\"2024-01-02T00:00:00.000Z\",\"name\":\"mining %d\","
                      "\"indicator_types\":[\"malicious-activity\"],\"labels\":[\"cryptomining\"],"
                      "\"confidence\":%d,\"created_by_ref\":\"identity--f431f809-377b-45e0-aa1c-"
                      "6a4751cae5ff\",\"pattern\":\"%s\",\"pattern_type\":\"stix\","
                      "\"valid_from\":\"2024-01-01T00:00:00Z\",\"valid_until\":"
                      "\"2026-01-01T00:00:00Z\"}",
                      (unsigned)i, (unsigned)(next() & 0xffff), (unsigned)(next() & 0xfff),
                      (unsigned)(next() & 0xfff), (unsigned long long)(next() & 0xffffffffffffull),
                      i, (int)(next() % 101), pat);
    }
    ch_buf_adds(b, "]}");
}

static double run(const ch_buf *b, ch_intel_store *st, const char *label)
{
    ch_refsets *sets;
    ch_intel_catalog *cat;
    ch_stix_ctx *ctx;
    ch_error err = {0};
    ch_refsets_new(&sets);
    ch_intel_catalog_new(&cat);
    ch_stix_opts o = {.feed = "bench", .now_ms = 1700000000000LL};
    if (ch_stix_ctx_new(&ctx, sets, cat, st, &o, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    double t0 = now_s();
    if (ch_stix_ingest_mem(ctx, b->data, b->len, "bench", NULL, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    double t = now_s() - t0;
    const ch_stix_stats *s = ch_stix_ctx_stats(ctx);
    printf("%-22s %8.3f s  %llu indicators loaded, %llu elements, %.0f indicators/s\n", label, t,
           (unsigned long long)s->loaded, (unsigned long long)s->elements_added, s->loaded / t);
    ch_stix_ctx_free(ctx);
    ch_intel_catalog_free(cat);
    ch_refsets_free(sets);
    return t;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    char defdb[64];
    snprintf(defdb, sizeof defdb, "/tmp/stix_bench_%d.db", (int)getpid());
    const char *db = argc > 2 ? argv[2] : defdb;
    ch_buf b;
    ch_buf_init(&b, (size_t)1 << 31);
    gen(&b, n);
    printf("bundle: %d indicators, %.1f MB\n", n, b.len / 1e6);

    ch_json_parser *p = ch_json_parser_new((size_t)1 << 31, 256);
    ch_json_val root;
    ch_error err = {0};
    double t0 = now_s();
    if (ch_json_parse(p, b.data, b.len, b.len, &root, &err) < 0)
        return 1;
    printf("%-22s %8.3f s  (baseline)\n", "parse only", now_s() - t0);
    ch_json_parser_free(p);

    run(&b, NULL, "ingest, memory");
    ch_intel_store *st;
    unlink(db);
    if (ch_intel_store_open(db, &st, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    run(&b, st, "ingest, memory+sqlite");
    run(&b, st, "again (all unchanged)");
    ch_intel_store_close(st);
    if (argc <= 2) {
        char wal[96];
        unlink(db);
        snprintf(wal, sizeof wal, "%s-wal", db);
        unlink(wal);
        snprintf(wal, sizeof wal, "%s-shm", db);
        unlink(wal);
    }
    ch_buf_free(&b);
    return 0;
}
