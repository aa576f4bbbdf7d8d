/*
 * dynlib.c - dlopen and dlsym for core/dynlib.h: the library resolved at once (RTLD_NOW), so
 * that a missing symbol is one clear error at load, never a crash at some later call.
 */
#include "core/dynlib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int ch_dynlib_load(const char *soname, const char *const *names, void *const *slots, size_t n,
                   char *why, size_t cap)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        snprintf(why, cap, "%s cannot be loaded: %s", soname, e ? e : "unknown reason");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        void *p = dlsym(h, names[i]);
        if (p == NULL) {
            snprintf(why, cap, "%s has no %s: is it older than the one coinhound was built with?",
                     soname, names[i]);
            dlclose(h);
            return -1;
        }
        /* POSIX guarantees that dlsym's object pointer converts to the function's type. */
        memcpy(slots[i], &p, sizeof p);
    }
    return 0;
}
