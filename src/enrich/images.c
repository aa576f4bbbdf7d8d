/*
 * images.c - image knowledge: the pack's catalogue, what the logs reveal of each AMI, the
 * verdict, and the `images` table of the store (see images.h for what and why).
 *
 * Records live in one array (index = record number) found by an open-addressing index on the
 * image id (core/hindex.h); a record's strings are owned by it. A record changed since the last
 * save carries `dirty`; ch_images_save walks the array once (O(records)) and upserts the dirty
 * ones, so a checkpoint with nothing learned costs one pass and no SQL.
 *
 * Only facts are merged: a field already known is kept unless the new fact gives more (a name
 * where none was), so that the order of DescribeImages and RunInstances does not matter and a
 * replay changes nothing.
 */
#include "enrich/images.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/hash.h"
#include "core/hindex.h"
#include "core/mem.h"
#include "core/readfile.h"
#include "core/sqlite_util.h"
#include "core/yaml_util.h"
#include "enrich/refset.h"

#define CATALOGUE_FILE "images.yaml"
#define CATALOGUE_MAX_FILE (1u << 20)

typedef struct cat_entry {
    char *os, *code, *owner, *text, *source; /* NULL: not a condition */
} cat_entry;

typedef struct image_rec {
    char *id, *name, *desc, *owner, *codes; /* codes: joined with ',' */
    const char *os;                         /* borrowed from the catalogue, NULL = none */
    int64_t first_seen, last_seen;
    bool dirty;
} image_rec;

struct ch_images {
    cat_entry *cat;
    size_t ncat;
    image_rec *recs;
    size_t nrecs, cap;
    ch_hindex ix;
    ch_refsets *sets;
    ch_sql sql;
    bool has_store;
    ch_images_stats st;
};

/* ---- catalogue ----------------------------------------------------------------------------- */

typedef struct loader {
    const char *file;
    ch_error *err;
} loader;

static int fail(loader *L, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(loader *L, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ch_yaml_vfail(L->err, L->file, "image catalogue", n, CH_EPARSE, fmt, ap);
    va_end(ap);
    return rc;
}

static void cat_free(cat_entry *e)
{
    ch_free(e->os);
    ch_free(e->code);
    ch_free(e->owner);
    ch_free(e->text);
    ch_free(e->source);
}

static int want_text(loader *L, const yaml_node_t *v, const char *key, char **out)
{
    size_t n = 0;
    const char *s = ch_yaml_scalar(v, &n);
    if (s == NULL || n == 0 || n > CH_IMAGES_MAX_TEXT || memchr(s, '\0', n) != NULL)
        return fail(L, v, "%s: expected a non-empty text of at most %u bytes", key,
                    CH_IMAGES_MAX_TEXT);
    if (*out != NULL)
        return fail(L, v, "%s given twice", key);
    if ((*out = ch_strndup(s, n)) == NULL)
        return ch_error_set(L->err, CH_ENOMEM, "out of memory");
    return 0;
}

static int load_entry(loader *L, yaml_document_t *doc, const yaml_node_t *n, cat_entry *e)
{
    if (n == NULL || n->type != YAML_MAPPING_NODE)
        return fail(L, n, "an entry must be a mapping {os, product_code|owner|text, source}");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(doc, p->value);
        char **slot = ch_yaml_key_is(k, "os")             ? &e->os
                      : ch_yaml_key_is(k, "product_code") ? &e->code
                      : ch_yaml_key_is(k, "owner")        ? &e->owner
                      : ch_yaml_key_is(k, "text")         ? &e->text
                      : ch_yaml_key_is(k, "source")       ? &e->source
                                                          : NULL;
        if (slot == NULL) {
            size_t kl = 0;
            const char *ks = ch_yaml_scalar(k, &kl);
            return fail(L, k, "unknown key '%.*s' (os, product_code, owner, text, source)",
                        ks != NULL ? (int)(kl > 64 ? 64 : kl) : 1, ks != NULL ? ks : "?");
        }
        int rc = want_text(L, v, ch_yaml_scalar(k, NULL), slot);
        if (rc < 0)
            return rc;
    }
    if (e->os == NULL)
        return fail(L, n, "an entry needs os: what the image runs");
    if (e->code == NULL && e->owner == NULL && e->text == NULL)
        return fail(L, n, "an entry needs product_code, owner or text (else it names every image)");
    if (e->source == NULL)
        return fail(L, n, "an entry needs source: where its facts come from");
    return 0;
}

