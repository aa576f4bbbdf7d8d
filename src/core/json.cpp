/*
 * json.cpp - wraps simdjson::dom behind the C API of json.h. No exceptions cross the
 * boundary: every simdjson call uses the error-code interface. The handles of json.h are the
 * simdjson objects themselves, stored by value in opaque words (checked by static_assert),
 * so no allocation happens per value or per iteration.
 */
#include "core/json.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>

#include <simdjson.h>

using namespace simdjson;

static_assert(sizeof(dom::element) <= sizeof(ch_json_val), "element fits ch_json_val");
static_assert(std::is_trivially_copyable<dom::element>::value, "element is plain data");
static_assert(2 * sizeof(dom::object::iterator) <= sizeof(ch_json_iter), "object iterators fit");
static_assert(2 * sizeof(dom::array::iterator) <= sizeof(ch_json_iter), "array iterators fit");

struct ch_json_parser {
    dom::parser parser;
    size_t max_doc;
    const char *reason;
    bool ok;
    ch_json_parser(size_t max, size_t depth) : parser(max), max_doc(max), reason("")
    {
        /* Fix the depth cap now; capacity then grows with the largest record seen. */
        ok = parser.allocate(4096, depth) == SUCCESS;
    }
};

static inline dom::element el(ch_json_val v)
{
    dom::element e;
    std::memcpy(static_cast<void *>(&e), v.opaque, sizeof e);
    return e;
}

static inline ch_json_val wrap(dom::element e)
{
    ch_json_val v;
    std::memset(v.opaque, 0, sizeof v.opaque);
    std::memcpy(v.opaque, static_cast<const void *>(&e), sizeof e);
    return v;
}

/* A parser of either API, or nullptr when it cannot allocate (max_depth 0: the default 1024). */
template <class T> static T *make_parser(size_t max_doc, size_t max_depth)
{
    T *p = new (std::nothrow) T(max_doc, max_depth ? max_depth : 1024);
    if (p != nullptr && !p->ok) {
        delete p;
        return nullptr;
    }
    return p;
}

extern "C" ch_json_parser *ch_json_parser_new(size_t max_doc, size_t max_depth)
{
    return make_parser<ch_json_parser>(max_doc, max_depth);
}

extern "C" void ch_json_parser_free(ch_json_parser *p) { delete p; }

static const char *reason_of(error_code e)
{
    switch (e) {
    case DEPTH_ERROR:
        return "depth";
    case UTF8_ERROR:
        return "utf8";
    case CAPACITY:
        return "too_large";
    case MEMALLOC:
        return "memory";
    case EMPTY:
        return "empty";
    case UNCLOSED_STRING:
        return "unclosed_string";
    case UNESCAPED_CHARS:
        return "control_char";
    default:
        return "syntax";
    }
}

extern "C" int ch_json_parse(ch_json_parser *p, const char *buf, size_t len, size_t cap,
                             ch_json_val *root, ch_error *err)
{
    if (len > p->max_doc) {
        p->reason = "too_large";
        return ch_error_set(err, CH_ELIMIT, "JSON document of %zu bytes exceeds the %zu byte cap",
                            len, p->max_doc);
    }
    dom::element e;
    error_code ec =
        p->parser.parse(reinterpret_cast<const uint8_t *>(buf), len, cap < len + SIMDJSON_PADDING)
            .get(e);
    if (ec) {
        p->reason = reason_of(ec);
        return ch_error_set(err, (ec == DEPTH_ERROR || ec == CAPACITY) ? CH_ELIMIT : CH_EPARSE,
                            "%s", error_message(ec));
    }
    *root = wrap(e);
    return 0;
}

extern "C" const char *ch_json_last_reason(const ch_json_parser *p) { return p->reason; }

extern "C" ch_json_type ch_json_typeof(ch_json_val v)
{
    switch (el(v).type()) {
    case dom::element_type::NULL_VALUE:
        return CH_JSON_NULL;
    case dom::element_type::BOOL:
        return CH_JSON_BOOL;
    case dom::element_type::INT64:
        return CH_JSON_INT;
    case dom::element_type::UINT64:
        return CH_JSON_UINT;
    case dom::element_type::DOUBLE:
        return CH_JSON_DOUBLE;
    case dom::element_type::STRING:
        return CH_JSON_STRING;
    case dom::element_type::ARRAY:
        return CH_JSON_ARRAY;
    case dom::element_type::OBJECT:
        return CH_JSON_OBJECT;
    }
    return CH_JSON_INVALID;
}

extern "C" bool ch_json_get_str(ch_json_val v, const char **s, size_t *n)
{
    std::string_view sv;
    if (el(v).get_string().get(sv))
        return false;
    *s = sv.data();
    *n = sv.size();
    return true;
}

