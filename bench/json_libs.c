/*
 * json_libs.c - the same per-record parse as bare_simdjson's dom mode, through the C JSON
 * libraries Debian ships, to record why coinhound parses with simdjson.
 *
 *   json_libs FILE        (JSON Lines; one binary per library)
 *
 * Built by bench/run once per library with exactly one of -DUSE_CJSON (-lcjson),
 * -DUSE_YAJL (-lyajl, the tree API), -DUSE_JSONC (-ljson-c), -DUSE_JANSSON (-ljansson); a
 * library whose headers are missing is simply not built and its row is skipped. Each record
 * is parsed into the library's own tree, its eventTime, eventName, userIdentity.userName and
 * sourceIPAddress are read (their lengths summed into `check`, which must equal simdjson's),
 * and the tree is freed: what a SIEM built on that library would do at the least.
 * Output: one lr_report line (lines.h).
 */
#include <stdbool.h>

#include "lines.h"

#if defined(USE_CJSON)
#include <cjson/cJSON.h>
#define LIB_NAME "cjson"
#elif defined(USE_YAJL)
#include <yajl/yajl_tree.h>
#include <yajl/yajl_version.h>
#define LIB_NAME "yajl"
#elif defined(USE_JSONC)
#include <json-c/json.h>
#define LIB_NAME "json-c"
#elif defined(USE_JANSSON)
#include <jansson.h>
#define LIB_NAME "jansson"
#else
#error "define one of USE_CJSON, USE_YAJL, USE_JSONC, USE_JANSSON"
#endif

#if defined(USE_CJSON)
static size_t str_len(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? strlen(v->valuestring) : 0;
}

/* Returns -1 when the record does not parse, else the summed field lengths. */
static long parse_one(char *p, size_t n, void *ctx)
{
    (void)ctx;
    cJSON *doc = cJSON_ParseWithLength(p, n);
    if (!doc)
        return -1;
    long c = (long)(str_len(doc, "eventTime") + str_len(doc, "eventName") +
                    str_len(doc, "sourceIPAddress"));
    const cJSON *ui = cJSON_GetObjectItemCaseSensitive(doc, "userIdentity");
    if (cJSON_IsObject(ui))
        c += (long)str_len(ui, "userName");
    cJSON_Delete(doc);
    return c;
}
#elif defined(USE_YAJL)
static size_t str_at(yajl_val doc, const char **path)
{
    yajl_val v = yajl_tree_get(doc, path, yajl_t_string);
    const char *s = v ? YAJL_GET_STRING(v) : NULL;
    return s ? strlen(s) : 0;
}

static long parse_one(char *p, size_t n, void *ctx)
{
    (void)ctx;
    static const char *t_path[] = {"eventTime", NULL};
    static const char *n_path[] = {"eventName", NULL};
    static const char *u_path[] = {"userIdentity", "userName", NULL};
    static const char *i_path[] = {"sourceIPAddress", NULL};
    char saved = p[n];
    p[n] = '\0'; /* the tree API wants a C string; this byte was the line's '\n' */
    yajl_val doc = yajl_tree_parse(p, NULL, 0);
    p[n] = saved;
    if (!doc)
        return -1;
    long c = (long)(str_at(doc, t_path) + str_at(doc, n_path) + str_at(doc, u_path) +
                    str_at(doc, i_path));
    yajl_tree_free(doc);
    return c;
}
#elif defined(USE_JSONC)
static size_t str_len(struct json_object *o, const char *k, struct json_object **out)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, k, &v))
        return 0;
    if (out)
        *out = v;
    return json_object_is_type(v, json_type_string) ? (size_t)json_object_get_string_len(v) : 0;
}

static long parse_one(char *p, size_t n, void *ctx)
{
    struct json_tokener *tok = (struct json_tokener *)ctx;
    json_tokener_reset(tok);
    struct json_object *doc = json_tokener_parse_ex(tok, p, (int)n);
    if (!doc || json_tokener_get_error(tok) != json_tokener_success) {
        if (doc)
            json_object_put(doc);
        return -1;
    }
    struct json_object *ui = NULL;
    long c = (long)(str_len(doc, "eventTime", NULL) + str_len(doc, "eventName", NULL) +
                    str_len(doc, "sourceIPAddress", NULL));
    str_len(doc, "userIdentity", &ui);
    if (ui && json_object_is_type(ui, json_type_object))
        c += (long)str_len(ui, "userName", NULL);
    json_object_put(doc);
    return c;
}
#elif defined(USE_JANSSON)
static size_t str_len(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_length(v) : 0;
}

static long parse_one(char *p, size_t n, void *ctx)
{
    (void)ctx;
    json_error_t err;
    json_t *doc = json_loadb(p, n, 0, &err);
    if (!doc)
        return -1;
    long c = (long)(str_len(doc, "eventTime") + str_len(doc, "eventName") +
                    str_len(doc, "sourceIPAddress"));
    json_t *ui = json_object_get(doc, "userIdentity");
    if (json_is_object(ui))
        c += (long)str_len(ui, "userName");
    json_decref(doc);
    return c;
}
#endif

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: json_libs_%s FILE.jsonl\n", LIB_NAME);
        return 2;
    }
    void *ctx = NULL;
#if defined(USE_JSONC)
    struct json_tokener *tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
    if (!tok)
        return 1;
    ctx = tok;
#endif
    lr r;
    if (lr_open(&r, argv[1]) < 0) {
        perror(argv[1]);
        return 1;
    }
    uint64_t records = 0, errors = 0, check = 0;
    char *p;
    size_t n;
    int rc;
    double t0 = lr_now();
    while ((rc = lr_next(&r, &p, &n)) == 1) {
        long c = parse_one(p, n, ctx);
        if (c < 0) {
            errors++;
            continue;
        }
        check += (uint64_t)c;
        records++;
    }
    double dt = lr_now() - t0;
    if (rc < 0) {
        perror(argv[1]);
        lr_close(&r);
        return 1;
    }
    lr_report(LIB_NAME, records, r.bytes, errors, dt, check);
    lr_close(&r);
#if defined(USE_JSONC)
    json_tokener_free(tok);
#endif
    return 0;
}
