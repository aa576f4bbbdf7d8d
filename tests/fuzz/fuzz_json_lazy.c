/*
 * fuzz_json_lazy.c - libFuzzer target for the lazy on-demand reader of raw paths (core/json.h:
 * ch_json_lazy), which full scans of the event store use instead of each record's document.
 * Input is "path \n JSON text". The reader must never crash on any text, and wherever the DOM
 * parser accepts the text and the reader loads it, the path's values through the reader
 * (ch_field_visit with raw_lazy) must be the DOM's values (raw_doc), in order, type and bytes;
 * a text the DOM accepts, that is an object and holds no backslash, must load. A difference
 * aborts the run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/field.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define MAXV 64
typedef struct got {
    ch_value v[MAXV];
    size_t n;
} got;

static bool take(void *ctx, const ch_value *v)
{
    got *g = ctx;
    if (g->n < MAXV)
        g->v[g->n++] = *v;
    return false;
}

static bool same(const ch_value *x, const ch_value *y)
{
    if (x->type != y->type)
        return false;
    switch (x->type) {
    case CH_V_STR:
        return x->u.s.n == y->u.s.n && memcmp(x->u.s.p, y->u.s.p, x->u.s.n) == 0;
    case CH_V_INT:
        return x->u.i == y->u.i;
    case CH_V_DBL:
        return memcmp(&x->u.d, &y->u.d, sizeof x->u.d) == 0;
    case CH_V_BOOL:
        return x->u.b == y->u.b;
    default:
        return true;
    }
}

static ch_json_parser *dom;
static ch_json_lazy *lazy;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    if (dom == NULL) {
        dom = ch_json_parser_new(1 << 20, 64);
        lazy = ch_json_lazy_new(1 << 20, 64);
        CHECK(dom != NULL && lazy != NULL);
    }
    const char *p = (const char *)data;
    const char *nl = memchr(p, '\n', size);
    if (nl == NULL)
        return 0;
    ch_field_ref *r = NULL;
    ch_error err = {0};
    if (ch_field_resolve(p, (size_t)(nl - p), &r, &err) < 0)
        return 0;
    const char *text = nl + 1;
    size_t n = size - (size_t)(text - p);
    if (ch_field_ref_info(r) != NULL) { /* a normalized slot, not a raw path */
        ch_field_ref_free(r);
        return 0;
    }

    ch_event a, b;
    ch_event_reset(&a);
    ch_event_reset(&b);
    bool dom_ok = ch_json_parse(dom, text, n, n, &a.raw_doc, &err) == 0;
    a.has_raw_doc = dom_ok;
    bool lazy_ok = ch_json_lazy_load(lazy, text, n) == 0;
    if (dom_ok && ch_json_typeof(a.raw_doc) == CH_JSON_OBJECT && memchr(text, '\\', n) == NULL)
        CHECK(lazy_ok);
    if (lazy_ok) {
        b.raw_lazy = lazy;
        got gb = {0};
        size_t nb = ch_field_visit(r, &b, NULL, take, &gb);
        CHECK(nb == gb.n || nb > MAXV);
        if (dom_ok) {
            got ga = {0};
            size_t na = ch_field_visit(r, &a, NULL, take, &ga);
            CHECK(na == nb);
            for (size_t i = 0; i < ga.n && i < gb.n; i++)
                CHECK(same(&ga.v[i], &gb.v[i]));
        }
    }
    ch_field_ref_free(r);
    return 0;
}
