/*
 * bare_simdjson.cpp - the denominator of coinhound's speed target: parse every CloudTrail
 * record with simdjson and do nothing else.
 *
 *   bare_simdjson [--mode dom|many|ondemand] [--s3] FILE...
 *
 * Modes (all touch eventTime, eventName, userIdentity.userName and sourceIPAddress of every
 * record, so no parse can be skipped and bench/run can compare checksums across baselines):
 *   dom       one simdjson::dom::parser, one parse() per line, in place (the line reader
 *             leaves 64 readable bytes after each line): what coinhound's ch_json_parse does,
 *             and the rate the target is a ratio of.
 *   many      dom::parser::parse_many over 16 MiB windows of whole lines (simdjson's own
 *             JSON Lines path; it may use a second thread, which taskset pins to the same core).
 *   ondemand  simdjson::ondemand, one iterate() per line. On-demand validates only what it
 *             reads, so it is an upper bound for "parse", not a like-for-like DOM.
 * --s3: each FILE (gzip or not, read whole through zlib) is one {"Records":[...]} document;
 *       dom/many parse it as a DOM and walk Records, ondemand iterates it.
 *
 * Built by bench/run: c++ -O2 -std=c++17 bare_simdjson.cpp -lsimdjson -lz. Prints one
 * lr_report line on stdout; errors and usage on stderr; exit 1 on a read failure.
 */
#include <simdjson.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "lines.h"

using namespace simdjson;

/* SIMDJSON_VERSION is a bare token sequence (3.0.1) in Debian's 3.0 headers. */
#define BS_STR(x) #x
#define BS_XSTR(x) BS_STR(x)

namespace
{

struct totals {
    uint64_t records = 0, errors = 0, check = 0, bytes = 0;
};

inline void touch_dom(dom::element doc, totals &t)
{
    std::string_view s;
    if (doc["eventTime"].get(s) == SUCCESS)
        t.check += s.size();
    if (doc["eventName"].get(s) == SUCCESS)
        t.check += s.size();
    if (doc["userIdentity"]["userName"].get(s) == SUCCESS)
        t.check += s.size();
    if (doc["sourceIPAddress"].get(s) == SUCCESS)
        t.check += s.size();
    t.records++;
}

/* On-demand reads forward: fields are asked for in CloudTrail's own order (userIdentity,
 * eventTime, eventName, sourceIPAddress) so each lookup continues where the last stopped;
 * operator[] still finds a field that comes earlier, by wrapping around. */
template <typename Obj> inline bool touch_od(Obj &&obj, totals &t)
{
    std::string_view s;
    ondemand::object ui;
    auto u = obj["userIdentity"];
    if (u.get_object().get(ui) == SUCCESS) {
        if (ui["userName"].get_string().get(s) == SUCCESS)
            t.check += s.size();
    }
    if (obj["eventTime"].get_string().get(s) == SUCCESS)
        t.check += s.size();
    if (obj["eventName"].get_string().get(s) == SUCCESS)
        t.check += s.size();
    if (obj["sourceIPAddress"].get_string().get(s) == SUCCESS)
        t.check += s.size();
    else
        return false;
    t.records++;
    return true;
}

int run_lines_dom(const char *path, totals &t)
{
    lr r;
    if (lr_open(&r, path) < 0) {
        perror(path);
        return -1;
    }
    dom::parser parser;
    char *p;
    size_t n;
    int rc;
    while ((rc = lr_next(&r, &p, &n)) == 1) {
        dom::element doc;
        if (parser.parse(p, n, false).get(doc) != SUCCESS) {
            t.errors++;
            continue;
        }
        touch_dom(doc, t);
    }
    t.bytes += r.bytes;
    lr_close(&r);
    return rc;
}

int run_lines_ondemand(const char *path, totals &t)
{
    lr r;
    if (lr_open(&r, path) < 0) {
        perror(path);
        return -1;
    }
    ondemand::parser parser;
    char *p;
    size_t n;
    int rc;
    while ((rc = lr_next(&r, &p, &n)) == 1) {
        ondemand::document doc;
        if (parser.iterate(p, n, n + LR_PAD).get(doc) != SUCCESS) {
            t.errors++;
            continue;
        }
        ondemand::object obj;
        if (doc.get_object().get(obj) != SUCCESS || !touch_od(obj, t))
            t.errors++;
    }
    t.bytes += r.bytes;
    lr_close(&r);
    return rc;
}

/* parse_many over windows of whole lines: read 16 MiB, cut after the last '\n', parse that
 * stretch as a document stream, carry the rest over. */
int run_lines_many(const char *path, totals &t)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        perror(path);
        return -1;
    }
    size_t cap = LR_INITIAL;
    std::vector<char> buf(cap + SIMDJSON_PADDING);
    size_t have = 0;
    bool eof = false;
    dom::parser parser;
    int rc = 0;
    while (!eof || have > 0) {
        while (!eof && have < cap) {
            ssize_t got = read(fd, buf.data() + have, cap - have);
            if (got < 0) {
                if (errno == EINTR)
                    continue;
                perror(path);
                rc = -1;
                goto done;
            }
            if (got == 0)
                eof = true;
            have += (size_t)got;
            t.bytes += (uint64_t)got;
        }
        size_t cut = have;
        if (!eof) {
            const char *nl = (const char *)memrchr(buf.data(), '\n', have);
            if (!nl) { /* one line larger than the window: grow */
                cap *= 2;
                buf.resize(cap + SIMDJSON_PADDING);
                continue;
            }
            cut = (size_t)(nl - buf.data()) + 1;
        }
        if (cut > 0) {
            dom::document_stream stream;
            if (parser.parse_many(buf.data(), cut, 1 << 20).get(stream) != SUCCESS) {
                t.errors++;
            } else {
                for (auto res : stream) {
                    dom::element doc;
                    if (res.get(doc) != SUCCESS) {
                        t.errors++;
                        break; /* a stream stops at its first error */
                    }
                    touch_dom(doc, t);
                }
            }
        }
        memmove(buf.data(), buf.data() + cut, have - cut);
        have -= cut;
        if (eof && have == 0)
            break;
    }