static int load_catalogue(ch_images *im, const char *name, const char *text, size_t len,
                          ch_error *err)
{
    loader L = {name, err};
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = ch_yaml_load_error(err, name, &parser);
        yaml_parser_delete(&parser);
        return rc;
    }
    int rc = 0;
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    const yaml_node_t *list = NULL;
    if (root == NULL) /* an empty file: an empty catalogue */
        goto done;
    if (root->type != YAML_MAPPING_NODE) {
        rc = fail(&L, root, "expected a mapping with the key images");
        goto done;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        if (!ch_yaml_key_is(k, "images")) {
            rc = fail(&L, k, "unknown key (the catalogue has only images)");
            goto done;
        }
        list = yaml_document_get_node(&doc, p->value);
    }
    if (list == NULL)
        goto done;
    if (list->type != YAML_SEQUENCE_NODE) {
        rc = fail(&L, list, "images: expected a list of entries");
        goto done;
    }
    size_t n = ch_yaml_seq_len(list);
    if (n > CH_IMAGES_MAX_CATALOGUE) {
        rc = fail(&L, list, "images: %zu entries, more than %u", n, CH_IMAGES_MAX_CATALOGUE);
        goto done;
    }
    if (n > 0 && (im->cat = ch_calloc(n, sizeof *im->cat)) == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto done;
    }
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top;
         it++) {
        rc = load_entry(&L, &doc, yaml_document_get_node(&doc, *it), &im->cat[im->ncat]);
        im->ncat++; /* counted even when it failed: its fields are freed with the others */
        if (rc < 0)
            goto done;
    }
done:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    im->st.catalogue = im->ncat;
    return rc;
}

/* ---- classification ------------------------------------------------------------------------ */

static bool contains_nocase(const char *hay, const char *needle)
{
    size_t hn = strlen(hay), nn = strlen(needle);
    for (size_t i = 0; nn <= hn && i <= hn - nn; i++) {
        size_t j = 0;
        while (j < nn) {
            unsigned char a = (unsigned char)hay[i + j], b = (unsigned char)needle[j];
            if ((a | (a >= 'A' && a <= 'Z' ? 0x20 : 0)) != (b | (b >= 'A' && b <= 'Z' ? 0x20 : 0)))
                break;
            j++;
        }
        if (j == nn)
            return true;
    }
    return false;
}

/* Is code one of the ','-joined codes? */
static bool has_code(const char *codes, const char *code)
{
    size_t n = strlen(code);
    for (const char *p = codes; *p != '\0';) {
        const char *e = strchr(p, ',');
        size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
        if (l == n && memcmp(p, code, n) == 0)
            return true;
        p += l + (e != NULL);
    }
    return false;
}

static const char *classify(const ch_images *im, const image_rec *r)
{
    for (size_t i = 0; i < im->ncat; i++) {
        const cat_entry *e = &im->cat[i];
        if (e->code != NULL && (r->codes == NULL || !has_code(r->codes, e->code)))
            continue;
        if (e->owner != NULL && (r->owner == NULL || strcmp(r->owner, e->owner) != 0))
            continue;
        if (e->text != NULL && !((r->name != NULL && contains_nocase(r->name, e->text)) ||
                                 (r->desc != NULL && contains_nocase(r->desc, e->text))))
            continue;
        return e->os;
    }
    return NULL;
}

