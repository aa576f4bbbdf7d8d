/*
 * fuzz_re_prefilter.c - libFuzzer target for the regex literal prefilter (rules/expr_prefilter.c),
 * the reader of `matches` pattern sources: input is "pattern \0 text" (no NUL: the input is the
 * pattern and the text is empty). The prefilter must never turn away a text PCRE2 matches:
 * for each pattern PCRE2 compiles (with expr.c's options, case-sensitive and caseless), a
 * prefilter that says "cannot match" while PCRE2 finds a match aborts the run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/expr_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    const char *p = (const char *)data;
    const char *z = memchr(p, '\0', size);
    size_t pn = z ? (size_t)(z - p) : size;
    const char *t = z ? z + 1 : "";
    size_t tn = z ? size - pn - 1 : 0;
    for (int icase = 0; icase < 2; icase++) {
        ch_re_prefilter pf;
        if (!ch__re_prefilter_build(p, pn, icase != 0, &pf))
            continue;
        if (ch__re_prefilter_may_match(&pf, t, tn))
            continue;
        int ec;
        PCRE2_SIZE eo;
        uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C |
                        (icase ? PCRE2_CASELESS : 0);
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)p, pn, opts, &ec, &eo, NULL);
        if (re == NULL)
            continue;
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        pcre2_match_context *mc = pcre2_match_context_create(NULL);
        pcre2_set_match_limit(mc, 100000);
        int rc = md != NULL && mc != NULL ? pcre2_match(re, (PCRE2_SPTR)t, tn, 0, 0, md, mc)
                                          : PCRE2_ERROR_NOMATCH;
        pcre2_match_context_free(mc);
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        if (rc >= 0)
            abort(); /* the prefilter turned away a text the pattern matches */
    }
    return 0;
}
