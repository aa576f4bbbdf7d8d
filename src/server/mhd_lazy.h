/*
 * mhd_lazy.h - libmicrohttpd, loaded when a server starts (core/dynlib.h says why).
 *
 * Include this instead of <microhttpd.h>: the MHD_ functions coinhound calls become calls
 * through a table that ch_mhd_load fills, so the call sites read as plain libmicrohttpd.
 */
#ifndef CH_SERVER_MHD_LAZY_H
#define CH_SERVER_MHD_LAZY_H

#include <microhttpd.h>

#include "core/error.h"

/* Every libmicrohttpd function coinhound calls. One more needs a line here and a macro below;
 * without them it fails to link, since the binary does not link libmicrohttpd. */
#define CH_MHD_FUNCS(X)                                                                            \
    X(MHD_start_daemon)                                                                            \
    X(MHD_stop_daemon)                                                                             \
    X(MHD_get_daemon_info)                                                                         \
    X(MHD_get_connection_info)                                                                     \
    X(MHD_lookup_connection_value)                                                                 \
    X(MHD_create_response_from_buffer_with_free_callback)                                          \
    X(MHD_add_response_header)                                                                     \
    X(MHD_queue_response)                                                                          \
    X(MHD_destroy_response)

typedef struct ch_mhd_api {
#define CH_MHD_SLOT(f) __typeof__(f) *p_##f;
    CH_MHD_FUNCS(CH_MHD_SLOT)
#undef CH_MHD_SLOT
} ch_mhd_api;

/* Load libmicrohttpd.so.12, once per process and safe from any thread. 0, or CH_ERR naming
 * the library and the reason. Every server start asks it first; the other calls run in the
 * started server's callbacks. */
int ch_mhd_load(ch_error *err);

/* The table, loading the library if nothing did yet. When it cannot be loaded it prints why
 * and aborts: a server start asks ch_mhd_load first, so that is a defect in coinhound. */
const ch_mhd_api *ch__mhd_api(void);

/* The table's own file fills it by name and leaves the call sites' names alone. */
#ifndef CH_MHD_LAZY_TABLE_ONLY
#define MHD_start_daemon (ch__mhd_api()->p_MHD_start_daemon)
#define MHD_stop_daemon (ch__mhd_api()->p_MHD_stop_daemon)
#define MHD_get_daemon_info (ch__mhd_api()->p_MHD_get_daemon_info)
#define MHD_get_connection_info (ch__mhd_api()->p_MHD_get_connection_info)
#define MHD_lookup_connection_value (ch__mhd_api()->p_MHD_lookup_connection_value)
#define MHD_create_response_from_buffer_with_free_callback                                         \
    (ch__mhd_api()->p_MHD_create_response_from_buffer_with_free_callback)
#define MHD_add_response_header (ch__mhd_api()->p_MHD_add_response_header)
#define MHD_queue_response (ch__mhd_api()->p_MHD_queue_response)
#define MHD_destroy_response (ch__mhd_api()->p_MHD_destroy_response)
#endif

#endif
