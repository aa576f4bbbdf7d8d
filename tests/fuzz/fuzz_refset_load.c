/*
 * fuzz_refset_load.c - the block-list loader and the sets behind it, on arbitrary bytes.
 *
 * The first byte picks the set (domain with an ip side set, exact domain, ip, case-insensitive
 * string, number); the rest is loaded as a list with small caps, so that long lines, full sets
 * and every line classifier are reached. Then invariants that must hold whatever was loaded:
 * every element is found again by its own text (a domain or string or number by itself, a
 * network by its first address with a prefix at least as long), adding its text again only
 * refreshes it, every input line is a harmless query, and removing every element during
 * iteration leaves an empty set with no keys.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enrich/refset.h"

static void check_set(ch_refset *s)
{
    size_t cur = 0, seen = 0, count = ch_refset_count(s);
    const ch_refset_elem *e;
    char text[CH_REFSET_STRING_MAX + 1];
    while ((e = ch_refset_next(s, &cur)) != NULL) {
        seen++;
        const ch_refset_elem *hit = NULL;
        size_t n = ch_refset_elem_text(s, e, text, sizeof text);
        if (n >= sizeof text)
            abort();
        switch (ch_refset_type_of(s)) {
        case CH_REFSET_IP: {
            ch_ip a;
            memcpy(a.b, e->key.ip, 16);
            a.family = e->family;
            if (!ch_refset_contains_ip(s, &a, 0, &hit) || hit->family != e->family ||
                hit->len < e->len)
                abort();
            break;
        }
        default:
            if (!ch_refset_contains(s, text, n, 0, &hit) || hit != e)
                abort();
            break;
        }
        ch_refset_meta m = ch_refset_meta_make("fuzz", 0);
        if (ch_refset_add(s, text, n, &m, NULL) != 0 || ch_refset_count(s) != count)
            abort();
    }
    if (seen != count)
        abort();
}

static void empty_set(ch_refset *s)
{
    size_t cur = 0;
    const ch_refset_elem *e;
    while ((e = ch_refset_next(s, &cur)) != NULL)
        ch_refset_remove_elem(s, e);
    if (ch_refset_count(s) != 0 || ch_refset_keys(s) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const ch_refset_type types[] = {CH_REFSET_DOMAIN, CH_REFSET_DOMAIN, CH_REFSET_IP,
                                           CH_REFSET_STRING, CH_REFSET_NUMBER};
    unsigned mode = data[0] % 5;
    ch_refset_opts so = {.max_elems = 64, .max_entry_len = 200};
    if (mode == 1)
        so.flags = CH_REFSET_EXACT;
    if (mode == 3)
        so.flags = CH_REFSET_NOCASE;
    ch_refset *s = NULL, *ips = NULL;
    ch_error err = {0};
    if (ch_refset_new(&s, "fuzz", types[mode], &so, &err) != CH_OK)
        abort();
    ch_refset_opts io = {.max_elems = 64};
    if (ch_refset_new(&ips, "fuzz_ip", CH_REFSET_IP, &io, &err) != CH_OK)
        abort();
    ch_refset_load_opts o = {
        .meta = ch_refset_meta_make("fuzz", 0), .ip_set = ips, .max_line = 512};
    ch_diag d;
    ch_diag_init(&d, NULL);
    ch_refset_load_stats st = {0};
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (ch_refset_load_mem(s, text, len, "fuzz", &o, &d, &st, &err) != CH_OK)
        abort();
    if (st.added != ch_refset_count(s) + ch_refset_count(ips))
        abort();

    /* Every line is a query of every kind. */
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        ch_refset_contains(s, text + i, end - i, 0, NULL);
        ch_refset_contains(ips, text + i, end - i, 0, NULL);
        ch_refset_contains_domain(s, text + i, end - i, 0, NULL);
        i = end + 1;
    }
    check_set(s);
    check_set(ips);
    ch_refset_expire(s, 1);
    empty_set(s);
    empty_set(ips);
    ch_refset_free(s);
    ch_refset_free(ips);
    return 0;
}
