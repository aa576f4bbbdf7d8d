/*
 * event.h - the normalized event: what every parser produces and every later stage reads.
 *
 * Names follow the Elastic Common Schema (docs/SCHEMA.md). Hot fields are typed slots, filled
 * once by the parser: times and ports as integers, addresses as bytes, strings as views.
 * Every original field stays reachable: JSON sources keep the parsed document (`raw`) and the
 * record's text (`raw_json`), flow logs keep their header names and column values.
 *
 * Ownership: an event borrows everything it points at (from the parser's document, the
 * reader's buffer or the stream's arena). It is valid until the next call to the stream that
 * produced it; ch_event_copy makes an owned copy when an event must live longer.
 */
#ifndef CH_CORE_EVENT_H
#define CH_CORE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ip.h"
#include "core/json.h"

/* A string view: not NUL-terminated unless the producer says so. */
typedef struct ch_sv {
    const char *p;
    uint32_t n;
} ch_sv;

#define CH_SV(lit) ((ch_sv){(lit), (uint32_t)(sizeof(lit) - 1)})
static inline bool ch_sv_eq(ch_sv a, const char *lit, size_t n)
{
    return a.n == n && (n == 0 || __builtin_memcmp(a.p, lit, n) == 0);
}

typedef enum ch_dataset {
    CH_DS_UNKNOWN = 0,
    CH_DS_CLOUDTRAIL,
    CH_DS_VPCFLOW,
    CH_DS_ROUTE53,
    CH_DS__COUNT
} ch_dataset;

const char *ch_dataset_name(ch_dataset ds);
ch_dataset ch_dataset_from_name(const char *name, size_t n);

typedef enum ch_outcome {
    CH_OUTCOME_NONE = 0,
    CH_OUTCOME_SUCCESS,
    CH_OUTCOME_FAILURE,
    CH_OUTCOME_UNKNOWN
} ch_outcome;

/* GeoIP result for one address; strings borrow from the GeoIP cache. */
typedef struct ch_geo {
    bool looked_up;  /* a lookup was made (address present and not internal) */
    bool internal;   /* private, loopback, link-local, CGNAT...: never looked up */
    char country[3]; /* ISO 3166-1 alpha-2, "" when unknown */
    uint32_t asn;    /* 0 when unknown */
    ch_sv as_org, city, country_name;
} ch_geo;

#define CH_EVENT_MAX_ANSWERS 16

/* A threat-intelligence match (intel/intel_match.h): the first value of the event that a loaded
 * intel set lists, valid at the event's time. set == NULL means no match (the zeroed state).
 * The strings borrow from the reference sets and the indicator catalog, which outlive a run;
 * `atomic` borrows from the event itself. Unknown strings are "" (never NULL when set is set). */
typedef struct ch_threat {
    const char *set;             /* threat.set: the reference set that matched */
    const char *field;           /* threat.enrichments.matched.field ("dns.question.name") */
    ch_sv atomic;                /* threat.enrichments.matched.atomic when it is a name */
    ch_ip atomic_ip;             /* ... when it is an address (family 0 otherwise) */
    const char *feed;            /* threat.feed.name: the element's source */
    const char *indicator_id;    /* threat.indicator.id: the feed's id (STIX id) */
    const char *indicator_name;  /* threat.indicator.name, from the catalog */
    const char *indicator_types; /* STIX indicator_types, joined with ',' */
    const char *provider;        /* threat.indicator.provider: the creator identity's name */
    int confidence;              /* threat.indicator.confidence 0..100; -1 when unknown */
} ch_threat;

/* Which optional slots are set. */
enum {
    CH_F_SRC_PORT = 1u << 0,
    CH_F_DST_PORT = 1u << 1,
    CH_F_BYTES = 1u << 2,
    CH_F_PACKETS = 1u << 3,
    CH_F_END = 1u << 4,
};

/* Work a read-ahead worker did on an event for the pipeline (pipeline.h, ch_pipeline_prep)
 * before the merge handed it out: zeroed by ch_event_reset, so an event read on the pipeline's
 * own thread has none and the pipeline does that work itself. Strings borrow from the batch
 * the event is in (ingest/prefetch.h), like every other view of the event. */
enum {
    CH_PREP_ID = 1u << 0,   /* record_id computed (and event.id synthesized when it had none) */
    CH_PREP_GEO = 1u << 1,  /* src_geo and dst_geo filled by a worker's GeoIP handle */
    CH_PREP_LINE = 1u << 2, /* line holds the events writer's line for the event as it was */
};

