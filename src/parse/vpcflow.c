/* vpcflow.c - placeholder until the vpcflow parser lands (being written now). */
#include "parse/source.h"
static int detect(const char *h, size_t n) { (void)h; (void)n; return 0; }
static ch_stream *open_(ch_input *in, ch_diag *d, ch_error *e) { (void)in; (void)d; return (void)ch_error_set(e, CH_EUSAGE, "not built"), (ch_stream *)0; }
static int next_(ch_stream *s, ch_event *ev) { (void)s; (void)ev; return 0; }
static void close_(ch_stream *s) { (void)s; }
const ch_source_type ch_source_vpcflow = {"vpcflow", CH_DS_UNKNOWN, detect, open_, next_, close_};
