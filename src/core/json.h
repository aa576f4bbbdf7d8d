/*
 * json.h - the C face of simdjson's DOM parser, the only C++ in the tree.
 *
 * Chosen by measurement (docs/BENCHMARKS.md): simdjson parses CloudTrail records several times
 * faster than any C JSON library on Debian. A ch_json_parser owns the parsed document; every
 * ch_json_val and every string it yields borrows from the parser and is valid only until the
 * next ch_json_parse on that parser. Values are small handles (a document pointer and a tape
 * index) passed by value. A ch_json_lazy reads a few paths of a record through simdjson's
 * on-demand API instead, for full scans that ask every record a path or two.
 */
#ifndef CH_CORE_JSON_H
#define CH_CORE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes that must be readable (any value) after the end of a buffer given to ch_json_parse
 * when the caller wants no copy. */
#define CH_JSON_PADDING 64

typedef enum ch_json_type {
    CH_JSON_INVALID = 0,
    CH_JSON_NULL,
    CH_JSON_BOOL,
    CH_JSON_INT,
    CH_JSON_UINT,
    CH_JSON_DOUBLE,
    CH_JSON_STRING,
    CH_JSON_ARRAY,
    CH_JSON_OBJECT,
} ch_json_type;

typedef struct ch_json_parser ch_json_parser;
typedef struct ch_json_val {
    uint64_t opaque[2];
} ch_json_val;
typedef struct ch_json_iter {
    uint64_t opaque[4];
} ch_json_iter;

/* max_doc: largest document accepted (CH_ELIMIT beyond); max_depth: nesting cap. */
ch_json_parser *ch_json_parser_new(size_t max_doc, size_t max_depth);
void ch_json_parser_free(ch_json_parser *p);

/* Parse buf[0..len). If cap >= len + CH_JSON_PADDING the buffer is used in place, otherwise
 * it is copied. On failure returns CH_EPARSE (or CH_ELIMIT for size/depth) with err->msg
 * naming simdjson's reason. */
int ch_json_parse(ch_json_parser *p, const char *buf, size_t len, size_t cap, ch_json_val *root,
                  ch_error *err);
/* Short machine reason of the last failure ("depth", "utf8", "syntax", "too_large", ...). */
const char *ch_json_last_reason(const ch_json_parser *p);

ch_json_type ch_json_typeof(ch_json_val v);
bool ch_json_get_str(ch_json_val v, const char **s, size_t *n);
bool ch_json_get_i64(ch_json_val v, int64_t *out);
bool ch_json_get_u64(ch_json_val v, uint64_t *out);
bool ch_json_get_f64(ch_json_val v, double *out);
bool ch_json_get_bool(ch_json_val v, bool *out);
/* Object member by key (linear in the object's size, as objects are small). */
bool ch_json_obj_get(ch_json_val obj, const char *key, size_t klen, ch_json_val *out);

/* Does obj have a member whose name pred accepts? One pass over its keys inside the library
 * (no per-member iterator call), for checks made on every record. */
bool ch_json_obj_any_key(ch_json_val obj, bool (*pred)(const char *key, size_t klen));

/* Iteration; the iterator borrows from the document. */
bool ch_json_obj_iter(ch_json_val obj, ch_json_iter *it);
bool ch_json_obj_next(ch_json_iter *it, const char **key, size_t *klen, ch_json_val *v);
bool ch_json_arr_iter(ch_json_val arr, ch_json_iter *it);
bool ch_json_arr_next(ch_json_iter *it, ch_json_val *v);

/* Append v as minified JSON text. */
int ch_json_write(ch_json_val v, ch_buf *out);
/* Minify valid JSON text (removes insignificant whitespace); out needs len bytes. */
int ch_json_minify(const char *in, size_t len, char *out, size_t *outlen);

/* An owned copy of a parsed document, for a value that must outlive the parser's next parse.
 * Ownership: ch_json_doc_new allocates (NULL when out of memory), ch_json_doc_free frees
 * (NULL-safe); a copy's values borrow from it and are valid until its next copy or free. */
typedef struct ch_json_doc ch_json_doc;
/* Where the strings of the original lie and where they lie in the copy: a string view into
 * [from, from + len) moves to the same offset from `to`. */
typedef struct ch_json_strings {
    const char *from, *to;
    size_t len;
} ch_json_strings;
ch_json_doc *ch_json_doc_new(void);
void ch_json_doc_free(ch_json_doc *d);
/* Copy the whole document v belongs to into d (reusing its memory); *out is v in the copy.
 * Returns 0 or CH_ENOMEM. */
int ch_json_doc_copy(ch_json_doc *d, ch_json_val v, ch_json_val *out, ch_json_strings *strings);

/* ---- a few paths of a record, without its whole document ----
 *
 * A full scan that asks every stored record one raw path spent a third of its time building
 * documents it then read two values of (docs/BENCHMARKS.md section 77). The on-demand API
 * validates and indexes the whole text (UTF-8 and structure) but walks only to the keys asked.
 * Taken only for an object whose text holds no backslash: every string's bytes are then its
 * value and every key compares as written, so the values are those the DOM gives; any other
 * text is refused and the caller parses it whole. */
typedef struct ch_json_lazy ch_json_lazy;
/* One segment of a path: key = path + off, len bytes. */
typedef struct ch_json_key {
    uint16_t off, len;
} ch_json_key;
/* A value met at the end of a path: type, and the member its type names (s/n for a string,
 * borrowed from the loaded copy). Objects and nulls carry nothing else. */
typedef struct ch_json_leaf {
    ch_json_type type;
    const char *s;
    size_t n;
    int64_t i;
    uint64_t u;
    double d;
    bool b;
} ch_json_leaf;
/* Called once per value; return true to stop the visit. */
typedef bool (*ch_json_leaf_fn)(void *ctx, const ch_json_leaf *v);

ch_json_lazy *ch_json_lazy_new(size_t max_doc, size_t max_depth); /* NULL: out of memory */
void ch_json_lazy_free(ch_json_lazy *l);                          /* NULL-safe */
/* Load buf[0..len) (copied, so the caller's buffer needs no padding). 0, or CH_EPARSE when the
 * text is refused (not an object, a backslash, invalid), CH_ELIMIT past max_doc, CH_ENOMEM. */
int ch_json_lazy_load(ch_json_lazy *l, const char *buf, size_t len);
/* Visit the values at keys[0..nkeys) from the loaded record's root, as the rules' DOM walk does:
 * an array met mid-path has the same key looked up in each element, one met at the end gives
 * its elements, arrays inside arrays up to max_nest deep. 0 when the walk finished or was
 * stopped, CH_EPARSE when simdjson met an error (the values before it were visited). */
int ch_json_lazy_visit(ch_json_lazy *l, const char *path, const ch_json_key *keys, unsigned nkeys,
                       unsigned max_nest, ch_json_leaf_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
