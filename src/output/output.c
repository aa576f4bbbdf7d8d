/*
 * output.c - the writer table and buffered file output. Formats register here; each is a
 * function that appends one event to a buffer. Writes go out in 1 MiB blocks.
 *
 * With read-ahead workers (`analyze --threads N`), a worker formats each event's line as it
 * reads (ch_output_prepare) and the writer, on the pipeline's one thread, copies it: formatting
 * was 2.7k instructions an event there, the copy is a memcpy of the line (docs/BENCHMARKS.md
 * section 31). A line is only copied when the fields the pipeline's stateful steps may change
 * after the worker are as the worker saw them; otherwise the event is formatted again, so the
 * file is byte for byte what one thread writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "output/output.h"

#define FLUSH_AT (1u << 20)

typedef struct ch_output_format {
    const char *name;
    int (*write)(const ch_event *ev, ch_buf *b); /* one event, newline appended by caller */
} ch_output_format;

static const ch_output_format formats[] = {
    {"jsonl", ch_event_to_json},
    {NULL, NULL},
};

struct ch_output {
    const ch_output_format *fmt;
    ch_buf buf;
    int fd; /* -1: format only, write nothing */
    bool own_fd;
    int werrno; /* first write error */
};

int ch_output_open(ch_output **out, const char *format, const char *path, ch_error *err)
{
    const ch_output_format *f = NULL;
    for (int i = 0; formats[i].name != NULL; i++)
        if (strcmp(formats[i].name, format) == 0)
            f = &formats[i];
    if (f == NULL)
        return ch_error_set(err, CH_EUSAGE, "unknown output format '%s'", format);
    ch_output *o = ch_calloc(1, sizeof *o);
    if (o == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    o->fmt = f;
    ch_buf_init(&o->buf, 0);
    o->fd = -1;
    if (path != NULL && strcmp(path, "-") == 0) {
        o->fd = STDOUT_FILENO;
    } else if (path != NULL && strcmp(path, "/dev/null") != 0) {
        o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (o->fd < 0) {
            int e = errno;
            ch_free(o);
            return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(e));
        }
        o->own_fd = true;
    }
    *out = o;
    return 0;
}

static void flush(ch_output *o)
{
    size_t off = 0;
    while (o->fd >= 0 && off < o->buf.len && o->werrno == 0) {
        ssize_t n = write(o->fd, o->buf.data + off, o->buf.len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            o->werrno = errno;
            break;
        }
        off += (size_t)n;
    }
    ch_buf_clear(&o->buf);
}

static bool sv_same(ch_sv a, ch_sv b) { return a.p == b.p && a.n == b.n; }

/* Whether the line a worker made is the one the event gives now: the pipeline's stateful steps
 * after the worker's (entity linking, intelligence matching) change only these fields. */
static bool prepared_current(const ch_event *ev)
{
    const ch_event_prep *pp = &ev->prep;
    return (pp->done & CH_PREP_LINE) && ev->threat.set == NULL && sv_same(ev->id, pp->seen_id) &&
           sv_same(ev->user_name, pp->seen_user) && sv_same(ev->instance_id, pp->seen_instance);
}

int ch_output_prepare(const ch_output *o, ch_event *ev, ch_buf *scratch, ch_arena *arena)
{
    ev->prep.done &= ~(uint32_t)CH_PREP_LINE;
    if (ev->threat.set != NULL)
        return 0; /* never the case before the pipeline's intelligence step; would not be reused */
    ch_buf_clear(scratch);
    if (o->fmt->write(ev, scratch) < 0)
        return CH_ENOMEM;
    char *line = ch_arena_alloc(arena, scratch->len ? scratch->len : 1);
    if (line == NULL)
        return CH_ENOMEM;
    memcpy(line, scratch->data, scratch->len);
    ev->prep.line = (ch_sv){line, (uint32_t)scratch->len};
    ev->prep.seen_id = ev->id;
    ev->prep.seen_user = ev->user_name;
    ev->prep.seen_instance = ev->instance_id;
    ev->prep.done |= CH_PREP_LINE;
    return 0;
}

int ch_output_write(ch_output *o, const ch_event *ev)
{
    int rc = prepared_current(ev) ? ch_buf_add(&o->buf, ev->prep.line.p, ev->prep.line.n)
                                  : o->fmt->write(ev, &o->buf);
    if (rc == 0)
        rc = ch_buf_addc(&o->buf, '\n');
    if (o->buf.len >= FLUSH_AT)
        flush(o);
    return o->werrno ? CH_EIO : rc;
}

int ch_output_close(ch_output *o, ch_error *err)
{
    if (o == NULL)
        return 0;
    flush(o);
    int rc = 0;
    if (o->werrno)
        rc = ch_error_set(err, CH_EIO, "writing events: %s", strerror(o->werrno));
    if (o->own_fd && close(o->fd) != 0 && rc == 0)
        rc = ch_error_set(err, CH_EIO, "closing events file: %s", strerror(errno));
    ch_buf_free(&o->buf);
    ch_free(o);
    return rc;
}