static int flag(ch_images *im, const image_rec *r, ch_error *err)
{
    if (im->sets == NULL || r->os == NULL)
        return 0;
    ch_refset *s = ch_refsets_get(im->sets, CH_IMAGES_SET, strlen(CH_IMAGES_SET));
    if (s == NULL) {
        ch_refset_opts o = {0};
        int rc = ch_refsets_ensure(im->sets, CH_IMAGES_SET, CH_REFSET_STRING, &o, &s, err);
        if (rc < 0)
            return rc;
    }
    ch_refset_meta m = ch_refset_meta_make("images", r->first_seen);
    m.indicator = r->os; /* an offense's details show what the image runs */
    ch_error se = {0};
    int rc = ch_refset_add(s, r->id, strlen(r->id), &m, &se);
    return rc < 0 ? ch_error_set(err, rc, "image %s: %s", r->id, se.msg) : 0;
}

/* ---- records ------------------------------------------------------------------------------- */

typedef struct key {
    const char *p;
    size_t n;
} key;

static bool rec_eq(const void *item, const void *k)
{
    const image_rec *r = item;
    const key *kk = k;
    return strlen(r->id) == kk->n && memcmp(r->id, kk->p, kk->n) == 0;
}

static image_rec *find(const ch_images *im, const char *id, size_t n)
{
    if (im->ix.cap == 0)
        return NULL;
    key k = {id, n};
    size_t j = ch_hindex_probe(&im->ix, ch_hash_bytes(id, n), rec_eq, &k);
    return im->ix.slots[j].item;
}

static void reindex(ch_images *im)
{
    ch_hindex_clear(&im->ix);
    for (size_t i = 0; i < im->nrecs; i++) {
        key k = {im->recs[i].id, strlen(im->recs[i].id)};
        uint64_t h = ch_hash_bytes(k.p, k.n);
        size_t j = ch_hindex_probe(&im->ix, h, rec_eq, &k);
        im->ix.slots[j].h = h;
        im->ix.slots[j].item = &im->recs[i];
        im->ix.n++;
    }
}

/* The record of id, made when new (NULL at the cap or out of memory, counted). */
static image_rec *get_or_add(ch_images *im, const char *id, size_t n, int64_t ts)
{
    image_rec *r = find(im, id, n);
    if (r != NULL)
        return r;
    if (im->nrecs >= CH_IMAGES_MAX) {
        im->st.dropped++;
        return NULL;
    }
    if (im->nrecs == im->cap) {
        image_rec *nr = ch_grow(im->recs, &im->cap, 64, sizeof *nr);
        if (nr == NULL) {
            im->st.dropped++;
            return NULL;
        }
        im->recs = nr;
        /* The index points into the array, which moved. */
        if (ch_hindex_reserve(&im->ix, im->cap, 128) < 0) {
            im->st.dropped++;
            return NULL;
        }
        reindex(im);
    }
    r = &im->recs[im->nrecs];
    memset(r, 0, sizeof *r);
    if ((r->id = ch_strndup(id, n)) == NULL) {
        im->st.dropped++;
        return NULL;
    }
    r->first_seen = r->last_seen = ts;
    key k = {r->id, n};
    uint64_t h = ch_hash_bytes(id, n);
    size_t j = ch_hindex_probe(&im->ix, h, rec_eq, &k);
    im->ix.slots[j].h = h;
    im->ix.slots[j].item = r;
    im->ix.n++;
    im->nrecs++;
    im->st.learned = im->nrecs;
    r->dirty = true;
    return r;
}

