/*
 * listen.c - the listen address of a server (see listen.h). Split by hand rather than by
 * getaddrinfo alone so that the port is checked for digits and range first: atoi-like parsing
 * would wrap "4294967296" to 0, an ephemeral port, and accept it.
 */
#include "core/listen.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int ch_listen_resolve(const char *listen, bool numeric_host, struct sockaddr_storage *ss,
                      socklen_t *sl, bool *loopback, char *shown, size_t shown_cap, ch_error *err)
{
    char host[256], port[16];
    const char *colon;
    /* Outputs defined on every path, failures included. */
    memset(ss, 0, sizeof *ss);
    *sl = 0;
    *loopback = false;
    if (shown != NULL && shown_cap > 0)
        shown[0] = '\0';
    if (listen[0] == '[') {
        const char *rb = strchr(listen, ']');
        if (rb == NULL || rb[1] != ':' || (size_t)(rb - listen - 1) >= sizeof host)
            return ch_error_set(err, CH_EUSAGE, "bad listen address '%s'", listen);
        memcpy(host, listen + 1, (size_t)(rb - listen - 1));
        host[rb - listen - 1] = '\0';
        colon = rb + 1;
    } else if ((colon = strrchr(listen, ':')) != NULL) {
        if ((size_t)(colon - listen) >= sizeof host)
            return ch_error_set(err, CH_EUSAGE, "bad listen address '%s'", listen);
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
    } else {
        strcpy(host, "127.0.0.1");
        colon = listen - 1;
    }
    const char *ps = colon + 1;
    size_t pn = strlen(ps);
    unsigned long pv = 0;
    for (size_t i = 0; i < pn && i < 6; i++)
        pv = pv * 10 + (unsigned long)(ps[i] - '0');
    if (pn == 0 || pn > 5 || strspn(ps, "0123456789") != pn || pv > 65535)
        return ch_error_set(err, CH_EUSAGE,
                            "bad port in listen address '%s' (0..65535, digits only)", listen);
    memcpy(port, ps, pn + 1);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV | (numeric_host ? AI_NUMERICHOST : 0);
    int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (g != 0 || res == NULL)
        return ch_error_set(err, CH_EUSAGE, "listen address '%s': %s%s", listen, gai_strerror(g),
                            numeric_host ? " (give a numeric address)" : "");
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        *loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        if (shown != NULL)
            inet_ntop(AF_INET, &in->sin_addr, shown, (socklen_t)shown_cap);
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        *loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
        if (shown != NULL) {
            char h6[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, &in6->sin6_addr, h6, sizeof h6);
            snprintf(shown, shown_cap, "[%s]", h6);
        }
    }
    return 0;
}
