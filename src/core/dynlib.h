/*
 * dynlib.h - shared libraries loaded when a command first needs them, not when the process
 * starts.
 *
 * libcurl (Debian's, with Kerberos, LDAP, SSH, RTMP and two TLS stacks behind it) and
 * libmicrohttpd (GnuTLS) brought 29 of the 45 libraries every coinhound process mapped, and
 * 12 of its 16 ms of start-up, to `search`, `analyze` and every other command that never makes
 * or serves an HTTP request (docs/BENCHMARKS.md section 74). core/curl_lazy.h and
 * server/mhd_lazy.h load them on first use through this.
 */
#ifndef CH_CORE_DYNLIB_H
#define CH_CORE_DYNLIB_H

#include <stddef.h>

/* dlopen soname and look up names[0..n) into slots[0..n) (each slot a function pointer of the
 * caller's table, written with memcpy). 0, or -1 with the reason (the library, the symbol,
 * dlerror's words) in why. The library stays loaded for the life of the process. */
int ch_dynlib_load(const char *soname, const char *const *names, void *const *slots, size_t n,
                   char *why, size_t cap);

#endif
