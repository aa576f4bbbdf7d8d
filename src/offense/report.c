/*
 * report.c - the hit sink and the offenses/users report sections. Kept apart from offense.c so
 * that the offense manager does not depend on user risk; this file is the only place where the
 * two meet.
 */
#include "offense/report.h"

#include "core/error.h"

static void sink_fail(ch_offense_sink *s, int rc)
{
    s->errors++;
    if (s->first_error == 0)
        s->first_error = rc;
}

void ch_offense_sink_hit(const ch_rule_hit *hit, void *ud)
{
    ch_offense_sink *s = ud;
    int rc;
    if (s->offenses != NULL && (rc = ch_offenses_add_hit(s->offenses, hit, NULL)) < 0)
        sink_fail(s, rc);
    if (s->risk != NULL && (rc = ch_risk_add_hit(s->risk, hit)) < 0)
        sink_fail(s, rc);
}

int ch_offense_report_json(ch_buf *b, const ch_offenses *m, const ch_risk *r, unsigned flags)
{
    int rc = m != NULL ? ch_offenses_json(b, m, CH_OFFENSE_MASK_ALL, flags)
                       : ch_buf_adds(b, "\"offenses\":[]");
    if (rc < 0 || (rc = ch_buf_addc(b, ',')) < 0)
        return rc;
    rc = r != NULL ? ch_risk_json(b, r, (flags & CH_OFFENSE_JSON_DETAIL) != 0)
                   : ch_buf_adds(b, "\"users\":[]");
    return rc < 0 ? rc : 0;
}

int ch_offense_report_table(ch_buf *b, const ch_offenses *m, const ch_risk *r, size_t limit)
{
    int rc = ch_buf_adds(b, "Offenses\n");
    if (rc >= 0)
        rc = m != NULL ? ch_offenses_table(b, m, CH_OFFENSE_MASK_ALL, limit)
                       : ch_buf_adds(b, "no offenses\n");
    if (rc >= 0)
        rc = ch_buf_adds(b, "\nUsers by risk\n");
    if (rc >= 0)
        rc = r != NULL ? ch_risk_table(b, r, limit) : ch_buf_adds(b, "no users at risk\n");
    return rc < 0 ? rc : 0;
}
