/*
 * report.c - the end-of-run report of `coinhound analyze`, for a person (table) or a program
 * (one JSON object on stdout with a "stats" key). Both show the same numbers.
 */
#include <string.h>
#include <sys/resource.h>

#include "cli/analyze_int.h"
#include "core/buf.h"

typedef struct totals {
    uint64_t records, events, skipped, errors, files, bytes;
} totals;

static totals sum(const ch_analyze *a)
{
    totals t = {0};
    for (int i = 0; i < CH_DS__COUNT; i++) {
        const ch_ds_stats *s = &a->diag.by_ds[i];
        t.records += s->records;
        t.events += s->events;
        t.skipped += s->skipped;
        t.files += s->files;
        t.bytes += s->bytes;
    }
    t.errors = a->diag.errors_total;
    return t;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
}

static void report_json(const ch_analyze *a, FILE *f)
{
    totals t = sum(a);
    ch_buf b;
    ch_buf_init(&b, 0);
    double el = a->elapsed > 0 ? a->elapsed : 1e-9;
    ch_buf_printf(&b,
                  "{\"stats\":{\"files\":%zu,\"records\":%llu,\"events\":%llu,\"skipped\":%llu,"
                  "\"errors\":%llu,\"unreadable\":%llu,\"bytes\":%llu,\"elapsed_s\":%.6f,"
                  "\"events_per_s\":%.1f,\"mb_per_s\":%.2f,\"peak_rss_kb\":%ld,\"by_type\":{",
                  a->files_done, (unsigned long long)t.records, (unsigned long long)t.events,
                  (unsigned long long)t.skipped, (unsigned long long)t.errors,
                  (unsigned long long)a->diag.unreadable_inputs, (unsigned long long)t.bytes,
                  a->elapsed, (double)t.events / el, (double)t.bytes / el / 1e6, peak_rss_kb());
    for (int i = 1; i < CH_DS__COUNT; i++)
        ch_buf_printf(&b, "%s\"%s\":%llu", i > 1 ? "," : "", ch_dataset_name((ch_dataset)i),
                      (unsigned long long)a->diag.by_ds[i].events);
    ch_buf_adds(&b, "},\"types\":{");
    for (int i = 1; i < CH_DS__COUNT; i++) {
        const ch_ds_stats *s = &a->diag.by_ds[i];
        ch_buf_printf(&b,
                      "%s\"%s\":{\"files\":%llu,\"records\":%llu,\"events\":%llu,\"skipped\":%llu,"
                      "\"errors\":%llu,\"bytes\":%llu}",
                      i > 1 ? "," : "", ch_dataset_name((ch_dataset)i),
                      (unsigned long long)s->files, (unsigned long long)s->records,
                      (unsigned long long)s->events, (unsigned long long)s->skipped,
                      (unsigned long long)s->errors, (unsigned long long)s->bytes);
    }
    ch_buf_adds(&b, "},\"errors_by_reason\":{");
    for (int i = 0; i < a->diag.nreasons; i++) {
        if (i)
            ch_buf_addc(&b, ',');
        ch_buf_add_json_str(&b, a->diag.reasons[i].name, strlen(a->diag.reasons[i].name));
        ch_buf_printf(&b, ":%llu", (unsigned long long)a->diag.reasons[i].count);
    }
    ch_buf_printf(&b,
                  "},\"merge\":{\"max_open\":%llu,\"late_opens\":%llu,\"out_of_order\":%llu,"
                  "\"sorted_files\":%llu,\"sort\":\"%s\",\"sorted_runs_in_memory\":%llu,"
                  "\"sorted_runs_on_disk\":%llu,\"chunks\":%llu}",
                  (unsigned long long)a->merge_stats.max_open_seen,
                  (unsigned long long)a->merge_stats.late_opens,
                  (unsigned long long)a->merge_stats.out_of_order,
                  (unsigned long long)a->merge_stats.sorted_files,
                  a->merge_stats.sorted_on_disk ? "disk"
                  : a->merge_stats.sorted_files ? "memory"
                                                : "none",
                  (unsigned long long)a->merge_stats.sorted_runs_in_memory,
                  (unsigned long long)a->merge_stats.sorted_runs_on_disk,
                  (unsigned long long)a->merge_stats.chunks);
    if (a->pipeline != NULL)
        ch_buf_printf(
            &b,
            ",\"pipeline\":{\"processed\":%llu,\"duplicates\":%llu,\"late\":%llu,"
            "\"late_max_s\":%lld,\"restored_keys\":%llu,\"restored_records\":%llu,"
            "\"dedupe_cap\":%llu}",
            (unsigned long long)a->pstats.processed, (unsigned long long)a->pstats.duplicates,
            (unsigned long long)a->pstats.late, (long long)(a->pstats.late_max_ms / 1000),
            (unsigned long long)a->pstats.restored_keys,
            (unsigned long long)a->pstats.restored_seen, (unsigned long long)a->pstats.dedupe_cap);
    if (a->geoip != NULL) {
        ch_geoip_stats g;
        ch_geoip_stats_get(a->geoip, &g);
        ch_buf_printf(&b,
                      ",\"geoip\":{\"databases\":%zu,\"lookups\":%llu,\"internal\":%llu,"
                      "\"cache_hits\":%llu,\"cache_misses\":%llu,\"unknown\":%llu}",
                      ch_geoip_db_count(a->geoip), (unsigned long long)g.lookups,
                      (unsigned long long)g.internal, (unsigned long long)g.cache_hits,
                      (unsigned long long)g.cache_misses, (unsigned long long)g.unknown);
    }
    if (a->entity != NULL) {
        ch_entity_stats xs;
        ch_entity_stats_get(a->entity, &xs);
        ch_buf_printf(&b,
                      ",\"entities\":{\"launches\":%llu,\"links\":%llu,\"enriched\":%llu,"
                      "\"misses\":%llu,\"evicted\":%llu}",
                      (unsigned long long)xs.launches, (unsigned long long)xs.links,
                      (unsigned long long)xs.enriched, (unsigned long long)xs.misses,
                      (unsigned long long)xs.evicted);
    }
    if (a->engine != NULL) {
        ch_engine_stats es;
        ch_engine_stats_get(a->engine, &es);
        ch_buf_printf(&b,
                      ",\"rules\":{\"loaded\":%u,\"evaluations\":%llu,\"hits\":%llu,"
                      "\"late\":%llu,\"keys\":%llu,\"keys_peak\":%llu,\"state_bytes_peak\":%llu,"
                      "\"cap_hits\":%llu}",
                      a->rules->n, (unsigned long long)es.evaluations, (unsigned long long)es.hits,
                      (unsigned long long)es.late, (unsigned long long)es.keys,
                      (unsigned long long)es.keys_peak, (unsigned long long)es.bytes_peak,
                      (unsigned long long)es.cap_hits);
    }
    ch_buf_addc(&b, '}');
    if (a->offenses != NULL) {
        ch_buf_addc(&b, ',');
        ch_offense_report_json(&b, a->offenses, a->risk, 0);
    }
    ch_buf_adds(&b, "}\n");
    if (b.data != NULL)
        fwrite(b.data, 1, b.len, f);
    ch_buf_free(&b);
}

