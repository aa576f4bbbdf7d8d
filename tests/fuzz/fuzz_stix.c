/*
 * fuzz_stix.c - STIX ingestion on arbitrary bytes: the pattern compiler alone (first byte odd)
 * or a whole bundle (first byte even), ingested twice into the same sets and catalog.
 *
 * Invariants: the compiler never returns loadable comparisons with an error, every comparison
 * it returns is NUL-terminated at its length; ingesting the same bundle a second time adds no
 * element (every version is then "not newer"); and every element in the sets traces back to an
 * indicator in the catalog (a hit can always name its indicator).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "intel/stix.h"

static void check_pattern(const uint8_t *data, size_t size)
{
    ch_arena a;
    ch_arena_init(&a, 4096);
    ch_stix_pattern p;
    ch_error err = {0};
    int rc = ch_stix_pattern_compile((const char *)data, size, &a, &p, &err);
    if (rc < 0 && p.ncmps != 0)
        abort();
    for (size_t i = 0; i < p.ncmps; i++)
        if (p.cmps[i].value[p.cmps[i].len] != '\0' || p.cmps[i].obs < CH_STIX_DOMAIN ||
            p.cmps[i].obs > CH_STIX_URL)
            abort();
    ch_arena_free(&a);
}

static void check_bundle(const uint8_t *data, size_t size)
{
    ch_refsets *sets = NULL;
    ch_intel_catalog *cat = NULL;
    ch_stix_ctx *ctx = NULL;
    ch_error err = {0};
    ch_stix_opts o = {.feed = "fuzz", .now_ms = 1};
    if (ch_refsets_new(&sets) < 0 || ch_intel_catalog_new(&cat) < 0 ||
        ch_stix_ctx_new(&ctx, sets, cat, NULL, &o, &err) < 0)
        abort();
    int rc1 = ch_stix_ingest_mem(ctx, (const char *)data, size, "fuzz", NULL, &err);
    uint64_t added = ch_stix_ctx_stats(ctx)->elements_added;
    int rc2 = ch_stix_ingest_mem(ctx, (const char *)data, size, "fuzz", NULL, &err);
    if (rc1 == 0 && rc2 == 0 && ch_stix_ctx_stats(ctx)->elements_added != added)
        abort();
    for (size_t i = 0; i < ch_refsets_count(sets); i++) {
        ch_refset *s = ch_refsets_at(sets, i);
        size_t cur = 0;
        const ch_refset_elem *e;
        while ((e = ch_refset_next(s, &cur)) != NULL)
            if (ch_intel_indicator_lookup(cat, e->indicator, strlen(e->indicator)) == NULL)
                abort();
    }
    ch_stix_ctx_free(ctx);
    ch_intel_catalog_free(cat);
    ch_refsets_free(sets);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        check_pattern(data + 1, size - 1);
    else
        check_bundle(data + 1, size - 1);
    return 0;
}
