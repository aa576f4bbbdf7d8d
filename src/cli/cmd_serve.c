/*
 * cmd_serve.c - `coinhound serve --config FILE` and `coinhound serve --check-config FILE`.
 *
 * The command's part of the server (the rest is src/server/serve.c): options, the log lines
 * (stderr, one line per event worth a person's attention, text or JSON), the signals and the
 * threat-intelligence pulls. Signals are blocked in every thread before any starts and taken
 * synchronously here with sigwait, so no handler runs in a random thread: SIGTERM and SIGINT
 * drain (ingest stops, the pipeline reads the journal to its end, a checkpoint is written) and
 * the exit status is 0; SIGHUP reloads the pack, the context and the reference sets, keeping
 * correlation state. Intel feeds are pulled by `coinhound intel pull` run in-process on a
 * thread of their own, each at its own period, followed by a reload when it stored something.
 */
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cmd_intel_taxii.h"
#include "core/buf.h"
#include "core/mem.h"
#include "core/readfile.h"
#include "server/config.h"
#include "server/serve.h"

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: coinhound serve --config FILE [--log-format text|json]\n"
            "       coinhound serve --check-config FILE\n\n"
            "Run coinhound as an always-on SIEM: records arrive over HTTP (POST "
            "/api/v1/ingest),\n"
            "from Amazon Data Firehose (POST /api/v1/firehose) and from spool directories; each\n"
            "accepted batch is in the journal on disk before it is acknowledged; the pipeline\n"
            "reads the journal, correlates, and checkpoints its state with the journal "
            "position.\n"
            "GET /healthz, GET /metrics (Prometheus) and GET /api/v1/offenses report. "
            "docs/SERVE.md\n"
            "documents every configuration key.\n\n"
            "Options:\n"
            "  -c, --config FILE        the configuration (YAML)\n"
            "      --check-config FILE  validate FILE (shape, files, addresses, tokens) and exit\n"
            "      --log-format FMT     text (default) or json: one object per line on stderr\n"
            "  -h, --help               this help\n\n"
            "Signals: SIGTERM/SIGINT drain, checkpoint and exit 0; SIGHUP reloads the pack,\n"
            "the context and the reference sets without losing correlation state.\n"
            "Exit status: 0 stopped cleanly; 1 could not start or failed; 2 usage or a bad "
            "config.\n");
}

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static bool log_json;

static void log_line(void *ud, const char *level, const char *event, const char *msg)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    ch_buf b;
    ch_buf_init(&b, 8192);
    if (log_json) {
        ch_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"%s\",\"msg\":", when, level,
                      event);
        ch_buf_add_json_str(&b, msg, strlen(msg));
        ch_buf_adds(&b, "}\n");
    } else {
        ch_buf_printf(&b, "%s coinhound serve: %s: %s: %s\n", when, level, event, msg);
    }
    /* One write per line, under a lock: lines from several threads never interleave. */
    pthread_mutex_lock(&log_mu);
    if (b.data)
        fputs(b.data, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_mu);
    ch_buf_free(&b);
}

/* ---- intel pulls ------------------------------------------------------------------------------
 */

static int64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* The scheduler's state, under mu: what GET /api/v1/intel/feeds shows (status) and what
 * POST /api/v1/intel/pull moves (next, through the serve hook). */
typedef struct puller {
    const ch_serve_config *cfg;
    ch_serve *srv;
    pthread_t t;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    int64_t next[CH_SERVE_MAX_PULL]; /* due time; 0 = now, INT64_MAX = pulling */
    int64_t backoff[CH_SERVE_MAX_PULL];
    ch_serve_feed_status status[CH_SERVE_MAX_PULL];
} puller;

static void pull_status(void *ud, size_t i, ch_serve_feed_status *out)
{
    puller *pl = ud;
    pthread_mutex_lock(&pl->mu);
    if (i < pl->cfg->npull) {
        *out = pl->status[i];
        /* INT64_MAX while it runs (no next yet); 0 (due) is now. */
        out->next_ms = pl->next[i] == INT64_MAX ? 0 : pl->next[i] > 0 ? pl->next[i] : now_ms();
    }
    pthread_mutex_unlock(&pl->mu);
}

/* Due now, whatever the backoff: the thread wakes and pulls at its next turn. */
static void pull_now(void *ud, long i)
{
    puller *pl = ud;
    pthread_mutex_lock(&pl->mu);
    for (size_t k = 0; k < pl->cfg->npull; k++)
        if (i < 0 || (size_t)i == k)
            pl->next[k] = 0;
    pthread_cond_signal(&pl->cv);
    pthread_mutex_unlock(&pl->mu);
}

/* Pull one feed: `coinhound intel pull` in-process into the server's store, with the feed's
 * credentials. The command's own retries are off (--retries 0): a failure comes back at once
 * and pull_main retries it on its own backoff, so a dead feed never holds the thread for long
 * and every failure is logged. */
