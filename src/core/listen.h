/*
 * listen.h - the listen address of a server ("host:port", "[v6]:port" or "port"), shared by
 * serve's HTTP server and the TAXII server so that both refuse the same bad ports and decide
 * "loopback" (which decides whether TLS is required) the same way.
 */
#ifndef CH_CORE_LISTEN_H
#define CH_CORE_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/error.h"

/* Resolve listen into *ss / *sl; "port" alone listens on 127.0.0.1. numeric_host refuses host
 * names (serve's configuration: what it binds must not depend on a resolver). *loopback tells
 * whether the address is 127/8 or ::1. shown (NULL or shown_cap bytes) gets the address as
 * text, IPv6 in brackets. CH_EUSAGE naming the address and the reason. */
int ch_listen_resolve(const char *listen, bool numeric_host, struct sockaddr_storage *ss,
                      socklen_t *sl, bool *loopback, char *shown, size_t shown_cap, ch_error *err);

#endif