/* Fill *slot with s when it is unknown or shorter (a fact that says more). */
static bool merge_text(char **slot, const char *s, size_t n)
{
    if (s == NULL || n == 0)
        return false;
    if (n > CH_IMAGES_MAX_TEXT)
        n = CH_IMAGES_MAX_TEXT;
    if (*slot != NULL && strlen(*slot) >= n)
        return false;
    char *c = ch_strndup(s, n);
    if (c == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (c[i] == '\0')
            c[i] = ' ';
    ch_free(*slot);
    *slot = c;
    return true;
}

static bool merge_code(image_rec *r, const char *s, size_t n)
{
    if (s == NULL || n == 0 || n > 64 || memchr(s, ',', n) != NULL || memchr(s, '\0', n) != NULL)
        return false;
    char tmp[65];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    size_t have = 0;
    if (r->codes != NULL) {
        if (has_code(r->codes, tmp))
            return false;
        have = 1;
        for (const char *p = r->codes; *p; p++)
            have += *p == ',';
        if (have >= CH_IMAGES_MAX_CODES)
            return false;
    }
    size_t old = r->codes != NULL ? strlen(r->codes) : 0;
    char *c = ch_malloc(old + n + 2);
    if (c == NULL)
        return false;
    if (old > 0) {
        memcpy(c, r->codes, old);
        c[old++] = ',';
    }
    memcpy(c + old, tmp, n + 1);
    ch_free(r->codes);
    r->codes = c;
    return true;
}

static bool jstr(ch_json_val obj, const char *k, const char **s, size_t *n)
{
    ch_json_val v;
    *s = NULL;
    *n = 0;
    return ch_json_obj_get(obj, k, strlen(k), &v) && ch_json_get_str(v, s, n);
}

/* One image's facts from an item of a response (or of the request, for RegisterImage). */
static void learn(ch_images *im, const ch_event *ev, ch_json_val item, const char *idkey,
                  ch_json_val names, ch_sv owner)
{
    const char *id, *s;
    size_t idn, n;
    if (!jstr(item, idkey, &id, &idn) || idn == 0 || idn > 64)
        return;
    image_rec *r = get_or_add(im, id, idn, ev->ts_ms);
    if (r == NULL)
        return;
    bool changed = false;
    if (jstr(names, "name", &s, &n))
        changed |= merge_text(&r->name, s, n);
    if (jstr(names, "description", &s, &n))
        changed |= merge_text(&r->desc, s, n);
    if (jstr(item, "imageOwnerId", &s, &n))
        changed |= merge_text(&r->owner, s, n);
    else if (owner.n > 0)
        changed |= merge_text(&r->owner, owner.p, owner.n);
    ch_json_val pc, items, it;
    ch_json_iter iter;
    if (ch_json_obj_get(item, "productCodes", 12, &pc) && ch_json_obj_get(pc, "items", 5, &items) &&
        ch_json_arr_iter(items, &iter))
        while (ch_json_arr_next(&iter, &it))
            if (jstr(it, "productCode", &s, &n))
                changed |= merge_code(r, s, n);
    if (ev->ts_ms > r->last_seen) {
        r->last_seen = ev->ts_ms;
        r->dirty = true;
    }
    if (changed) {
        r->dirty = true;
        const char *was = r->os;
        r->os = classify(im, r);
        if (r->os != NULL && was == NULL) {
            im->st.flagged++;
            ch_error e = {0};
            (void)flag(im, r, &e); /* a set that refuses the id leaves the rule silent: no more */
        }
    }
}

static void learn_items(ch_images *im, const ch_event *ev, ch_json_val parent, const char *set,
                        const char *idkey)
{
    ch_json_val s, items, it;
    ch_json_iter iter;
    if (!ch_json_obj_get(parent, set, strlen(set), &s) || !ch_json_obj_get(s, "items", 5, &items) ||
        !ch_json_arr_iter(items, &iter))
        return;
    ch_sv none = {NULL, 0};
    while (ch_json_arr_next(&iter, &it))
        learn(im, ev, it, idkey, it, none);
}

void ch_images_observe(ch_images *im, const ch_event *ev)
{
    if (im == NULL || ev->dataset != CH_DS_CLOUDTRAIL || !ev->has_raw_doc ||
        ev->outcome != CH_OUTCOME_SUCCESS)
        return;
    /* The action first: this runs on the merge thread for every record, and the document was
     * parsed on a worker's core, so a lookup in it is mostly cache misses (a "responseElements"
     * lookup of every record was 13% of that thread's samples; docs/BENCHMARKS.md section 68). */
    ch_sv a = ev->action;
    enum { NONE, DESCRIBE, RUN, REGISTER } kind = NONE;
    if (ch_sv_eq(a, "DescribeImages", 14))
        kind = DESCRIBE;
    else if (ch_sv_eq(a, "RunInstances", 12))
        kind = RUN;
    else if (ch_sv_eq(a, "RegisterImage", 13) || ch_sv_eq(a, "CreateImage", 11) ||
             ch_sv_eq(a, "CopyImage", 9))
        kind = REGISTER;
    ch_json_val resp, req;
    if (kind == NONE || !ch_json_obj_get(ev->raw_doc, "responseElements", 16, &resp))
        return;
    if (kind == DESCRIBE)
        learn_items(im, ev, resp, "imagesSet", "imageId");
    else if (kind == RUN)
        learn_items(im, ev, resp, "instancesSet", "imageId");
    else if (ch_json_obj_get(ev->raw_doc, "requestParameters", 17, &req))
        learn(im, ev, resp, "imageId", req, ev->account_id);
}

/* ---- store --------------------------------------------------------------------------------- */

static const char *const migrations[] = {
    /* 0 -> 1: one row per image the logs described. */
    "CREATE TABLE images ("
    " image_id TEXT PRIMARY KEY, name TEXT, description TEXT, owner_id TEXT,"
    " product_codes TEXT, os TEXT, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL)",
};

static const ch_sql_schema schema = {
    .component = "images",
    .migrations = migrations,
    .version = CH_IMAGES_SCHEMA_VERSION,
};

static void bind_opt(sqlite3_stmt *st, int i, const char *s)
{
    if (s == NULL)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static int restore(ch_images *im, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(im->sql.db, im->sql.path,
                            "SELECT image_id, name, description, owner_id, product_codes,"
                            " first_seen, last_seen FROM images ORDER BY rowid",
                            &st, err);
    if (rc < 0)
        return rc;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = ch_sql_col_text(st, 0);
        image_rec *r = get_or_add(im, id, strlen(id), sqlite3_column_int64(st, 5));
        if (r == NULL)
            continue;
        const char *t;
        if (*(t = ch_sql_col_text(st, 1)))
            merge_text(&r->name, t, strlen(t));
        if (*(t = ch_sql_col_text(st, 2)))
            merge_text(&r->desc, t, strlen(t));
        if (*(t = ch_sql_col_text(st, 3)))
            merge_text(&r->owner, t, strlen(t));
        t = ch_sql_col_text(st, 4);
        for (const char *p = t; *p != '\0';) {
            const char *e = strchr(p, ',');
            size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
            merge_code(r, p, l);
            p += l + (e != NULL);
        }
        r->last_seen = sqlite3_column_int64(st, 6);
        r->dirty = false;
        r->os = classify(im, r); /* today's catalogue, not the stored verdict */
        if (r->os != NULL) {
            im->st.flagged++;
            if ((rc = flag(im, r, err)) < 0)
                break;
        }
        im->st.restored++;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = ch_sql_error(im->sql.db, im->sql.path, err, "reading images");
    sqlite3_finalize(st);
    return rc;
}

int ch_images_save(ch_images *im, ch_error *err)
{
    if (im == NULL || !im->has_store)
        return 0;
    bool any = false;
    for (size_t i = 0; i < im->nrecs && !any; i++)
        any = im->recs[i].dirty;
    if (!any)
        return 0;
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_begin(&im->sql, err);
    if (rc < 0)
        return rc;
    rc = ch_sql_prepare(im->sql.db, im->sql.path,
                        "INSERT INTO images (image_id, name, description, owner_id, product_codes,"
                        " os, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                        " ON CONFLICT (image_id) DO UPDATE SET name = excluded.name,"
                        " description = excluded.description, owner_id = excluded.owner_id,"
                        " product_codes = excluded.product_codes, os = excluded.os,"
                        " first_seen = min(first_seen, excluded.first_seen),"
                        " last_seen = max(last_seen, excluded.last_seen)",
                        &st, err);
    for (size_t i = 0; rc == 0 && i < im->nrecs; i++) {
        const image_rec *r = &im->recs[i];
        if (!r->dirty)
            continue;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
        bind_opt(st, 2, r->name);
        bind_opt(st, 3, r->desc);
        bind_opt(st, 4, r->owner);
        bind_opt(st, 5, r->codes);
        bind_opt(st, 6, r->os);
        sqlite3_bind_int64(st, 7, r->first_seen);
        sqlite3_bind_int64(st, 8, r->last_seen);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = ch_sql_error(im->sql.db, im->sql.path, err, "saving images");
    }
    sqlite3_finalize(st);
    if (rc < 0) {
        ch_sql_rollback(&im->sql);
        return rc;
    }
    if ((rc = ch_sql_commit(&im->sql, err)) < 0)
        return rc;
    /* Clean only once the rows are on disk: a failed save is retried at the next checkpoint. */
    for (size_t i = 0; i < im->nrecs; i++)
        im->recs[i].dirty = false;
    return 0;
}

/* ---- object -------------------------------------------------------------------------------- */

static int new_images(ch_refsets *sets, ch_images **out, ch_error *err)
{
    *out = ch_calloc(1, sizeof **out);
    if (*out == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    (*out)->sets = sets;
    return 0;
}

int ch_images_open_mem(const char *name, const char *yaml, size_t n, ch_refsets *sets,
                       ch_images **out, ch_error *err)
{
    int rc = new_images(sets, out, err);
    if (rc == 0 && (rc = load_catalogue(*out, name, yaml, n, err)) < 0) {
        ch_images_free(*out);
        *out = NULL;
    }
    return rc;
}

int ch_images_open(const char *pack_dir, const char *db_path, ch_refsets *sets, ch_images **out,
                   ch_error *err)
{
    char path[4200];
    char *text = NULL;
    size_t n = 0;
    int rc = new_images(sets, out, err);
    if (rc < 0)
        return rc;
    ch_images *im = *out;
    if (pack_dir != NULL) {
        if (snprintf(path, sizeof path, "%s/%s", pack_dir, CATALOGUE_FILE) >= (int)sizeof path) {
            rc = ch_error_set(err, CH_ELIMIT, "%s: pack path too long", pack_dir);
            goto done;
        }
        rc = ch_read_file(path, CATALOGUE_MAX_FILE, &text, &n, err);
        if (rc == CH_ENOTFOUND)
            rc = 0; /* a pack without a catalogue: nothing is known in advance */
        else if (rc == 0)
            rc = load_catalogue(im, path, text, n, err);
        if (rc < 0)
            goto done;
    }
    if (db_path != NULL) {
        if ((rc = ch_sql_connect(&im->sql, db_path, true, &schema, err)) < 0)
            goto done;
        im->has_store = true;
        rc = restore(im, err);
    }
done:
    ch_free(text);
    if (rc < 0) {
        ch_images_free(im);
        *out = NULL;
    }
    return rc;
}

void ch_images_free(ch_images *im)
{
    if (im == NULL)
        return;
    for (size_t i = 0; i < im->ncat; i++)
        cat_free(&im->cat[i]);
    ch_free(im->cat);
    for (size_t i = 0; i < im->nrecs; i++) {
        image_rec *r = &im->recs[i];
        ch_free(r->id);
        ch_free(r->name);
        ch_free(r->desc);
        ch_free(r->owner);
        ch_free(r->codes);
    }
    ch_free(im->recs);
    ch_hindex_free(&im->ix);
    if (im->has_store)
        ch_sql_close(&im->sql);
    ch_free(im);
}

int ch_images_rebind(ch_images *im, ch_refsets *sets, ch_error *err)
{
    if (im == NULL)
        return 0;
    im->sets = sets;
    for (size_t i = 0; i < im->nrecs; i++) {
        int rc = flag(im, &im->recs[i], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

bool ch_images_get(const ch_images *im, const char *id, size_t n, ch_image_info *out)
{
    const image_rec *r = im != NULL ? find(im, id, n) : NULL;
    if (r == NULL)
        return false;
    out->id = r->id;
    out->name = r->name ? r->name : "";
    out->description = r->desc ? r->desc : "";
    out->owner = r->owner ? r->owner : "";
    out->codes = r->codes ? r->codes : "";
    out->os = r->os ? r->os : "";
    out->first_seen = r->first_seen;
    out->last_seen = r->last_seen;
    return true;
}

void ch_images_stats_get(const ch_images *im, ch_images_stats *out)
{
    memset(out, 0, sizeof *out);
    if (im != NULL)
        *out = im->st;
}
