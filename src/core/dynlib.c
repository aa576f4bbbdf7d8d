/*
 * dynlib.c - dlopen and dlsym for core/dynlib.h. A loaded library is one atomic load per call
 * of its table's accessor; the first call takes the mutex.
 */
#include "core/dynlib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int load(ch_dynlib *d)
{
    void *h = dlopen(d->soname, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        snprintf(d->why, sizeof d->why, "%s cannot be loaded: %s", d->soname,
                 e ? e : "unknown reason");
        return -1;
    }
    for (size_t i = 0; i < d->n; i++) {
        void *p = dlsym(h, d->names[i]);
        if (p == NULL) {
            snprintf(d->why, sizeof d->why,
                     "%s has no %s: is it older than the one coinhound was built with?", d->soname,
                     d->names[i]);
            dlclose(h);
            return -1;
        }
        /* POSIX guarantees that dlsym's object pointer converts to the function's type. */
        memcpy(d->slots[i], &p, sizeof p);
    }
    return d->init ? d->init(d->why, sizeof d->why) : 0;
}

int ch_dynlib_load(ch_dynlib *d, ch_error *err)
{
    int s = atomic_load_explicit(&d->state, memory_order_acquire);
    if (s == 0) {
        pthread_mutex_lock(&d->mu);
        s = atomic_load_explicit(&d->state, memory_order_relaxed);
        if (s == 0) {
            s = load(d) == 0 ? 1 : -1;
            atomic_store_explicit(&d->state, s, memory_order_release);
        }
        pthread_mutex_unlock(&d->mu);
    }
    return s == 1 ? 0 : ch_error_set(err, CH_ERR, "%s", d->why);
}

void ch_dynlib_need(ch_dynlib *d)
{
    ch_error err;
    if (ch_dynlib_load(d, &err) < 0) {
        fprintf(stderr, "coinhound: %s\n", err.msg);
        abort();
    }
}
