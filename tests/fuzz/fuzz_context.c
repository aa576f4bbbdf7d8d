/*
 * fuzz_context.c - the business-context loader (enrich/context.h) on arbitrary bytes.
 *
 * Each input is loaded over a context that already holds the pack-like defaults, then applied
 * to a registry. Invariants whatever the bytes: a refused file leaves the context exactly as it
 * was (same counts, same learning period); an accepted one applies without error; the sets it
 * makes hold no more elements than the context has entries; applying twice gives the same
 * counts (the sets are refilled, not appended to).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enrich/context.h"
#include "enrich/refset.h"

static const char defaults[] = "business_countries: [GB, US]\n"
                               "networks:\n  - {cidr: 172.31.0.0/16, name: vpc}\n"
                               "images:\n  ami-0123: {os: Ubuntu}\n  ami-0bad: {os: Kali Linux}\n"
                               "learning: 24h\nunauthorized_os: [kali]\n";

static size_t set_count(ch_refsets *r, const char *name)
{
    ch_refset *s = ch_refsets_get(r, name, strlen(name));
    return s ? ch_refset_count(s) : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ch_context *c = NULL;
    ch_refsets *sets = NULL;
    ch_error err;
    if (ch_context_new(&c) < 0 || ch_refsets_new(&sets) < 0)
        abort();
    if (ch_context_load_mem(c, "defaults", defaults, sizeof defaults - 1, &err) != 0)
        abort();
    size_t nc = ch_context_country_count(c), nn = ch_context_network_count(c),
           ni = ch_context_image_count(c);
    int64_t learning = ch_context_learning_ms(c);
    int rc = ch_context_load_mem(c, "fuzz", (const char *)data, size, &err);
    if (rc < 0) {
        if (err.msg[0] == '\0' || ch_context_country_count(c) != nc ||
            ch_context_network_count(c) != nn || ch_context_image_count(c) != ni ||
            ch_context_learning_ms(c) != learning)
            abort();
    } else {
        /* Networks and images may legitimately fail to apply only for entries the set refuses;
         * the loader validates CIDRs, so applying must succeed. */
        if (ch_context_apply(c, sets, &err) != 0)
            abort();
        size_t countries = set_count(sets, "business_countries");
        size_t known = set_count(sets, "known_images");
        if (countries > ch_context_country_count(c) || known > ch_context_image_count(c) ||
            set_count(sets, "authorized_images") + set_count(sets, "unauthorized_images") != known)
            abort();
        if (ch_context_apply(c, sets, &err) != 0 ||
            set_count(sets, "business_countries") != countries ||
            set_count(sets, "known_images") != known)
            abort();
    }
    ch_refsets_free(sets);
    ch_context_free(c);
    return 0;
}
