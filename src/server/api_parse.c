/*
 * api_parse.c - request-part parsers of the REST API (api_parse.h). Bodies go through the
 * simdjson wrapper (core/json.h) with a parser per call, capped at the route's body limit and
 * CH_API_BODY_DEPTH; an unknown member is refused rather than ignored, so a typo
 * ("asigned_to") is an error the client sees, not a silent no-op.
 */
#include "server/api_parse.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "enrich/refset.h"

bool ch_api_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s == '\0' || (s[0] == '0' && s[1] != '\0'))
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool take_num(const char **p, uint64_t *v)
{
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return false;
    uint64_t x = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9') {
        if (++digits > 15) /* items are counted in far less than 10^15 */
            return false;
        x = x * 10 + (uint64_t)(*s - '0');
        s++;
    }
    *v = x;
    *p = s;
    return true;
}

int ch_api_parse_range(const char *s, uint64_t *first, uint64_t *last)
{
    if (s == NULL || strncmp(s, "items=", 6) != 0)
        return CH_EPARSE;
    const char *p = s + 6;
    if (!take_num(&p, first) || *p++ != '-' || !take_num(&p, last) || *p != '\0' || *first > *last)
        return CH_EPARSE;
    return 0;
}

/* The next comma-separated item of *p: [start, end). */
static bool next_item(const char **p, const char **start, size_t *len)
{
    if (**p == '\0')
        return false;
    *start = *p;
    const char *c = strchr(*p, ',');
    *len = c ? (size_t)(c - *p) : strlen(*p);
    *p = c ? c + 1 : *p + *len;
    return true;
}

