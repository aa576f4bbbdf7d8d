/*
 * curl_lazy.h - libcurl, loaded when the first HTTP request is made (core/dynlib.h says why).
 *
 * Include this instead of <curl/curl.h>: the curl_ functions coinhound calls become calls
 * through a table that ch_curl_load fills, so the call sites read as plain libcurl. libcurl's
 * compile-time option checks (typecheck-gcc.h) are macros of the same names and are off here.
 */
#ifndef CH_CORE_CURL_LAZY_H
#define CH_CORE_CURL_LAZY_H

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "core/error.h"

/* Every libcurl function coinhound calls. One more needs a line here and a macro below; without
 * them it fails to link, since the binary does not link libcurl. */
#define CH_CURL_FUNCS(X)                                                                           \
    X(curl_global_init)                                                                            \
    X(curl_easy_init)                                                                              \
    X(curl_easy_setopt)                                                                            \
    X(curl_easy_perform)                                                                           \
    X(curl_easy_getinfo)                                                                           \
    X(curl_easy_cleanup)                                                                           \
    X(curl_easy_strerror)                                                                          \
    X(curl_easy_escape)                                                                            \
    X(curl_free)                                                                                   \
    X(curl_slist_append)                                                                           \
    X(curl_slist_free_all)                                                                         \
    X(curl_url)                                                                                    \
    X(curl_url_cleanup)                                                                            \
    X(curl_url_set)                                                                                \
    X(curl_url_get)

typedef struct ch_curl_api {
#define CH_CURL_SLOT(f) __typeof__(f) *p_##f;
    CH_CURL_FUNCS(CH_CURL_SLOT)
#undef CH_CURL_SLOT
} ch_curl_api;

/* Load libcurl.so.4 and run curl_global_init, once per process and safe from any thread (two
 * threads' first requests may race). 0, or CH_ERR naming the library and the reason. Every
 * path into code that calls curl_ functions starts with it. */
int ch_curl_load(ch_error *err);

/* The table, loading libcurl if nothing did yet. When libcurl cannot be loaded it prints why
 * and aborts: callers ask ch_curl_load first, so that is a defect in coinhound, not a
 * condition of the machine. */
const ch_curl_api *ch__curl_api(void);

/* The table's own file fills it by name and leaves the call sites' names alone. */
#ifndef CH_CURL_LAZY_TABLE_ONLY
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init (ch__curl_api()->p_curl_global_init)
#define curl_easy_init (ch__curl_api()->p_curl_easy_init)
#define curl_easy_setopt (ch__curl_api()->p_curl_easy_setopt)
#define curl_easy_perform (ch__curl_api()->p_curl_easy_perform)
#define curl_easy_getinfo (ch__curl_api()->p_curl_easy_getinfo)
#define curl_easy_cleanup (ch__curl_api()->p_curl_easy_cleanup)
#define curl_easy_strerror (ch__curl_api()->p_curl_easy_strerror)
#define curl_easy_escape (ch__curl_api()->p_curl_easy_escape)
#define curl_free (ch__curl_api()->p_curl_free)
#define curl_slist_append (ch__curl_api()->p_curl_slist_append)
#define curl_slist_free_all (ch__curl_api()->p_curl_slist_free_all)
#define curl_url (ch__curl_api()->p_curl_url)
#define curl_url_cleanup (ch__curl_api()->p_curl_url_cleanup)
#define curl_url_set (ch__curl_api()->p_curl_url_set)
#define curl_url_get (ch__curl_api()->p_curl_url_get)
#endif

#endif
