/*
 * yaml_util.c - scalar, key, sequence and position readers shared by the YAML loaders (see
 * yaml_util.h). Nothing here allocates or keeps state.
 */
#include "core/yaml_util.h"

#include <stdio.h>
#include <string.h>

const char *ch_yaml_scalar(const yaml_node_t *n, size_t *len)
{
    if (len)
        *len = 0;
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return NULL;
    if (len)
        *len = n->data.scalar.length;
    return (const char *)n->data.scalar.value;
}

bool ch_yaml_key_is(const yaml_node_t *k, const char *name)
{
    size_t n;
    const char *s = ch_yaml_scalar(k, &n);
    return s != NULL && n == strlen(name) && memcmp(s, name, n) == 0;
}

size_t ch_yaml_seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

void ch_yaml_pos(const yaml_node_t *n, unsigned *line, unsigned *col)
{
    *line = n ? (unsigned)n->start_mark.line + 1 : 1;
    *col = n ? (unsigned)n->start_mark.column + 1 : 1;
}

int ch_yaml_vfail(ch_error *err, const char *file, const char *subject, const yaml_node_t *n,
                  int code, const char *fmt, va_list ap)
{
    char what[400];
    vsnprintf(what, sizeof what, fmt, ap);
    unsigned line, col;
    ch_yaml_pos(n, &line, &col);
    if (subject != NULL)
        return ch_error_set(err, code, "%s:%u:%u: %s: %s", file, line, col, subject, what);
    return ch_error_set(err, code, "%s:%u:%u: %s", file, line, col, what);
}

int ch_yaml_load_error(ch_error *err, const char *file, const yaml_parser_t *parser)
{
    ch_error_set(err, CH_EPARSE, "%s:%zu:%zu: not valid YAML: %s", file,
                 parser->problem_mark.line + 1, parser->problem_mark.column + 1,
                 parser->problem ? parser->problem : "error");
    return CH_EPARSE;
}