/* The pull's own lines (its summary, refusals, retro-hunt, warnings) become log lines of the
 * server, so that --log-format json keeps stderr one JSON object per line. */
static void pull_say(void *ud, const char *level, const char *msg)
{
    char line[2300];
    snprintf(line, sizeof line, "pull from %s: %s", (const char *)ud, msg);
    log_line(NULL, level,
             strcmp(level, "info") == 0   ? "intel_pull"
             : strcmp(level, "warn") == 0 ? "intel_pull_warning"
                                          : "intel_pull_error",
             line);
}

static int pull_one(puller *pl, const ch_serve_pull *p, ch_intel_pull_summary *sum)
{
    char *argv[20];
    int argc = 0;
    char *token = NULL;
    size_t tlen = 0;
    ch_error err = {0};
    argv[argc++] = "pull";
    argv[argc++] = "--url";
    argv[argc++] = p->url;
    argv[argc++] = "--retries";
    argv[argc++] = "0";
    if (pl->cfg->db) {
        argv[argc++] = "--db";
        argv[argc++] = pl->cfg->db;
    }
    if (p->collection) {
        argv[argc++] = "--collection";
        argv[argc++] = p->collection;
    }
    if (p->user) {
        argv[argc++] = "--user";
        argv[argc++] = p->user;
        argv[argc++] = "--password-file";
        argv[argc++] = p->password_file;
    }
    if (p->token_file) {
        if (ch_read_file(p->token_file, 64u << 10, &token, &tlen, &err) < 0) {
            snprintf(sum->error, sizeof sum->error, "token_file: %.480s", err.msg);
            char msg[600];
            snprintf(msg, sizeof msg, "pull from %s: token_file: %s", p->url, err.msg);
            log_line(NULL, "error", "intel_pull_failed", msg);
            return -1;
        }
        while (tlen > 0 && (token[tlen - 1] == '\n' || token[tlen - 1] == '\r'))
            token[--tlen] = '\0';
        argv[argc++] = "--token";
        argv[argc++] = token;
    }
    argv[argc] = NULL;
    sum->say = pull_say;
    sum->say_ud = (void *)p->url;
    int rc = ch_cmd_intel_pull_ex(argc, argv, sum);
    if (token) {
        memset(token, 0, tlen);
        ch_free(token);
    }
    if (rc == 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "pull from %s done; reloading reference sets", p->url);
        log_line(NULL, "info", "intel_pulled", msg);
        ch_serve_reload(pl->srv);
    }
    return rc;
}

#define PULL_BACKOFF_FIRST_MS 1000

/* Each feed is due at its own time: `every` after a good pull; after a failure, sooner, on a
 * backoff doubling from a second up to `every` (a feed that is down briefly is caught up
 * soon, one that stays down is not hammered). Every feed is due once at start. */
static void *pull_main(void *arg)
{
    puller *pl = arg;
    pthread_mutex_lock(&pl->mu);
    while (!pl->stop) {
        int64_t ms = now_ms();
        int64_t wake = ms + 60000;
        for (size_t i = 0; i < pl->cfg->npull && !pl->stop; i++) {
            const ch_serve_pull *p = &pl->cfg->pull[i];
            if (pl->next[i] <= ms) {
                ch_serve_feed_status *st = &pl->status[i];
                ch_intel_pull_summary sum;
                memset(&sum, 0, sizeof sum);
                st->running = true;
                pl->next[i] = INT64_MAX; /* pull_now sets 0 meanwhile: due again at once */
                pthread_mutex_unlock(&pl->mu);
                int rc = pull_one(pl, p, &sum);
                pthread_mutex_lock(&pl->mu);
                st->running = false;
                st->pulls++;
                st->last_ms = now_ms();
                st->ok = rc == 0;
                if (rc == 0) {
                    pl->backoff[i] = 0;
                    st->fails = 0;
                    st->error[0] = '\0';
                    st->indicators = sum.indicators;
                    st->added = sum.added;
                    st->removed = sum.removed;
                    /* A "pull now" during the pull stays due. */
                    if (pl->next[i] != 0)
                        pl->next[i] = ms + p->every_ms;
                } else {
                    pl->backoff[i] =
                        pl->backoff[i] == 0 ? PULL_BACKOFF_FIRST_MS : pl->backoff[i] * 2;
                    if (pl->backoff[i] > p->every_ms)
                        pl->backoff[i] = p->every_ms;
                    st->fails++;
                    snprintf(st->error, sizeof st->error, "%s",
                             sum.error[0] ? sum.error : "the pull failed (see the server log)");
                    if (pl->next[i] != 0)
                        pl->next[i] = now_ms() + pl->backoff[i];
                    char msg[700];
                    snprintf(msg, sizeof msg,
                             "pull from %s failed (%u in a row; see above); retry in %lld ms",
                             p->url, st->fails, (long long)pl->backoff[i]);
                    log_line(NULL, "warn", "intel_pull_failed", msg);
                }
            }
            wake = pl->next[i] < wake ? pl->next[i] : wake;
        }
        struct timespec ts = {(time_t)(wake / 1000), (long)(wake % 1000) * 1000000};
        if (!pl->stop)
            pthread_cond_timedwait(&pl->cv, &pl->mu, &ts);
    }
    pthread_mutex_unlock(&pl->mu);
    return NULL;
}