typedef struct ch_event_prep {
    uint32_t done;      /* CH_PREP_* */
    uint64_t record_id; /* ch_pipeline_record_id, with CH_PREP_ID */
    /* With CH_PREP_LINE: the writer's line (no newline), and the fields the pipeline's stateful
     * enrichers may still change (entity linking: user.name, cloud.instance.id; intelligence:
     * threat) as they were when the line was made; output.c writes the line only when they are
     * unchanged. */
    ch_sv line;
    ch_sv seen_id, seen_user, seen_instance;
} ch_event_prep;

typedef struct ch_event {
    int64_t ts_ms;  /* @timestamp: the event's own time, ms since epoch, UTC */
    int64_t end_ms; /* event.end for flows (CH_F_END) */
    ch_dataset dataset;
    ch_outcome outcome;
    uint32_t flags;

    ch_sv id;       /* event.id (CloudTrail eventID) */
    ch_sv action;   /* event.action: CloudTrail eventName, flow ACCEPT/REJECT, DNS rcode */
    ch_sv category; /* event.category: authentication, iam, network, ... */
    ch_sv type;     /* event.type: start, info, creation, connection, protocol, ... */
    ch_sv provider; /* event.provider: CloudTrail eventSource */

    ch_sv user_name;    /* user.name: IAM user, "root", or the issuing role of a session */
    ch_sv user_id;      /* user.id: principalId */
    ch_sv user_type;    /* userIdentity.type, kept typed for rules */
    ch_sv session_name; /* role session name for assumed roles */
    ch_sv access_key;   /* userIdentity.accessKeyId */
    ch_sv invoked_by;   /* userIdentity.invokedBy: an AWS service acting for the principal */

    ch_sv account_id;   /* cloud.account.id */
    ch_sv region;       /* cloud.region */
    ch_sv instance_id;  /* cloud.instance.id */
    ch_sv interface_id; /* network interface (flow logs) */
    ch_sv user_agent;   /* user_agent.original */
    ch_sv error_code;   /* CloudTrail errorCode */

    ch_sv src_address;    /* source.address when it is not an IP ("ec2.amazonaws.com") */
    ch_ip src_ip, dst_ip; /* source.ip, destination.ip (family 0 = absent) */
    uint16_t src_port, dst_port;
    uint8_t iana_proto; /* network.iana_number; 0 = absent */
    ch_sv transport;    /* network.transport: tcp, udp, icmp, ... */
    uint64_t bytes, packets;

    ch_sv dns_qname;                         /* dns.question.name: lower case, no trailing dot */
    ch_sv dns_qtype;                         /* dns.question.type */
    ch_sv dns_rcode;                         /* dns.response_code */
    ch_sv dns_answers[CH_EVENT_MAX_ANSWERS]; /* dns.answers[].data (first 16 kept) */
    uint8_t dns_nanswers;

    ch_geo src_geo, dst_geo;

    ch_threat threat; /* filled by ch_intel_match; zeroed by ch_event_reset */

    /* Original fields. For JSON sources: the parsed record and its text on one line. */
    bool has_raw_doc;
    /* Set by a parser that saw every top-level key of raw_doc and found none that is an ECS
     * root the writer emits ("event", "user", ...): the writer then copies raw_json without
     * walking the document again. false (the reset value) means "not known": it walks. */
    bool raw_no_ecs_root;
    ch_json_val raw_doc;
    /* Set instead of raw_doc by a full scan that reads a few raw paths of raw_json lazily
     * (store/search.c); raw paths read through it before raw_doc. */
    struct ch_json_lazy *raw_lazy;
    ch_sv raw_json;
    /* For columnar sources (flow logs): header names and values, "-" kept as given. */
    const ch_sv *raw_names;
    const ch_sv *raw_values;
    uint32_t raw_count;

    ch_event_prep prep;
} ch_event;

void ch_event_reset(ch_event *ev);

/* The top-level names the JSON Lines writer emits itself (src/output/jsonl.c). A source record
 * with one of them needs the writer's slow path, which moves it under "original". This is the
 * one list: the CloudTrail normalizer tests every top-level key with it while it walks the
 * record anyway (setting raw_no_ecs_root), and the writer tests the other sources' keys. */
static inline bool ch_ecs_is_root(const char *k, size_t n)
{
#define CH__IS(lit) (n == sizeof(lit) - 1 && __builtin_memcmp(k, (lit), sizeof(lit) - 1) == 0)
    switch (n) {
    case 3:
        return CH__IS("dns");
    case 4:
        return CH__IS("user");
    case 5:
        return CH__IS("event") || CH__IS("cloud") || CH__IS("error");
    case 6:
        return CH__IS("source") || CH__IS("threat");
    case 7:
        return CH__IS("network");
    case 8:
        return CH__IS("original");
    case 10:
        return CH__IS("@timestamp") || CH__IS("user_agent");
    case 11:
        return CH__IS("destination");
    default:
        return false;
    }
#undef CH__IS
}

#endif