done:
    close(fd);
    return rc;
}

/* Whole file (decompressed when gzip'd) into a padded string. */
int slurp(const char *path, padded_string &out)
{
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        perror(path);
        return -1;
    }
    gzbuffer(gz, 1 << 20);
    std::string s;
    std::vector<char> chunk(1 << 20);
    for (;;) {
        int got = gzread(gz, chunk.data(), (unsigned)chunk.size());
        if (got < 0) {
            int e;
            fprintf(stderr, "%s: %s\n", path, gzerror(gz, &e));
            gzclose(gz);
            return -1;
        }
        if (got == 0)
            break;
        s.append(chunk.data(), (size_t)got);
    }
    gzclose(gz);
    out = padded_string(s);
    return 0;
}

int run_s3(const char *path, bool ondemand_mode, totals &t)
{
    static dom::parser dparser;
    static ondemand::parser oparser;
    padded_string json;
    if (slurp(path, json) < 0)
        return -1;
    t.bytes += json.size();
    if (!ondemand_mode) {
        dom::array records;
        if (dparser.parse(json)["Records"].get(records) != SUCCESS) {
            t.errors++;
            return 0;
        }
        for (dom::element rec : records)
            touch_dom(rec, t);
        return 0;
    }
    ondemand::document doc;
    ondemand::array records;
    if (oparser.iterate(json).get(doc) != SUCCESS ||
        doc["Records"].get_array().get(records) != SUCCESS) {
        t.errors++;
        return 0;
    }
    for (auto v : records) {
        ondemand::object obj;
        if (v.get_object().get(obj) != SUCCESS || !touch_od(obj, t)) {
            t.errors++;
            break;
        }
    }
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    std::string mode = "dom";
    bool s3 = false;
    std::vector<const char *> files;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mode") && i + 1 < argc)
            mode = argv[++i];
        else if (!strcmp(argv[i], "--s3"))
            s3 = true;
        else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "usage: bare_simdjson [--mode dom|many|ondemand] [--s3] FILE...\n");
            return 2;
        } else
            files.push_back(argv[i]);
    }
    if (files.empty() || (mode != "dom" && mode != "many" && mode != "ondemand")) {
        fprintf(stderr, "usage: bare_simdjson [--mode dom|many|ondemand] [--s3] FILE...\n");
        return 2;
    }
    totals t;
    double t0 = lr_now();
    for (const char *f : files) {
        int rc;
        if (s3)
            rc = run_s3(f, mode == "ondemand", t);
        else if (mode == "dom")
            rc = run_lines_dom(f, t);
        else if (mode == "many")
            rc = run_lines_many(f, t);
        else
            rc = run_lines_ondemand(f, t);
        if (rc < 0)
            return 1;
    }
    double dt = lr_now() - t0;
    std::string impl = "simdjson-" + mode + (s3 ? "-s3" : "") + " " + BS_XSTR(SIMDJSON_VERSION) +
                       " (" + simdjson::get_active_implementation()->name() + ")";
    for (char &c : impl)
        if (c == ' ')
            c = '_';
    lr_report(impl.c_str(), t.records, t.bytes, t.errors, dt, t.check);
    return 0;
}
