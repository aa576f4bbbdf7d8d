/*
 * curl_lazy.c - the table of core/curl_lazy.h, filled once by dlopen of Debian's libcurl4.
 */
#define CH_CURL_LAZY_TABLE_ONLY 1
#include "core/curl_lazy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/dynlib.h"

static ch_curl_api api;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_rc = -1;
static char why[512];

static void load(void)
{
#define CH_CURL_NAME(f) #f,
#define CH_CURL_ADDR(f) &api.p_##f,
    static const char *const names[] = {CH_CURL_FUNCS(CH_CURL_NAME)};
    void *const slots[] = {CH_CURL_FUNCS(CH_CURL_ADDR)};
#undef CH_CURL_NAME
#undef CH_CURL_ADDR
    if (ch_dynlib_load("libcurl.so.4", names, slots, sizeof names / sizeof *names, why,
                       sizeof why) < 0)
        return;
    /* curl_easy_init would run it lazily, which is not safe when two threads (an API run and
     * the automatic responder) make their first request at once. */
    CURLcode rc = api.p_curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(why, sizeof why, "libcurl's initialization failed: %s",
                 api.p_curl_easy_strerror(rc));
        return;
    }
    load_rc = 0;
}

int ch_curl_load(ch_error *err)
{
    pthread_once(&once, load);
    return load_rc == 0 ? 0 : ch_error_set(err, CH_ERR, "%s", why);
}

const ch_curl_api *ch__curl_api(void)
{
    pthread_once(&once, load);
    if (load_rc != 0) {
        fprintf(stderr, "coinhound: a libcurl call before ch_curl_load: %s\n", why);
        abort();
    }
    return &api;
}
