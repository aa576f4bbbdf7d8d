/*
 * source_run.h - a parser test's stream of one source type over a file, or over a text written
 * to a temporary file, read through the real input layer. Define RUN_SOURCE (the
 * ch_source_type under test) and RUN_TAG (a word for the temporary file's name) before
 * including it.
 */
#ifndef CH_TEST_SOURCE_RUN_H
#define CH_TEST_SOURCE_RUN_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/diag.h"
#include "ingest/input.h"
#include "parse/source.h"

typedef struct run {
    ch_diag diag;
    ch_input *in;
    ch_stream *st;
    char path[64];
} run;

static void run_open_file(run *r, const char *path)
{
    ch_error err = {0};
    ch_diag_init(&r->diag, NULL);
    assert_int_equal(ch_input_open(&r->in, path, CH_INPUT_DEFAULT_MAX_WINDOW, &err), 0);
    r->st = RUN_SOURCE.open(r->in, &r->diag, &err);
    assert_non_null(r->st);
}

static void run_open(run *r, const char *text)
{
    snprintf(r->path, sizeof r->path, "/tmp/ch_test_" RUN_TAG "_XXXXXX");
    int fd = mkstemp(r->path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    run_open_file(r, r->path);
}

static void run_close(run *r)
{
    RUN_SOURCE.close(r->st);
    ch_input_close(r->in);
    if (r->path[0])
        unlink(r->path);
}

#endif