static void report_table(const ch_analyze *a, FILE *f)
{
    totals t = sum(a);
    fprintf(f, "%-16s %7s %12s %12s %10s %10s %12s\n", "source type", "files", "records", "events",
            "skipped", "errors", "bytes");
    for (int i = 1; i < CH_DS__COUNT; i++) {
        const ch_ds_stats *s = &a->diag.by_ds[i];
        fprintf(f, "%-16s %7llu %12llu %12llu %10llu %10llu %12llu\n",
                ch_dataset_name((ch_dataset)i), (unsigned long long)s->files,
                (unsigned long long)s->records, (unsigned long long)s->events,
                (unsigned long long)s->skipped, (unsigned long long)s->errors,
                (unsigned long long)s->bytes);
    }
    fprintf(f, "%-16s %7zu %12llu %12llu %10llu %10llu %12llu\n", "total", a->files_done,
            (unsigned long long)t.records, (unsigned long long)t.events,
            (unsigned long long)t.skipped, (unsigned long long)t.errors,
            (unsigned long long)t.bytes);
    if (a->diag.nreasons > 0) {
        fprintf(f, "\nerrors by reason:\n");
        for (int i = 0; i < a->diag.nreasons; i++)
            fprintf(f, "  %-24s %llu\n", a->diag.reasons[i].name,
                    (unsigned long long)a->diag.reasons[i].count);
    }
    if (a->merge_stats.sorted_files)
        fprintf(f, "\nsorted by event time first: %llu files (%s)\n",
                (unsigned long long)a->merge_stats.sorted_files,
                a->merge_stats.sorted_on_disk ? "external sort on disk" : "in memory");
    if (a->pipeline != NULL && (a->pstats.duplicates || a->pstats.late))
        fprintf(f, "\nduplicates skipped: %llu, late events: %llu\n",
                (unsigned long long)a->pstats.duplicates, (unsigned long long)a->pstats.late);
    double el = a->elapsed > 0 ? a->elapsed : 1e-9;
    fprintf(f, "\nelapsed %.3f s, %.0f events/s, %.1f MB/s, peak RSS %ld MiB\n", a->elapsed,
            (double)t.events / el, (double)t.bytes / el / 1e6, peak_rss_kb() / 1024);
    if (a->geoip != NULL) {
        ch_geoip_stats g;
        ch_geoip_stats_get(a->geoip, &g);
        fprintf(f, "geoip: %llu lookups, %llu internal, %llu cache hits, %llu unknown\n",
                (unsigned long long)g.lookups, (unsigned long long)g.internal,
                (unsigned long long)g.cache_hits, (unsigned long long)g.unknown);
    } else {
        fprintf(f, "geoip: off\n");
    }
    if (a->offenses != NULL) {
        ch_buf b;
        ch_buf_init(&b, 0);
        ch_offense_report_table(&b, a->offenses, a->risk, 20);
        if (b.data != NULL) {
            fputc('\n', f);
            fwrite(b.data, 1, b.len, f);
        }
        ch_buf_free(&b);
    }
}

void ch_analyze_report(const ch_analyze *a, FILE *f)
{
    if (a->json)
        report_json(a, f);
    else
        report_table(a, f);
}
