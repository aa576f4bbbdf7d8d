/*
 * dynlib.h - shared libraries loaded when a command first needs them, not when the process
 * starts.
 *
 * libcurl (Debian's, with Kerberos, LDAP, SSH, RTMP and two TLS stacks behind it) and
 * libmicrohttpd (GnuTLS) brought 29 of the 45 libraries every coinhound process mapped, and
 * most of its start-up, to `search`, `analyze` and every other command that never makes or
 * serves an HTTP request (docs/BENCHMARKS.md section 74). core/curl_lazy.h and
 * server/mhd_lazy.h load them on first use through this.
 */
#ifndef CH_CORE_DYNLIB_H
#define CH_CORE_DYNLIB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "core/error.h"

/* One library: what to load, and whether it was. A static object, made by CH_DYNLIB. */
typedef struct ch_dynlib {
    const char *soname;
    const char *const *names; /* the symbols looked up ... */
    void *const *slots;       /* ... each into a function pointer of the caller's table */
    size_t n;
    int (*init)(char *why, size_t cap); /* run once after the lookups; NULL = none */
    pthread_mutex_t mu;
    atomic_int state; /* 0 not tried, 1 loaded, -1 failed with why */
    char why[400];
} ch_dynlib;

#define CH_DYNLIB(soname, names, slots, init)                                                      \
    {                                                                                              \
        (soname), (names), (slots), sizeof(names) / sizeof *(names), (init),                       \
            PTHREAD_MUTEX_INITIALIZER, 0, ""                                                       \
    }

/* dlopen the library (RTLD_NOW: a missing symbol is one error here, never a crash at a later
 * call), fill the slots and run init, once per process and safe from any thread. 0, or CH_ERR
 * naming the library and the reason, the same on every later call. The library stays loaded. */
int ch_dynlib_load(ch_dynlib *d, ch_error *err);

/* ch_dynlib_load for the tables' accessors: when the library cannot be loaded it prints why and
 * aborts, since every entry point asked ch_dynlib_load first and reported the error. */
void ch_dynlib_need(ch_dynlib *d);

#endif
