/*
 * mhd_lazy.c - the table of server/mhd_lazy.h, filled once by dlopen of Debian's
 * libmicrohttpd12.
 */
#define CH_MHD_LAZY_TABLE_ONLY 1
#include "server/mhd_lazy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/dynlib.h"

static ch_mhd_api api;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_rc = -1;
static char why[512];

static void load(void)
{
#define CH_MHD_NAME(f) #f,
#define CH_MHD_ADDR(f) &api.p_##f,
    static const char *const names[] = {CH_MHD_FUNCS(CH_MHD_NAME)};
    void *const slots[] = {CH_MHD_FUNCS(CH_MHD_ADDR)};
#undef CH_MHD_NAME
#undef CH_MHD_ADDR
    if (ch_dynlib_load("libmicrohttpd.so.12", names, slots, sizeof names / sizeof *names, why,
                       sizeof why) == 0)
        load_rc = 0;
}

int ch_mhd_load(ch_error *err)
{
    pthread_once(&once, load);
    return load_rc == 0 ? 0 : ch_error_set(err, CH_ERR, "%s", why);
}

const ch_mhd_api *ch__mhd_api(void)
{
    pthread_once(&once, load);
    if (load_rc != 0) {
        fprintf(stderr, "coinhound: a libmicrohttpd call before ch_mhd_load: %s\n", why);
        abort();
    }
    return &api;
}