extern "C" bool ch_json_get_i64(ch_json_val v, int64_t *out)
{
    return !el(v).get_int64().get(*out);
}
extern "C" bool ch_json_get_u64(ch_json_val v, uint64_t *out)
{
    return !el(v).get_uint64().get(*out);
}
extern "C" bool ch_json_get_f64(ch_json_val v, double *out)
{
    return !el(v).get_double().get(*out);
}
extern "C" bool ch_json_get_bool(ch_json_val v, bool *out) { return !el(v).get_bool().get(*out); }

extern "C" bool ch_json_obj_get(ch_json_val obj, const char *key, size_t klen, ch_json_val *out)
{
    dom::object o;
    if (el(obj).get_object().get(o))
        return false;
    dom::element e;
    if (o.at_key(std::string_view(key, klen)).get(e))
        return false;
    *out = wrap(e);
    return true;
}

extern "C" bool ch_json_obj_any_key(ch_json_val obj, bool (*pred)(const char *key, size_t klen))
{
    dom::object o;
    if (el(obj).get_object().get(o))
        return false;
    for (dom::key_value_pair kv : o)
        if (pred(kv.key.data(), kv.key.size()))
            return true;
    return false;
}

extern "C" bool ch_json_obj_iter(ch_json_val obj, ch_json_iter *it)
{
    dom::object o;
    if (el(obj).get_object().get(o))
        return false;
    auto *its = reinterpret_cast<dom::object::iterator *>(it->opaque);
    new (&its[0]) dom::object::iterator(o.begin());
    new (&its[1]) dom::object::iterator(o.end());
    return true;
}

extern "C" bool ch_json_obj_next(ch_json_iter *it, const char **key, size_t *klen, ch_json_val *v)
{
    auto *its = reinterpret_cast<dom::object::iterator *>(it->opaque);
    if (!(its[0] != its[1]))
        return false;
    std::string_view k = its[0].key();
    *key = k.data();
    *klen = k.size();
    *v = wrap(its[0].value());
    ++its[0];
    return true;
}

extern "C" bool ch_json_arr_iter(ch_json_val arr, ch_json_iter *it)
{
    dom::array a;
    if (el(arr).get_array().get(a))
        return false;
    auto *its = reinterpret_cast<dom::array::iterator *>(it->opaque);
    new (&its[0]) dom::array::iterator(a.begin());
    new (&its[1]) dom::array::iterator(a.end());
    return true;
}

extern "C" bool ch_json_arr_next(ch_json_iter *it, ch_json_val *v)
{
    auto *its = reinterpret_cast<dom::array::iterator *>(it->opaque);
    if (!(its[0] != its[1]))
        return false;
    *v = wrap(*its[0]);
    ++its[0];
    return true;
}

extern "C" int ch_json_write(ch_json_val v, ch_buf *out)
{
    try {
        std::string s = simdjson::minify(el(v));
        return ch_buf_add(out, s.data(), s.size());
    } catch (...) {
        return CH_ENOMEM;
    }
}

extern "C" int ch_json_minify(const char *in, size_t len, char *out, size_t *outlen)
{
    size_t n = 0;
    if (simdjson::minify(in, len, out, n))
        return CH_EPARSE;
    *outlen = n;
    return 0;
}

/* ---- owned documents: copies ----------------------------------------------------------------
 *
 * A parser's document is overwritten by its next parse. A stream read ahead on another thread
 * (ingest/prefetch.h) hands out events whose raw_doc must outlive that: the document is copied,
 * the used part of the tape and of the string buffer, byte for byte. Tape indexes and string
 * offsets are relative, so every value of the copy sits at the same index as in the original.
 * Cost: a walk of the tape and a memcpy of about twice the record's size, no parse (1,280
 * instructions a CloudTrail record; handing the parser's document over instead saved them but
 * cost more time: docs/BENCHMARKS.md sections 63 and 68). A copy's buffers hold tape_cap words
 * and str_cap bytes. */

struct ch_json_doc {
    dom::document doc;
    size_t tape_cap = 0, str_cap = 0;
};

extern "C" ch_json_doc *ch_json_doc_new(void) { return new (std::nothrow) ch_json_doc(); }

extern "C" void ch_json_doc_free(ch_json_doc *d) { delete d; }

