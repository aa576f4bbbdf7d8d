/*
 * mhd_lazy.c - the table of server/mhd_lazy.h, filled by core/dynlib.h from Debian's
 * libmicrohttpd12.
 */
#define CH_MHD_LAZY_TABLE_ONLY 1
#include "server/mhd_lazy.h"

#include "core/dynlib.h"

static ch_mhd_api api;
#define CH_MHD_NAME(f) #f,
#define CH_MHD_ADDR(f) &api.p_##f,
static const char *const names[] = {CH_MHD_FUNCS(CH_MHD_NAME)};
static void *const slots[] = {CH_MHD_FUNCS(CH_MHD_ADDR)};
#undef CH_MHD_NAME
#undef CH_MHD_ADDR

static ch_dynlib lib = CH_DYNLIB("libmicrohttpd.so.12", names, slots, NULL);

int ch_mhd_load(ch_error *err) { return ch_dynlib_load(&lib, err); }

const ch_mhd_api *ch__mhd_api(void)
{
    ch_dynlib_need(&lib);
    return &api;
}
