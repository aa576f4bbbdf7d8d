/*
 * yaml_util.h - the small readers every YAML loader of coinhound needs on libyaml's document
 * tree: a scalar's bytes, a mapping key test, a sequence's length, a node's position and the
 * "not valid YAML" message.
 *
 * The rule loader and the context loader walk libyaml documents the same way (a loader struct
 * carrying the file name and an error, a `want_*` per value shape); these are the pieces of
 * that walk which do not depend on what is being loaded, so both read scalars and report
 * positions identically: a rule author and a context author see "FILE:LINE:COL: ..." counted
 * the same way (1-based, as editors count). All are O(1) except ch_yaml_key_is (O(key)).
 *
 * Ownership: returned strings borrow from the document and live until yaml_document_delete.
 */
#ifndef CH_CORE_YAML_UTIL_H
#define CH_CORE_YAML_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "core/error.h"

/* A scalar's bytes (not NUL-terminated in general: a scalar may hold NUL bytes; libyaml does
 * add one after them) and, when len is not NULL, their count. NULL (and 0) when n is absent
 * or not a scalar. */
const char *ch_yaml_scalar(const yaml_node_t *n, size_t *len);

/* Is k a scalar spelled exactly `name`? */
bool ch_yaml_key_is(const yaml_node_t *k, const char *name);

/* The number of items of a sequence node (n must be one). */
size_t ch_yaml_seq_len(const yaml_node_t *n);

/* Where n starts, 1-based; 1:1 when n is NULL (the error is about the document as a whole). */
void ch_yaml_pos(const yaml_node_t *n, unsigned *line, unsigned *col);

/* Set err to code and "FILE:LINE:COL: SUBJECT: MESSAGE" (without "SUBJECT: " when subject is
 * NULL), the position being n's (ch_yaml_pos) and the message fmt with ap, cut at 400 bytes.
 * Returns code. The loaders' variadic `fail` functions wrap it. */
int ch_yaml_vfail(ch_error *err, const char *file, const char *subject, const yaml_node_t *n,
                  int code, const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

/* CH_EPARSE with "FILE:LINE:COL: not valid YAML: PROBLEM" from a parser whose load failed. */
int ch_yaml_load_error(ch_error *err, const char *file, const yaml_parser_t *parser);

#endif
