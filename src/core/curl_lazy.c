/*
 * curl_lazy.c - the table of core/curl_lazy.h, filled by core/dynlib.h from Debian's libcurl4.
 */
#define CH_CURL_LAZY_TABLE_ONLY 1
#include "core/curl_lazy.h"

#include <stdio.h>

#include "core/dynlib.h"

static ch_curl_api api;
#define CH_CURL_NAME(f) #f,
#define CH_CURL_ADDR(f) &api.p_##f,
static const char *const names[] = {CH_CURL_FUNCS(CH_CURL_NAME)};
static void *const slots[] = {CH_CURL_FUNCS(CH_CURL_ADDR)};
#undef CH_CURL_NAME
#undef CH_CURL_ADDR

/* curl_easy_init would run it lazily, which is not safe when two threads (an API run and the
 * automatic responder) make their first request at once. */
static int global_init(char *why, size_t cap)
{
    CURLcode rc = api.p_curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc == CURLE_OK)
        return 0;
    snprintf(why, cap, "libcurl's initialization failed: %s", api.p_curl_easy_strerror(rc));
    return -1;
}

static ch_dynlib lib = CH_DYNLIB("libcurl.so.4", names, slots, global_init);

int ch_curl_load(ch_error *err) { return ch_dynlib_load(&lib, err); }

const ch_curl_api *ch__curl_api(void)
{
    ch_dynlib_need(&lib);
    return &api;
}
