/*
 * api_parse.h - the parsers of the REST API's request parts: the Range header, the sort and
 * fields query parameters, numbers in paths and queries, and the JSON bodies of offense
 * updates, notes and logins.
 *
 * They read bytes from clients, so each is strict, capped and never reads past its input;
 * tests/fuzz/fuzz_api.c runs them (and the router) on arbitrary input. They allocate only
 * what they hand back (note text, passwords), which the caller frees; passwords are wiped by
 * ch_api_login_free.
 */
#ifndef CH_SERVER_API_PARSE_H
#define CH_SERVER_API_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/json.h"
#include "offense/triage.h"
#include "server/accounts.h"

#define CH_API_SORT_MAX 4
#define CH_API_FIELDS_MAX 64
#define CH_API_BODY_DEPTH 8

/* A decimal number without sign, leading zeros or spaces, <= max. false otherwise. */
bool ch_api_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* "items=FIRST-LAST" (RFC 9110 range syntax with the unit "items", one range, FIRST <= LAST).
 * CH_EPARSE otherwise. */
int ch_api_parse_range(const char *s, uint64_t *first, uint64_t *last);

typedef struct ch_api_sort_key {
    size_t field; /* index into the names given */
    bool desc;
} ch_api_sort_key;

/* "-magnitude,+id,last_seen": up to CH_API_SORT_MAX names among names[0..nnames), each with
 * an optional + (ascending, the default) or - (descending). CH_EPARSE naming the bad part. */
int ch_api_parse_sort(const char *s, const char *const *names, size_t nnames, ch_api_sort_key *keys,
                      size_t *n, ch_error *err);

/* "id,magnitude,status": a set of names among names[0..nnames) (nnames <= 64) as a bit mask. */
int ch_api_parse_fields(const char *s, const char *const *names, size_t nnames, uint64_t *mask,
                        ch_error *err);

/* An offense update body: {"status": "open"|"hidden"|"closed", "assigned_to": "name"|null,
 * "closing_reason": "text", "follow_up": bool, "protected": bool}, at least one member, no
 * other. Strings are copied into u. */
typedef struct ch_api_update {
    ch_triage_change c;
    char assigned_to[CH_TRIAGE_NAME_MAX + 1];
    char closing_reason[CH_TRIAGE_NAME_MAX + 1];
} ch_api_update;
int ch_api_parse_offense_update(const char *body, size_t n, ch_api_update *u, ch_error *err);

/* {"text": "..."}: *text ch_malloc'd, NUL-terminated (may hold no NUL inside). */
int ch_api_parse_note(const char *body, size_t n, char **text, ch_error *err);

/* {"name": "...", "password": "..."} for a login, or {"old_password", "new_password"} for a
 * password change (want_change). */
typedef struct ch_api_login {
    char name[CH_ACCOUNT_NAME_MAX + 1];
    char *password;     /* password or old_password */
    char *new_password; /* with want_change */
} ch_api_login;
int ch_api_parse_login(const char *body, size_t n, bool want_change, ch_api_login *out,
                       ch_error *err);
void ch_api_login_free(ch_api_login *l);

/* A new reference set: {"name": "[A-Za-z0-9_.:-]{1,128}", "type": "ip"|"domain"|"string"|
 * "number"}. */
#define CH_API_SET_NAME_MAX 128
int ch_api_parse_refset_create(const char *body, size_t n, char name[CH_API_SET_NAME_MAX + 1],
                               int *type, ch_error *err);
bool ch_api_refset_name_ok(const char *name);

/* Values to add: {"values": ["v", ...] (1..CH_API_VALUES_MAX, each <= 4096 bytes),
 * "ttl": "24h" | ms (optional, > 0), "source": "text" (optional, <= 128 bytes)}. The values are
 * copied into one ch_malloc'd block: values[i] point into it; ch_api_values_free releases. */
#define CH_API_VALUES_MAX 100000
typedef struct ch_api_values {
    char **values;
    size_t n;
    int64_t ttl_ms; /* 0 = no expiry */
    char source[CH_API_SET_NAME_MAX + 1];
    char *block;
} ch_api_values;
int ch_api_parse_refset_values(const char *body, size_t n, ch_api_values *out, ch_error *err);
void ch_api_values_free(ch_api_values *v);

/* ---- shared by the body parsers of api_parse*.c ---------------------------------------------- */

/* The body as one JSON object, parsed to at most depth levels into *p (freed by the caller,
 * also on error). */
int ch__api_body_object(const char *body, size_t n, size_t depth, ch_json_parser **p,
                        ch_json_val *root, ch_error *err);
/* Every member of root is one of allowed[0..na); else CH_EPARSE naming the first other. */
int ch__api_only_members(ch_json_val root, const char *const *allowed, size_t na, ch_error *err);

/* ---- rules and intel (api_parse_rules.c) ---------------------------------------------------- */

/* {"enabled": true|false}, nothing else. */
int ch_api_parse_rule_toggle(const char *body, size_t n, bool *enabled, ch_error *err);

/* A rule test: {"rule": "<YAML of one rule>"} or {"id": "CJ-..."} (exactly one), with
 * "events": [record, ...] (1..CH_API_TEST_EVENTS_MAX raw records, objects). The records are
 * copied as JSON Lines into out->records (ch_malloc'd, NUL-terminated), the rule text into
 * out->rule; ch_api_rule_test_free releases both. */
#define CH_API_TEST_EVENTS_MAX 10000
#define CH_API_TEST_BODY (16u << 20)
#define CH_API_TEST_DEPTH 64
#define CH_API_RULE_ID_MAX 127
typedef struct ch_api_rule_test {
    char *rule; /* NULL with id */
    char id[CH_API_RULE_ID_MAX + 1];
    char *records;
    size_t records_len, nrecords;
} ch_api_rule_test;
int ch_api_parse_rule_test(const char *body, size_t n, ch_api_rule_test *out, ch_error *err);
void ch_api_rule_test_free(ch_api_rule_test *t);

/* An intel pull request: an empty body or {} (every feed), or {"feed": INDEX} or
 * {"feed": "URL"}. *index = -1 for every feed or when url names it (copied into url). */
#define CH_API_FEED_URL_MAX 2048
int ch_api_parse_intel_pull(const char *body, size_t n, long *index,
                            char url[CH_API_FEED_URL_MAX + 1], ch_error *err);

#endif
