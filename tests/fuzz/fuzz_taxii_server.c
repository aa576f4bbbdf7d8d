/*
 * fuzz_taxii_server.c - coinhound's TAXII 2.1 server (intel/taxii_server.h), the one HTTP
 * router there is today, fed arbitrary bytes as requests over a real loopback connection:
 * libmicrohttpd's request parsing, then ours (basic auth and its base64, the Accept list,
 * the path split, the query: added_after, limit, next cursors, match[...]).
 *
 * One server runs for the whole process, on an ephemeral port, with one collection of a few
 * indicators. Each input is written as is, the connection half-closed, and the answer read to
 * its end. Properties, checked with __builtin_trap: whatever comes back is nothing (the server
 * may drop a hopeless request) or an HTTP status line; a 2xx answer needs the credentials (the
 * request holds the part of their base64 that every spelling of it shares) and a GET or HEAD.
 * Memory errors in the server's thread abort the process like any other.
 *
 * Cost: a connection per input, so a few hundred inputs a second at best, and 300 ms for one
 * the server waits on; the client socket closes with a reset so that no TIME_WAIT piles up
 * over a long campaign and the server drops its side at once.
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "intel/taxii_server.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define USER "analyst"
#define PASSWORD "s3cret"          /* "analyst:s3cret" is 14 bytes: not a multiple of 3, so ... */
#define TOKEN "YW5hbHlzdDpzM2NyZX" /* ... only the first 18 base64 characters are fixed */

static ch_taxii_server *server;
static uint16_t port;

static void start(void)
{
    ch_taxii_catalog *c = NULL;
    ch_error err = {0};
    if (ch_taxii_catalog_new(&c) < 0)
        abort();
    int coll = ch_taxii_catalog_add_collection(c, "c0ffee00-0000-5000-8000-000000000001",
                                               "shared_ips", "fuzz collection", &err);
    if (coll < 0)
        abort();
    for (int i = 0; i < 5; i++) {
        char id[80], json[256];
        snprintf(id, sizeof id, "indicator--00000000-0000-5000-8000-%012d", i);
        int64_t t = 1722588000000LL + i * 1000LL;
        snprintf(json, sizeof json,
                 "{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"%s\","
                 "\"pattern\":\"[ipv4-addr:value = '198.51.100.%d']\",\"pattern_type\":\"stix\"}",
                 id, i + 1);
        if (ch_taxii_catalog_add_object(c, coll, id, t, t, json, strlen(json), &err) < 0)
            abort();
    }
    ch_taxii_server_opts o = {0};
    o.listen = "127.0.0.1:0";
    o.user = USER;
    o.password = PASSWORD;
    o.max_page = 2;
    o.connection_timeout_s = 1;
    if (ch_taxii_server_start(&o, c, &server, &err) < 0)
        abort();
    port = ch_taxii_server_port(server);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (server == NULL)
        start();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        abort();
    /* A request the server is still waiting on (a body shorter than its Content-Length) gets
     * no answer: give up soon, and the reset on close frees the server's side at once. */
    struct timeval tv = {0, 300000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        abort();
    size_t off = 0;
    while (off < size) {
        ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may close early on a bad request */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    static char resp[1 << 20];
    size_t got = 0;
    while (got < sizeof resp) {
        ssize_t r = recv(fd, resp + got, sizeof resp - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got == 0)
        return 0;
    CHECK(got >= 12 && memcmp(resp, "HTTP/1.", 7) == 0 && resp[8] == ' ');
    if (resp[9] == '2') {
        CHECK(memmem(data, size, TOKEN, sizeof TOKEN - 1) != NULL);
        CHECK(memmem(data, size, "GET", 3) != NULL || memmem(data, size, "HEAD", 4) != NULL);
    }
    return 0;
}
