/*
 * field.h - field paths over a normalized event, resolved once and read many times.
 *
 * A path string ("user.name", "requestParameters.instanceType", "tcp-flags") is resolved at
 * rule-compile time into a ch_field_ref. A path that names a normalized slot (the table in
 * field.c, listed by ch_field_name_list) becomes a direct read of a typed member of ch_event:
 * no string work per event. Any other path is a raw path: its '.'-separated segments are
 * split once, with their lengths, and read per event from the record's parsed JSON document
 * (one object lookup per segment; a segment that meets an array fans out over every element,
 * so "any element matches"), or, for columnar sources (flow logs), from the header names and
 * values, where the whole path is one flat name and "-" means missing.
 *
 * Values come out typed (ch_value) through a visitor, so that every operator tests every value
 * of a multi-valued path. JSON null, empty strings and "-" in flow columns are missing values:
 * a path with no value is "missing", as in ECS.
 *
 * Ownership: a ch_field_ref is allocated by ch_field_resolve and freed by ch_field_ref_free;
 * it is immutable and may be shared between threads. Values handed to a visitor borrow from
 * the event (or from static storage) and are valid only during the call. A ch_field_cache is
 * per thread scratch owned by the caller.
 */
#ifndef CH_CORE_FIELD_H
#define CH_CORE_FIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/event.h"
#include "core/ip.h"

#define CH_FIELD_MAX_PATH 255     /* bytes in a path */
#define CH_FIELD_MAX_SEGMENTS 32  /* '.'-separated segments in a raw path */
#define CH_FIELD_MAX_ARRAY_NEST 8 /* arrays inside arrays flattened before giving up */

typedef enum ch_vtype {
    CH_V_NONE = 0, /* declared type of a raw path: anything */
    CH_V_STR,
    CH_V_INT,
    CH_V_DBL,
    CH_V_BOOL,
    CH_V_IP,
    CH_V_OBJ, /* a JSON object at the end of a raw path: present, equal to nothing */
} ch_vtype;

/* One typed value. Strings are views (not NUL-terminated). */
typedef struct ch_value {
    ch_vtype type;
    union {
        ch_sv s;
        int64_t i;
        double d;
        bool b;
        ch_ip ip;
    } u;
} ch_value;

/* Documentation of a normalized field, for `coinhound help fields` and docs/. */
typedef struct ch_field_info {
    const char *name; /* "source.geo.country_iso_code" */
    ch_vtype type;    /* type of the values it yields */
    bool multi;       /* may yield several values */
    bool is_time;     /* an epoch-ms time: string literals are read as ISO 8601 */
    const char *doc;  /* one line */
} ch_field_info;

/* The i-th normalized field (0-based), NULL past the end. */
const ch_field_info *ch_field_name_list(size_t i);

typedef struct ch_field_ref ch_field_ref;

/* Resolve path[0..n). CH_EPARSE for an empty path or empty segment ("a..b"), CH_ELIMIT past
 * CH_FIELD_MAX_PATH or CH_FIELD_MAX_SEGMENTS, CH_ENOMEM. */
int ch_field_resolve(const char *path, size_t n, ch_field_ref **out, ch_error *err);
void ch_field_ref_free(ch_field_ref *r);

const char *ch_field_ref_path(const ch_field_ref *r); /* NUL-terminated, as resolved */
/* Info of the normalized slot, or NULL for a raw path. */
const ch_field_info *ch_field_ref_info(const ch_field_ref *r);
/* A raw path's last segment ("instanceType" of requestParameters.instanceType): the key a JSON
 * record must hold for the path to have a value. Empty for a normalized slot. */
ch_sv ch_field_ref_last_key(const ch_field_ref *r);

/* Per-thread memo of where a raw flat name sits in a columnar header. Flow logs share one
 * header array across the records of a file, so a hit costs one compare instead of a scan.
 * Zero it (or call ch_field_cache_init) before first use. */
#define CH_FIELD_CACHE_SLOTS 64
typedef struct ch_field_cache {
    struct {
        const void *ref;
        const void *names;
        uint32_t count, idx;
    } e[CH_FIELD_CACHE_SLOTS];
} ch_field_cache;
void ch_field_cache_init(ch_field_cache *c);

/* Called once per value; return true to stop the visit early. */
typedef bool (*ch_field_visit_fn)(void *ctx, const ch_value *v);

/* Visit every value of r in ev (cache may be NULL). Returns the number of values visited,
 * counting the one that stopped the visit; 0 means the field is missing. */
size_t ch_field_visit(const ch_field_ref *r, const ch_event *ev, ch_field_cache *cache,
                      ch_field_visit_fn fn, void *ctx);

/* The first value of r in ev; false when missing. */
bool ch_field_first(const ch_field_ref *r, const ch_event *ev, ch_field_cache *cache,
                    ch_value *out);

/* A value as text: strings as they are, numbers in decimal, addresses in their canonical
 * form, booleans as true/false, objects as "". The result borrows from v or from buf. */
#define CH_VALUE_TEXT_MAX 64
ch_sv ch_value_text(const ch_value *v, char buf[CH_VALUE_TEXT_MAX]);

/* Strict number parse of a whole view: [-+]digits[.digits][e[-+]digits]. Sets *is_int and
 * *i when it is an integer that fits int64, always *d. */
bool ch_parse_number(const char *s, size_t n, bool *is_int, int64_t *i, double *d);

#endif