extern "C" int ch_json_doc_copy(ch_json_doc *d, ch_json_val v, ch_json_val *out,
                                ch_json_strings *strings)
{
    /* A ch_json_val is a dom::element, whose only member is a tape_ref: the document pointer
     * and the value's tape index (tests/unit/test_merge.c writes copied documents back out). */
    static_assert(sizeof(dom::element) == sizeof(void *) + sizeof(size_t), "element layout");
    const dom::document *src;
    size_t index;
    std::memcpy(&src, &v.opaque[0], sizeof src);
    std::memcpy(&index, &v.opaque[1], sizeof index);
    const uint64_t *tape = src->tape.get();
    size_t tape_len = size_t(tape[0] & internal::JSON_VALUE_MASK) + 1;
    /* Stage 2 writes the strings in tape order, so the last string on the tape ends the used
     * part of the string buffer: the walk only remembers where the last one is (a number's
     * value takes the next word, which must not be read as a type). Measured by callgrind
     * (docs/BENCHMARKS.md section 26): computing every string's end cost twice as much. */
    size_t last = 0;
    for (size_t i = 1; i + 1 < tape_len;) {
        uint8_t t = uint8_t(tape[i] >> 56);
        last = t == '"' ? i : last;
        i += (t == 'l' || t == 'u' || t == 'd') ? 2 : 1;
    }
    size_t str_len = 0;
    if (last != 0) {
        size_t off = size_t(tape[last] & internal::JSON_VALUE_MASK);
        uint32_t n;
        std::memcpy(&n, src->string_buf.get() + off, sizeof n);
        str_len = off + sizeof n + n + 1;
    }
    if (tape_len > d->tape_cap) {
        size_t cap = tape_len < 256 ? 256 : tape_len * 2;
        uint64_t *nt = new (std::nothrow) uint64_t[cap];
        if (nt == nullptr)
            return CH_ENOMEM;
        d->doc.tape.reset(nt);
        d->tape_cap = cap;
    }
    if (str_len + 1 > d->str_cap) {
        size_t cap = str_len < 1024 ? 2048 : str_len * 2;
        uint8_t *ns = new (std::nothrow) uint8_t[cap];
        if (ns == nullptr)
            return CH_ENOMEM;
        d->doc.string_buf.reset(ns);
        d->str_cap = cap;
    }
    std::memcpy(d->doc.tape.get(), tape, tape_len * sizeof *tape);
    if (str_len > 0)
        std::memcpy(d->doc.string_buf.get(), src->string_buf.get(), str_len);
    const dom::document *dst = &d->doc;
    std::memset(out->opaque, 0, sizeof out->opaque);
    std::memcpy(&out->opaque[0], &dst, sizeof dst);
    std::memcpy(&out->opaque[1], &index, sizeof index);
    strings->from = reinterpret_cast<const char *>(src->string_buf.get());
    strings->len = str_len;
    strings->to = reinterpret_cast<const char *>(d->doc.string_buf.get());
    return 0;
}

/* ---- on-demand reads of a few paths (json.h: ch_json_lazy) ----------------------------------
 *
 * One loaded record is walked again from its start for each path asked (rewind keeps stage 1's
 * index, so a walk costs the structural steps to the key). Strings are handed out as the bytes
 * between their quotes in the loaded copy: load refused any text with a backslash, so no string
 * needs unescaping and no string buffer is written. */

struct ch_json_lazy {
    ondemand::parser parser;
    ondemand::document doc;
    std::unique_ptr<uint8_t[]> buf;
    size_t cap = 0, max_doc;
    bool ok;
    ch_json_lazy(size_t max, size_t depth) : parser(max), max_doc(max)
    {
        ok = parser.allocate(max < 4096 ? max : 4096, depth) == SUCCESS;
    }
};

extern "C" ch_json_lazy *ch_json_lazy_new(size_t max_doc, size_t max_depth)
{
    return make_parser<ch_json_lazy>(max_doc, max_depth);
}

extern "C" void ch_json_lazy_free(ch_json_lazy *l) { delete l; }

extern "C" int ch_json_lazy_load(ch_json_lazy *l, const char *buf, size_t len)
{
    if (len > l->max_doc)
        return CH_ELIMIT;
    if (std::memchr(buf, '\\', len) != nullptr)
        return CH_EPARSE;
    if (len + SIMDJSON_PADDING > l->cap) {
        size_t cap = len + SIMDJSON_PADDING < 4096 ? 4096 : (len + SIMDJSON_PADDING) * 2;
        uint8_t *nb = new (std::nothrow) uint8_t[cap];
        if (nb == nullptr)
            return CH_ENOMEM;
        l->buf.reset(nb);
        l->cap = cap;
    }
    std::memcpy(l->buf.get(), buf, len);
    std::memset(l->buf.get() + len, ' ', SIMDJSON_PADDING);
    ondemand::json_type t;
    if (l->parser.iterate(padded_string_view(l->buf.get(), len, l->cap)).get(l->doc) ||
        l->doc.type().get(t) || t != ondemand::json_type::object)
        return CH_EPARSE;
    return 0;
}

