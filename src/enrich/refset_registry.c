/*
 * refset_registry.c - the named collection of reference sets that `in $name` resolves against.
 *
 * Names are looked up when rules are compiled, never per event, and a deployment has tens to
 * hundreds of sets, so an array searched linearly is the honest structure: O(sets) per lookup,
 * in insertion order for listing and export. CH_REFSETS_MAX caps it.
 */
#include "enrich/refset_int.h"

#include "core/mem.h"

struct ch_refsets {
    ch_refset **sets;
    size_t n, cap;
};

int ch_refsets_new(ch_refsets **out)
{
    *out = ch_calloc(1, sizeof **out);
    return *out ? CH_OK : CH_ENOMEM;
}

void ch_refsets_free(ch_refsets *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        ch_refset_free(r->sets[i]);
    ch_free(r->sets);
    ch_free(r);
}

static size_t find(const ch_refsets *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->n; i++) {
        const char *n = r->sets[i]->name;
        if (strncmp(n, name, len) == 0 && n[len] == '\0')
            return i;
    }
    return SIZE_MAX;
}

int ch_refsets_put(ch_refsets *r, ch_refset *set, ch_error *err)
{
    if (find(r, set->name, strlen(set->name)) != SIZE_MAX)
        return ch_error_set(err, CH_EUSAGE, "reference set '%s' already exists", set->name);
    if (r->n >= CH_REFSETS_MAX)
        return ch_error_set(err, CH_ELIMIT, "more than %d reference sets", CH_REFSETS_MAX);
    if (r->n == r->cap) {
        ch_refset **s = ch_grow(r->sets, &r->cap, 16, sizeof *s);
        if (s == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        r->sets = s;
    }
    r->sets[r->n++] = set;
    return CH_OK;
}

int ch_refsets_ensure(ch_refsets *r, const char *name, ch_refset_type type,
                      const ch_refset_opts *opts, ch_refset **out, ch_error *err)
{
    *out = NULL;
    size_t i = find(r, name, strlen(name));
    if (i != SIZE_MAX) {
        if (r->sets[i]->type != type)
            return ch_error_set(err, CH_EUSAGE, "reference set '%s' is of type %s, not %s", name,
                                ch_refset_type_name(r->sets[i]->type), ch_refset_type_name(type));
        *out = r->sets[i];
        return CH_OK;
    }
    ch_refset *s;
    int rc = ch_refset_new(&s, name, type, opts, err);
    if (rc != CH_OK)
        return rc;
    if ((rc = ch_refsets_put(r, s, err)) != CH_OK) {
        ch_refset_free(s);
        return rc;
    }
    *out = s;
    return CH_OK;
}

ch_refset *ch_refsets_get(const ch_refsets *r, const char *name, size_t len)
{
    size_t i = find(r, name, len);
    return i == SIZE_MAX ? NULL : r->sets[i];
}

ch_refset *ch_refsets_take(ch_refsets *r, const char *name, size_t len)
{
    size_t i = find(r, name, len);
    if (i == SIZE_MAX)
        return NULL;
    ch_refset *s = r->sets[i];
    memmove(&r->sets[i], &r->sets[i + 1], (r->n - i - 1) * sizeof *r->sets);
    r->n--;
    return s;
}

size_t ch_refsets_count(const ch_refsets *r) { return r->n; }

ch_refset *ch_refsets_at(const ch_refsets *r, size_t i) { return i < r->n ? r->sets[i] : NULL; }