static int name_index(const char *s, size_t n, const char *const *names, size_t nnames)
{
    for (size_t i = 0; i < nnames; i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
            return (int)i;
    return -1;
}

int ch_api_parse_sort(const char *s, const char *const *names, size_t nnames, ch_api_sort_key *keys,
                      size_t *n, ch_error *err)
{
    *n = 0;
    const char *p = s, *it;
    size_t len;
    while (next_item(&p, &it, &len)) {
        bool desc = false;
        if (len > 0 && (it[0] == '-' || it[0] == '+')) {
            desc = it[0] == '-';
            it++;
            len--;
        }
        int f = name_index(it, len, names, nnames);
        if (f < 0)
            return ch_error_set(err, CH_EPARSE, "sort: \"%.*s\" is not a sortable field",
                                (int)(len > 64 ? 64 : len), it);
        if (*n >= CH_API_SORT_MAX)
            return ch_error_set(err, CH_EPARSE, "sort: at most %d fields", CH_API_SORT_MAX);
        keys[*n].field = (size_t)f;
        keys[*n].desc = desc;
        (*n)++;
    }
    if (*n == 0)
        return ch_error_set(err, CH_EPARSE, "sort: no field given");
    return 0;
}

int ch_api_parse_fields(const char *s, const char *const *names, size_t nnames, uint64_t *mask,
                        ch_error *err)
{
    *mask = 0;
    const char *p = s, *it;
    size_t len;
    while (next_item(&p, &it, &len)) {
        int f = name_index(it, len, names, nnames);
        if (f < 0 || f >= 64)
            return ch_error_set(err, CH_EPARSE, "fields: \"%.*s\" is not a field",
                                (int)(len > 64 ? 64 : len), it);
        *mask |= 1ull << f;
    }
    if (*mask == 0)
        return ch_error_set(err, CH_EPARSE, "fields: no field given");
    return 0;
}

/* Parse body as one JSON object into *root with a parser the caller frees. */
int ch__api_body_object(const char *body, size_t n, size_t depth, ch_json_parser **p,
                        ch_json_val *root, ch_error *err)
{
    /* simdjson wants some room past the document for its own rounding. */
    *p = ch_json_parser_new(n + 4096, depth);
    if (*p == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    ch_error e2 = {0};
    if (ch_json_parse(*p, body, n, n, root, &e2) < 0)
        return ch_error_set(err, CH_EPARSE, "the body is not JSON: %s", e2.msg);
    if (ch_json_typeof(*root) != CH_JSON_OBJECT)
        return ch_error_set(err, CH_EPARSE, "the body must be a JSON object");
    return 0;
}

static int parse_object(const char *body, size_t n, ch_json_parser **p, ch_json_val *root,
                        ch_error *err)
{
    return ch__api_body_object(body, n, CH_API_BODY_DEPTH, p, root, err);
}

static int get_string(ch_json_val v, const char *key, char *dst, size_t cap, ch_error *err)
{
    const char *s;
    size_t n;
    if (!ch_json_get_str(v, &s, &n))
        return ch_error_set(err, CH_EPARSE, "%s must be a string", key);
    if (n >= cap)
        return ch_error_set(err, CH_EPARSE, "%s is longer than %zu bytes", key, cap - 1);
    if (memchr(s, '\0', n) != NULL)
        return ch_error_set(err, CH_EPARSE, "%s holds a NUL character", key);
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int get_bool(ch_json_val v, const char *key, bool *out, ch_error *err)
{
    if (!ch_json_get_bool(v, out))
        return ch_error_set(err, CH_EPARSE, "%s must be true or false", key);
    return 0;
}

int ch_api_parse_offense_update(const char *body, size_t n, ch_api_update *u, ch_error *err)
{
    memset(u, 0, sizeof *u);
    ch_json_parser *p = NULL;
    ch_json_val root, v;
    int rc = parse_object(body, n, &p, &root, err);
    if (rc < 0)
        goto done;
    ch_json_iter it;
    const char *k;
    size_t kn;
    ch_json_obj_iter(root, &it);
    int members = 0;
    while (rc == 0 && ch_json_obj_next(&it, &k, &kn, &v)) {
        members++;
        char status[16];
        if (kn == 6 && memcmp(k, "status", 6) == 0) {
            ch_offense_status st;
            if ((rc = get_string(v, "status", status, sizeof status, err)) == 0 &&
                !ch_offense_status_parse(status, &st))
                rc = ch_error_set(err, CH_EPARSE, "status must be open, hidden or closed");
            u->c.set_status = true;
            u->c.status = rc == 0 ? st : CH_OFFENSE_OPEN;
        } else if (kn == 11 && memcmp(k, "assigned_to", 11) == 0) {
            u->c.set_assigned = true;
            if (ch_json_typeof(v) != CH_JSON_NULL)
                rc = get_string(v, "assigned_to", u->assigned_to, sizeof u->assigned_to, err);
            u->c.assigned_to = u->assigned_to;
        } else if (kn == 14 && memcmp(k, "closing_reason", 14) == 0) {
            u->c.set_reason = true;
            rc = get_string(v, "closing_reason", u->closing_reason, sizeof u->closing_reason, err);
            u->c.closing_reason = u->closing_reason;
        } else if (kn == 9 && memcmp(k, "follow_up", 9) == 0) {
            u->c.set_follow_up = true;
            rc = get_bool(v, "follow_up", &u->c.follow_up, err);
        } else if (kn == 9 && memcmp(k, "protected", 9) == 0) {
            u->c.set_protected = true;
            rc = get_bool(v, "protected", &u->c.protected_, err);
        } else {
            rc = ch_error_set(err, CH_EPARSE,
                              "unknown member \"%.*s\" (status, assigned_to, closing_reason, "
                              "follow_up, protected)",
                              (int)(kn > 64 ? 64 : kn), k);
        }
    }
    if (rc == 0 && members == 0)
        rc = ch_error_set(err, CH_EPARSE, "the update changes nothing");
done:
    ch_json_parser_free(p);
    return rc;
}

/* A string member copied into a ch_malloc'd buffer. */
static int dup_member(ch_json_val obj, const char *key, size_t max, char **out, ch_error *err)
{
    ch_json_val v;
    *out = NULL;
    if (!ch_json_obj_get(obj, key, strlen(key), &v))
        return ch_error_set(err, CH_EPARSE, "%s is required", key);
    const char *s;
    size_t n;
    if (!ch_json_get_str(v, &s, &n))
        return ch_error_set(err, CH_EPARSE, "%s must be a string", key);
    if (n > max)
        return ch_error_set(err, CH_EPARSE, "%s is longer than %zu bytes", key, max);
    if (memchr(s, '\0', n) != NULL)
        return ch_error_set(err, CH_EPARSE, "%s holds a NUL character", key);
    if ((*out = ch_malloc(n + 1)) == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    memcpy(*out, s, n);
    (*out)[n] = '\0';
    return 0;
}

int ch__api_only_members(ch_json_val root, const char *const *allowed, size_t na, ch_error *err)
{
    ch_json_iter it;
    const char *k;
    size_t kn;
    ch_json_val v;
    ch_json_obj_iter(root, &it);
    while (ch_json_obj_next(&it, &k, &kn, &v))
        if (name_index(k, kn, allowed, na) < 0)
            return ch_error_set(err, CH_EPARSE, "unknown member \"%.*s\"", (int)(kn > 64 ? 64 : kn),
                                k);
    return 0;
}

int ch_api_parse_note(const char *body, size_t n, char **text, ch_error *err)
{
    *text = NULL;
    ch_json_parser *p = NULL;
    ch_json_val root;
    static const char *const allowed[] = {"text"};
    int rc = parse_object(body, n, &p, &root, err);
    if (rc == 0)
        rc = ch__api_only_members(root, allowed, 1, err);
    if (rc == 0)
        rc = dup_member(root, "text", CH_TRIAGE_NOTE_MAX, text, err);
    if (rc == 0 && (*text)[0] == '\0') {
        /* The store refuses it too; saying so here gives the body's error, not the store's. */
        ch_free(*text);
        *text = NULL;
        rc = ch_error_set(err, CH_EPARSE, "text must not be empty");
    }
    ch_json_parser_free(p);
    return rc;
}

static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    volatile char *v = s;
    while (*v)
        *v++ = 0;
    ch_free(s);
}

void ch_api_login_free(ch_api_login *l)
{
    wipe_free(l->password);
    wipe_free(l->new_password);
    l->password = l->new_password = NULL;
}

int ch_api_parse_login(const char *body, size_t n, bool want_change, ch_api_login *out,
                       ch_error *err)
{
    memset(out, 0, sizeof *out);
    ch_json_parser *p = NULL;
    ch_json_val root, v;
    static const char *const login[] = {"name", "password"};
    static const char *const change[] = {"old_password", "new_password"};
    int rc = parse_object(body, n, &p, &root, err);
    if (rc < 0)
        goto done;
    if (want_change) {
        if ((rc = ch__api_only_members(root, change, 2, err)) < 0 ||
            (rc = dup_member(root, "old_password", CH_PASSWORD_MAX, &out->password, err)) < 0 ||
            (rc = dup_member(root, "new_password", CH_PASSWORD_MAX, &out->new_password, err)) < 0)
            goto done;
    } else {
        if ((rc = ch__api_only_members(root, login, 2, err)) < 0)
            goto done;
        if (!ch_json_obj_get(root, "name", 4, &v)) {
            rc = ch_error_set(err, CH_EPARSE, "name is required");
            goto done;
        }
        if ((rc = get_string(v, "name", out->name, sizeof out->name, err)) < 0 ||
            (rc = dup_member(root, "password", CH_PASSWORD_MAX, &out->password, err)) < 0)
            goto done;
    }
done:
    if (rc < 0)
        ch_api_login_free(out);
    ch_json_parser_free(p);
    return rc;
}

bool ch_api_refset_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CH_API_SET_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

int ch_api_parse_refset_create(const char *body, size_t n, char name[CH_API_SET_NAME_MAX + 1],
                               int *type, ch_error *err)
{
    ch_json_parser *p = NULL;
    ch_json_val root, v;
    static const char *const allowed[] = {"name", "type"};
    char tname[16];
    name[0] = '\0';
    int rc = parse_object(body, n, &p, &root, err);
    if (rc == 0)
        rc = ch__api_only_members(root, allowed, 2, err);
    if (rc == 0 && (!ch_json_obj_get(root, "name", 4, &v) ||
                    (rc = get_string(v, "name", name, CH_API_SET_NAME_MAX + 1, err)) < 0 ||
                    !ch_api_refset_name_ok(name)))
        rc = rc < 0 ? rc
                    : ch_error_set(err, CH_EPARSE,
                                   "name is required: 1 to 128 of A-Z a-z 0-9 _ . : -");
    ch_refset_type t;
    if (rc == 0 && (!ch_json_obj_get(root, "type", 4, &v) ||
                    (rc = get_string(v, "type", tname, sizeof tname, err)) < 0 ||
                    ch_refset_type_from_name(tname, strlen(tname), &t) < 0))
        rc = rc < 0
                 ? rc
                 : ch_error_set(err, CH_EPARSE, "type is required: ip, domain, string or number");
    if (rc == 0)
        *type = (int)t;
    ch_json_parser_free(p);
    return rc;
}

void ch_api_values_free(ch_api_values *v)
{
    ch_free(v->values);
    ch_free(v->block);
    v->values = NULL;
    v->block = NULL;
    v->n = 0;
}

int ch_api_parse_refset_values(const char *body, size_t n, ch_api_values *out, ch_error *err)
{
    memset(out, 0, sizeof *out);
    ch_json_parser *p = NULL;
    ch_json_val root, arr, v;
    ch_json_iter it;
    static const char *const allowed[] = {"values", "ttl", "source"};
    int rc = parse_object(body, n, &p, &root, err);
    if (rc == 0)
        rc = ch__api_only_members(root, allowed, 3, err);
    if (rc < 0)
        goto done;
    if (!ch_json_obj_get(root, "values", 6, &arr) || ch_json_typeof(arr) != CH_JSON_ARRAY) {
        rc = ch_error_set(err, CH_EPARSE, "values is required: an array of strings");
        goto done;
    }
    /* Two passes: count and size, then copy into one block. */
    size_t count = 0, bytes = 0;
    ch_json_arr_iter(arr, &it);
    while (ch_json_arr_next(&it, &v)) {
        const char *s;
        size_t sn;
        if (!ch_json_get_str(v, &s, &sn) || sn == 0 || sn > CH_REFSET_STRING_MAX ||
            memchr(s, '\0', sn) != NULL) {
            rc = ch_error_set(err, CH_EPARSE,
                              "values[%zu] must be a non-empty string of at most %d bytes", count,
                              CH_REFSET_STRING_MAX);
            goto done;
        }
        if (++count > CH_API_VALUES_MAX) {
            rc = ch_error_set(err, CH_EPARSE, "at most %d values at once", CH_API_VALUES_MAX);
            goto done;
        }
        bytes += sn + 1;
    }
    if (count == 0) {
        rc = ch_error_set(err, CH_EPARSE, "values is empty");
        goto done;
    }
    if ((out->values = ch_malloc(count * sizeof *out->values)) == NULL ||
        (out->block = ch_malloc(bytes)) == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto done;
    }
    char *w = out->block;
    ch_json_arr_iter(arr, &it);
    while (ch_json_arr_next(&it, &v)) {
        const char *s;
        size_t sn;
        ch_json_get_str(v, &s, &sn);
        memcpy(w, s, sn);
        w[sn] = '\0';
        out->values[out->n++] = w;
        w += sn + 1;
    }
    if (ch_json_obj_get(root, "ttl", 3, &v)) {
        int64_t ms = 0;
        const char *s;
        size_t sn;
        if (ch_json_get_str(v, &s, &sn)) {
            if (!ch_duration_parse(s, sn, &ms))
                ms = 0;
        } else if (!ch_json_get_i64(v, &ms)) {
            ms = 0;
        }
        if (ms <= 0 || ms > 100LL * 365 * 86400000) {
            rc = ch_error_set(err, CH_EPARSE,
                              "ttl must be a duration (\"24h\", \"7d\") or milliseconds, > 0");
            goto done;
        }
        out->ttl_ms = ms;
    }
    if (ch_json_obj_get(root, "source", 6, &v) &&
        (rc = get_string(v, "source", out->source, sizeof out->source, err)) < 0)
        goto done;
done:
    if (rc < 0)
        ch_api_values_free(out);
    ch_json_parser_free(p);
    return rc;
}