namespace
{
struct lazy_walk {
    const char *path;
    const ch_json_key *keys;
    unsigned nkeys, max_nest;
    ch_json_leaf_fn fn;
    void *ctx;
    bool stop;
};
} // namespace

/* On-demand compares a key with the text's bytes up to a closing quote, so a key holding a quote
 * would match across it (found by fuzz_json_lazy: "b\":" in {"b":"x"}). No key of a text without
 * a backslash can hold a quote or a backslash: such a key is missing, as in the DOM. */
static bool plain_key(std::string_view k)
{
    return std::memchr(k.data(), '"', k.size()) == nullptr &&
           std::memchr(k.data(), '\\', k.size()) == nullptr;
}

/* The value v at the end of a path, to w's callback. */
static int lazy_leaf(lazy_walk &w, ondemand::value &v, ondemand::json_type t)
{
    ch_json_leaf o{};
    switch (t) {
    case ondemand::json_type::string: {
        std::string_view tok = v.raw_json_token();
        const char *s = tok.data() + 1;
        const void *q = std::memchr(s, '"', tok.size() - 1);
        if (q == nullptr)
            return CH_EPARSE;
        o.type = CH_JSON_STRING;
        o.s = s;
        o.n = size_t(static_cast<const char *>(q) - s);
        break;
    }
    case ondemand::json_type::number: {
        ondemand::number_type nt;
        if (v.get_number_type().get(nt))
            return CH_EPARSE;
        if (nt == ondemand::number_type::signed_integer) {
            o.type = CH_JSON_INT;
            if (v.get_int64().get(o.i))
                return CH_EPARSE;
        } else if (nt == ondemand::number_type::unsigned_integer) {
            o.type = CH_JSON_UINT;
            if (v.get_uint64().get(o.u))
                return CH_EPARSE;
        } else {
            o.type = CH_JSON_DOUBLE;
            /* Not get_double: in Debian's simdjson 3.0.1 it reads some long mantissas wrongly
             * (0.0000000217597000000002175697 as 1.47e-09) and refuses a zero with a huge
             * exponent the DOM reads as 0 (both found by fuzz_json_lazy). strtod rounds
             * correctly, as the DOM does; the token ends at a ',', ']' or '}'. A number the
             * DOM refuses (1e400) is refused here too. */
            std::string_view tok = v.raw_json_token();
            o.d = std::strtod(tok.data(), nullptr);
            if (!std::isfinite(o.d))
                return CH_EPARSE;
        }
        break;
    }
    case ondemand::json_type::boolean:
        o.type = CH_JSON_BOOL;
        if (v.get_bool().get(o.b))
            return CH_EPARSE;
        break;
    case ondemand::json_type::null:
        o.type = CH_JSON_NULL;
        break;
    case ondemand::json_type::object:
        o.type = CH_JSON_OBJECT;
        break;
    default:
        return CH_EPARSE;
    }
    w.stop = w.fn(w.ctx, &o);
    return 0;
}

/* Keys [i..) from v; the shape of field.c's walk over the DOM. */
static int lazy_step(lazy_walk &w, ondemand::value &v, unsigned i, unsigned nest)
{
    ondemand::json_type t;
    if (v.type().get(t))
        return CH_EPARSE;
    if (t == ondemand::json_type::array) {
        if (nest >= w.max_nest)
            return 0;
        ondemand::array a;
        if (v.get_array().get(a))
            return CH_EPARSE;
        for (auto r : a) {
            ondemand::value e;
            if (r.get(e))
                return CH_EPARSE;
            int rc = lazy_step(w, e, i, nest + 1);
            if (rc != 0 || w.stop)
                return rc;
        }
        return 0;
    }
    if (i == w.nkeys)
        return lazy_leaf(w, v, t);
    if (t != ondemand::json_type::object)
        return 0;
    ondemand::object o;
    if (v.get_object().get(o))
        return CH_EPARSE;
    ondemand::value c;
    std::string_view key(w.path + w.keys[i].off, w.keys[i].len);
    error_code e = plain_key(key) ? o.find_field_unordered(key).get(c) : NO_SUCH_FIELD;
    if (e == NO_SUCH_FIELD)
        return 0;
    if (e)
        return CH_EPARSE;
    return lazy_step(w, c, i + 1, nest);
}

extern "C" int ch_json_lazy_visit(ch_json_lazy *l, const char *path, const ch_json_key *keys,
                                  unsigned nkeys, unsigned max_nest, ch_json_leaf_fn fn, void *ctx)
{
    lazy_walk w{path, keys, nkeys, max_nest, fn, ctx, false};
    l->doc.rewind();
    ondemand::value root; /* an object: load refused any other document */
    if (l->doc.get_value().get(root))
        return CH_EPARSE;
    return lazy_step(w, root, 0, 0);
}