/* ---- the command ------------------------------------------------------------------------------
 */

static int check_config(const char *path)
{
    ch_serve_config c;
    ch_error err = {0};
    int rc = ch_serve_config_load(path, &c, &err);
    if (rc == 0)
        rc = ch_serve_config_check(&c, &err);
    if (rc < 0) {
        fprintf(stderr, "coinhound serve: %s\n", err.msg);
        if (rc != CH_EPARSE && rc != CH_ELIMIT && rc != CH_EUSAGE && rc != CH_ENOTFOUND &&
            rc != CH_EIO)
            return CH_EXIT_FAIL;
        ch_serve_config_free(&c);
        return CH_EXIT_USAGE;
    }
    printf("%s: configuration OK (listen %s, journal %s, %zu spool director%s, ingest %s)\n", path,
           c.listen, c.journal_dir, c.nspool, c.nspool == 1 ? "y" : "ies",
           c.ingest_token_file ? "enabled" : "disabled (no tokens.ingest)");
    ch_serve_config_free(&c);
    return CH_EXIT_OK;
}

int ch_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", required_argument, NULL, 'C'},
        {"log-format", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *check = NULL;
    optind = 0;
    int o;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            config = optarg;
            break;
        case 'C':
            check = optarg;
            break;
        case 'L':
            if (strcmp(optarg, "json") == 0)
                log_json = true;
            else if (strcmp(optarg, "text") == 0)
                log_json = false;
            else {
                fprintf(stderr, "coinhound serve: --log-format: text or json\n");
                return CH_EXIT_USAGE;
            }
            break;
        case 'h':
            serve_usage(stdout);
            return CH_EXIT_OK;
        default:
            serve_usage(stderr);
            return CH_EXIT_USAGE;
        }
    }
    if (check != NULL)
        return check_config(check);
    if (config == NULL || optind < argc) {
        serve_usage(stderr);
        return CH_EXIT_USAGE;
    }
    ch_serve_config cfg;
    ch_error err = {0};
    if (ch_serve_config_load(config, &cfg, &err) < 0) {
        log_line(NULL, "error", "bad_config", err.msg);
        return CH_EXIT_USAGE;
    }
    /* Every thread started from here on inherits the blocked set: signals come to sigwait. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Request bodies and journal entries are megabytes each: past glibc's default threshold
     * every one would be a fresh mmap, page-faulted in and unmapped again (a sixth of the
     * server's CPU in a profile). Keep such blocks in the heap for reuse instead. */
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    ch_serve *srv = NULL;
    int rc = ch_serve_open(&cfg, log_line, NULL, &srv, &err);
    if (rc < 0) {
        log_line(NULL, "error", "start_failed", err.msg);
        ch_serve_config_free(&cfg);
        return rc == CH_EUSAGE ? CH_EXIT_USAGE : CH_EXIT_FAIL;
    }
    static puller pl; /* big (a status per feed), and the hook outlives nothing here */
    memset(&pl, 0, sizeof pl);
    pl.cfg = &cfg;
    pl.srv = srv;
    pthread_mutex_init(&pl.mu, NULL);
    pthread_cond_init(&pl.cv, NULL);
    const ch_serve_intel_hook hook = {pull_status, pull_now, &pl};
    bool pulling = cfg.npull > 0 && pthread_create(&pl.t, NULL, pull_main, &pl) == 0;
    if (pulling)
        ch_serve_set_intel(srv, &hook);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            log_line(NULL, "info", "sighup", "SIGHUP: reloading pack, context and reference sets");
            ch_serve_reload(srv);
            continue;
        }
        log_line(NULL, "info", "stopping",
                 sig == SIGTERM ? "SIGTERM: draining" : "SIGINT: draining");
        break;
    }
    if (pulling) {
        ch_serve_set_intel(srv, NULL);
        pthread_mutex_lock(&pl.mu);
        pl.stop = true;
        pthread_cond_signal(&pl.cv);
        pthread_mutex_unlock(&pl.mu);
        pthread_join(pl.t, NULL);
    }
    rc = ch_serve_drain(srv, &err);
    ch_serve_close(srv);
    ch_serve_config_free(&cfg);
    return rc < 0 ? CH_EXIT_FAIL : CH_EXIT_OK;
}
