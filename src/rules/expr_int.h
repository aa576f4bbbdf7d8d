/*
 * expr_int.h - the inside of the expression language, shared by its files:
 *   expr_lex.c    source text -> tokens (literals decoded and typed here)
 *   expr.c        tokens -> tree (parser and compiler), dispatch hints, lifetime
 *   expr_ops.c    the operator table: one test per operator, and the compiled value sets
 *   expr_eval.c   tree walk per event, per-thread scratch
 * Nothing here is part of the public contract (expr.h).
 */
#ifndef CH_RULES_EXPR_INT_H
#define CH_RULES_EXPR_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/field.h"
#include "core/mem.h"
#include "rules/expr.h"

/* ---- tokens ---- */

typedef enum tok_kind {
    T_EOF = 0,
    T_IDENT, /* field path (str/slen hold it, also for `quoted` paths) */
    T_STR,   /* string literal, decoded into str/slen */
    T_NUM,   /* number: is_int, i, d */
    T_DUR,   /* duration: i in ms */
    T_IP,    /* address: ip */
    T_CIDR,  /* network: ip, prefix */
    T_SET,   /* $name: str/slen hold the name */
    T_TRUE,
    T_FALSE,
    T_LP,
    T_RP,
    T_LB,
    T_RB,
    T_COMMA,
    T_EQ,
    T_NE,
    T_IEQ, /* =~ */
    T_INE, /* !~ */
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_AND,
    T_OR,
    T_NOT,
    T_IN,
    T_EXISTS,
    T_CONTAINS,
    T_STARTSWITH,
    T_ENDSWITH,
    T_MATCHES,
} tok_kind;

typedef struct tok {
    tok_kind k;
    bool icase;        /* '~' after a word operator */
    uint32_t pos, len; /* bytes of source the token spans */
    char *str;         /* arena; NUL-terminated */
    uint32_t slen;
    bool is_int;
    int64_t i;
    double d;
    ch_ip ip;
    uint8_t prefix; /* in the family's own bits */
} tok;

typedef struct lexer {
    const char *src;
    size_t n, pos;
    ch_arena *arena;
    ch_error *err;
} lexer;

/* Next token into t; 0 or a negative code with err set (message with line:column). */
int ch__expr_lex(lexer *lx, tok *t);
/* 1-based line and column (in characters) of byte offset pos. */
void ch__expr_linecol(const char *src, size_t n, size_t pos, unsigned *line, unsigned *col);
/* How a token reads in an error message: "')'", "end of input", "\"abc\"". */
const char *ch__expr_tok_desc(const lexer *lx, const tok *t, char *buf, size_t cap);
/* Operator spelling for messages ("==", "contains~"). */
const char *ch__expr_tok_name(tok_kind k, bool icase);

/* ---- literals and value sets ---- */

typedef enum lit_kind { L_STR, L_NUM, L_BOOL, L_IP, L_CIDR } lit_kind;

/* A typed constant with every other reading of it precomputed, so that a test against a
 * value of any type is a branch, not a parse. */
typedef struct lit {
    lit_kind kind;
    bool has_num, num_int, has_ip, has_bool, b;
    ch_sv s; /* L_STR: the text (lower-cased for case-insensitive operators) */
    int64_t i;
    double d;
    ch_ip ip;
    uint8_t prefix;
} lit;

typedef struct vset vset; /* a compiled `in [...]` list (expr_ops.c) */

/* Build a set from list literals (already lower-cased for icase). NULL when out of memory. */
vset *ch__vset_build(ch_arena *a, const lit *items, size_t n, bool icase);
bool ch__vset_has(const vset *s, const ch_value *v);
/* The string members of a set, for dispatch hints; false when some member is not a string. */
bool ch__vset_strings(const vset *s, const ch_sv **out, size_t *n);

/* ---- the tree ---- */

typedef enum node_kind { N_AND, N_OR, N_NOT, N_PRED } node_kind;

/* expr_prefilter.c: literals one of which every match of a `matches` pattern contains (lower
 * case for a caseless pattern), and a table of their first bytes (1), with 2 on the bytes
 * >= 0x80 of a caseless one, whose texts always go to PCRE2. Lives in the expression's arena. */
#define CH_RE_PF_MAX 16
#define CH_RE_PF_LEN 32
typedef struct ch_re_prefilter {
    uint8_t first[256];
    bool icase;
    uint8_t nlit;
    uint8_t len[CH_RE_PF_MAX];
    char lit[CH_RE_PF_MAX][CH_RE_PF_LEN];
} ch_re_prefilter;

/* Fills out and returns true when the pattern source (n bytes, PCRE2 syntax) has a useful set;
 * false (out untouched) for any pattern it cannot read for sure. */
bool ch__re_prefilter_build(const char *pat, size_t n, bool icase, ch_re_prefilter *out);
/* false only when no match of the pattern can be in the text: no literal of the set in it. */
bool ch__re_prefilter_may_match(const ch_re_prefilter *pf, const char *t, size_t n);

typedef struct node node;

/* An operator: one registered line in expr_ops.c. test is NULL for `exists`. */
typedef struct op_def {
    const char *name;
    bool (*test)(const node *n, const ch_value *v, ch_expr_scratch *s);
} op_def;

struct node {
    node_kind kind;
    uint32_t pos; /* source offset, for messages */
    uint32_t nkids;
    node **kids; /* N_AND, N_OR: nkids; N_NOT: one */
    /* N_PRED */
    const op_def *op;
    bool neg, icase;
    const ch_field_ref *field;
    const ch_field_ref *rfield; /* `a.b == c.d`: the other field (op is ch__op_eq_field) */
    lit lit;                    /* comparison and string operators */
    const vset *set;            /* in [...] */
    const ch_expr_env *env;     /* in $name: the expression's copy of the env */
    void *handle;
    pcre2_code *re;
    const ch_re_prefilter *re_pf; /* NULL: every text goes to PCRE2 */
    /* event.dataset == / in [...] against known dataset names: a bit test on the event's
     * typed dataset instead of a string compare (it runs for most rules on most events). */
    bool ds_fast;
    uint32_t ds_mask;
    /* ch__expr_pred_text and ch__expr_pred_key of this test, found once at compile (after
     * ds_fast, which they depend on): the text's answer asks them for every record. */
    bool text_lit, text_key;
};

extern const op_def ch__op_eq, ch__op_lt, ch__op_le, ch__op_gt, ch__op_ge, ch__op_in_list,
    ch__op_in_set, ch__op_contains, ch__op_startswith, ch__op_endswith, ch__op_matches,
    ch__op_exists, ch__op_eq_field;

struct ch_expr_scratch {
    ch_field_cache cache;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    uint64_t regex_errors;
};

struct ch_expr {
    node *root;
    ch_arena arena; /* nodes, strings, sets */
    char *src;
    ch_expr_env env;
    bool has_env;
    /* What the expression owns besides its arena, as untyped lists so that one growth
     * routine serves all three: ch_field_ref *, pcre2_code *, resolver handles. */
    void **refs;
    size_t nrefs, caprefs;
    void **res;
    size_t nres, capres;
    void **handles;
    size_t nhandles, caphandles;
    ch_expr_hints hints;
};

/* Does the predicate n read a raw path (its field, or the other field of `a.b == c.d`)? */
bool ch__expr_pred_raw(const node *n);
/* A raw-path test that a record's text can prove false (expr_index.c). */
bool ch__expr_pred_text(const node *n);
bool ch__expr_pred_key(const node *n);

/* ASCII lower-case compare of a against already-lower b. */
bool ch__sv_ieq(ch_sv a, ch_sv lower_b);

#endif
