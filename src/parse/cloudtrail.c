/*
 * cloudtrail.c - the AWS CloudTrail source type.
 *
 * Accepts every shape CloudTrail is delivered in: the S3 object {"Records":[...]} (gzip'd or
 * not), a JSON array of records, JSON Lines, pretty-printed records one after another, and
 * EventBridge/CloudWatch Events envelopes whose `detail` is the record. ch_jsonrec finds the
 * records without parsing them; each is then parsed once by simdjson as a DOM, in place in the
 * input window (which is padded), and normalized into a ch_event.
 *
 * Cost: the DOM parse is the price of a record; normalization must stay well below it. It is
 * one pass over the record's top-level members, dispatched on the key's length and then its
 * bytes (fixed-length memcmps that compile to word loads, no hashing, no ch_json_obj_get per
 * field), plus one pass over userIdentity and two short lookups for a session's issuer.
 * Strings are views into the parser's document, never copied; nothing is allocated per record
 * on the common path. Measured on generated 1.3 KB records (one core, AVX-512 simdjson): the
 * parse takes ~290 ns a record, normalization ~170 ns, of which about 40% is json.h's calls
 * (one ch_json_obj_next per member) and the rest key dispatch, ISO 8601, the address parse and
 * the event reset. Two shapes pay more: a pretty-printed record is minified into a per-stream
 * buffer so that raw_json is one line, and an EventBridge envelope's detail is serialized
 * again (simdjson's minify allocates a string per record there).
 *
 * Bad records are reported to diag (file, line or offset, reason) and skipped: the stream goes
 * on with the next record, so one damaged record never hides its neighbours.
 */
#include "parse/cloudtrail.h"

#include <string.h>

#include "core/buf.h"
#include "core/diag.h"
#include "core/error.h"
#include "core/ip.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "parse/jsonrec.h"
#include "parse/jsonstream.h"
#include "parse/source.h"

/* Larger records are refused (CloudTrail events are a few KB, the largest a few hundred KB):
 * the cap bounds the splitter's window and the parser's buffers. */
#define CT_MAX_RECORD (16u << 20)
/* simdjson's own nesting cap; the splitter caps depth as well. */
#define CT_MAX_DEPTH 1024

/* ---- small helpers -------------------------------------------------------------------- */

/* clang-format off */
#define SVI(lit) {(lit), (uint32_t)(sizeof(lit) - 1)}
/* clang-format on */
/* True when the key (k, kn) is the literal; kn is compared first, so the memcmp has a constant
 * length and compiles to a few word loads. */
#define KEY(lit) (kn == sizeof(lit) - 1 && memcmp(k, (lit), sizeof(lit) - 1) == 0)
#define SV_IS(sv, lit) ch_sv_eq((sv), (lit), sizeof(lit) - 1)

static inline bool get_sv(ch_json_val v, ch_sv *out)
{
    const char *p;
    size_t n;
    if (!ch_json_get_str(v, &p, &n) || n > UINT32_MAX)
        return false;
    out->p = p;
    out->n = (uint32_t)n;
    return true;
}

static inline bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }

static inline bool sv_starts(ch_sv s, const char *lit, size_t n)
{
    return s.n >= n && memcmp(s.p, lit, n) == 0;
}
#define SV_STARTS(sv, lit) sv_starts((sv), (lit), sizeof(lit) - 1)

/* The part of s after its last '/', or s itself. */
static ch_sv after_last_slash(ch_sv s)
{
    const char *p = s.n ? memrchr(s.p, '/', s.n) : NULL;
    if (p == NULL)
        return s;
    return (ch_sv){p + 1, (uint32_t)(s.n - (uint32_t)(p + 1 - s.p))};
}

bool ch__cloudtrail_is_instance_id(ch_sv s)
{
    if ((s.n != 10 && s.n != 19) || s.p[0] != 'i' || s.p[1] != '-')
        return false;
    for (uint32_t i = 2; i < s.n; i++) {
        char c = s.p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* ---- event.category and event.type ---------------------------------------------------- */

/*
 * event.type comes from the verb: the first capitalized word of eventName.
 *
 *   creation  Create Run Add Allocate Import Register Copy Launch Request Issue Upload
 *             Publish Generate
 *   deletion  Delete Remove Terminate Deregister Release Purge Destroy
 *   change    Update Modify Put Set Attach Detach Enable Disable Associate Disassociate
 *             Replace Reset Change Tag Untag Authorize Revoke Restore Cancel Accept Reject
 *             Apply Share Unshare Leave Stop Reboot Rotate Assign Unassign Move Edit Rename
 *             Subscribe Unsubscribe Deactivate Activate
 *   access    Invoke Send Decrypt Download Retrieve Export; Get of a secret or of data
 *             (GetSecretValue, GetParameter*, GetPasswordData, GetObject, GetConsoleOutput,
 *             GetConsoleScreenshot)
 *   start     Start Connect Open Login
 *   end       Logout Exit
 *   info      Describe Get List Lookup Search Head Select Scan Query Validate Estimate Preview
 *             Simulate Test View Check, and every verb not listed
 *   "Batch" is looked through: BatchGetSecretValue is a Get, BatchDeleteImage a Delete.
 *
 * event.category comes from the service (eventSource up to its first dot) and, for EC2, the
 * noun after the verb:
 *
 *   authentication  signin (all), sts AssumeRole* / GetSessionToken / GetFederationToken,
 *                   sso Federate / Authenticate / Login / Logout; type is then start
 *                   (end for Logout/Exit) whatever the verb
 *   iam             iam, identitystore, rolesanywhere, the rest of sts and sso
 *   host            ec2 on instances (Instance*, PasswordData, ConsoleOutput,
 *                   ConsoleScreenshot, SerialConsole*), ec2-instance-connect, ssm SendCommand;
 *                   Stop* is end here
 *   session         ssm StartSession / ResumeSession / TerminateSession (start/start/end)
 *   network         ec2 on security groups and the VPC fabric (SecurityGroup*, Vpc*, Vpn*,
 *                   Subnet*, NetworkAcl*, NetworkInterface*, NatGateway*, InternetGateway*,
 *                   Route*, FlowLogs*, Address*, TransitGateway*, DhcpOptions*, PrefixList*,
 *                   CustomerGateway*, DefaultVpc*), route53, route53resolver,
 *                   network-firewall, elasticloadbalancing
 *   configuration   cloudtrail, config and every other service (ECS: settings and their
 *                   changes)
 */
enum { T_INFO, T_CREATION, T_DELETION, T_CHANGE, T_ACCESS, T_START, T_END };
static const ch_sv type_names[] = {SVI("info"),   SVI("creation"), SVI("deletion"), SVI("change"),
                                   SVI("access"), SVI("start"),    SVI("end")};
static const ch_sv cat_authentication = SVI("authentication");
static const ch_sv cat_iam = SVI("iam");
static const ch_sv cat_host = SVI("host");
static const ch_sv cat_session = SVI("session");
static const ch_sv cat_network = SVI("network");
static const ch_sv cat_configuration = SVI("configuration");

/* The first word of a CamelCase name: its first character and the lower-case run after it. */
/* The view after its first k bytes. An absent field is the empty view {NULL, 0} (what
 * ch_event_reset leaves), and NULL + 0 is undefined behaviour in C, so the tail of a view that
 * has nothing left is the empty view rather than p + k. */
static ch_sv sv_tail(ch_sv a, uint32_t k)
{
    if (k >= a.n)
        return (ch_sv){NULL, 0};
    return (ch_sv){a.p + k, a.n - k};
}

static ch_sv first_word(ch_sv a)
{
    uint32_t i = a.n ? 1 : 0;
    while (i < a.n && !is_upper(a.p[i]))
        i++;
    return (ch_sv){a.p, i};
}

/* The verbs of the table above, by first letter: a lookup compares a handful of words. */
typedef struct verb {
    const char *s;
    uint8_t n, type;
} verb;
/* clang-format off */
#define V(lit, t) {(lit), (uint8_t)(sizeof(lit) - 1), (t)}
static const verb verbs_a[] = {
    V("Add", T_CREATION), V("Allocate", T_CREATION), V("Attach", T_CHANGE),
    V("Associate", T_CHANGE), V("Authorize", T_CHANGE), V("Accept", T_CHANGE),
    V("Apply", T_CHANGE), V("Assign", T_CHANGE), V("Activate", T_CHANGE)};
static const verb verbs_c[] = {
    V("Create", T_CREATION), V("Copy", T_CREATION), V("Change", T_CHANGE),
    V("Cancel", T_CHANGE), V("Connect", T_START), V("Check", T_INFO)};
static const verb verbs_d[] = {
    V("Describe", T_INFO), V("Delete", T_DELETION), V("Deregister", T_DELETION),
    V("Destroy", T_DELETION), V("Detach", T_CHANGE), V("Disable", T_CHANGE),
    V("Disassociate", T_CHANGE), V("Deactivate", T_CHANGE), V("Decrypt", T_ACCESS),
    V("Download", T_ACCESS)};
static const verb verbs_e[] = {
    V("Enable", T_CHANGE), V("Edit", T_CHANGE), V("Estimate", T_INFO), V("Export", T_ACCESS),
    V("Exit", T_END)};
static const verb verbs_g[] = {V("Get", T_INFO), V("Generate", T_CREATION)};
static const verb verbs_h[] = {V("Head", T_INFO)};
static const verb verbs_i[] = {
    V("Import", T_CREATION), V("Issue", T_CREATION), V("Invoke", T_ACCESS)};
static const verb verbs_l[] = {
    V("List", T_INFO), V("Lookup", T_INFO), V("Launch", T_CREATION), V("Leave", T_CHANGE),
    V("Login", T_START), V("Logout", T_END)};
static const verb verbs_m[] = {V("Modify", T_CHANGE), V("Move", T_CHANGE)};
static const verb verbs_o[] = {V("Open", T_START)};
static const verb verbs_p[] = {
    V("Put", T_CHANGE), V("Publish", T_CREATION), V("Purge", T_DELETION), V("Preview", T_INFO)};
static const verb verbs_q[] = {V("Query", T_INFO)};
static const verb verbs_r[] = {
    V("Run", T_CREATION), V("Register", T_CREATION), V("Request", T_CREATION),
    V("Remove", T_DELETION), V("Release", T_DELETION), V("Replace", T_CHANGE),
    V("Reset", T_CHANGE), V("Revoke", T_CHANGE), V("Restore", T_CHANGE), V("Reject", T_CHANGE),
    V("Reboot", T_CHANGE), V("Rotate", T_CHANGE), V("Rename", T_CHANGE),
    V("Retrieve", T_ACCESS)};
static const verb verbs_s[] = {
    V("Set", T_CHANGE), V("Start", T_START), V("Stop", T_CHANGE), V("Send", T_ACCESS),
    V("Search", T_INFO), V("Select", T_INFO), V("Scan", T_INFO), V("Simulate", T_INFO),
    V("Share", T_CHANGE), V("Subscribe", T_CHANGE)};
static const verb verbs_t[] = {
    V("Terminate", T_DELETION), V("Tag", T_CHANGE), V("Test", T_INFO)};
static const verb verbs_u[] = {
    V("Update", T_CHANGE), V("Untag", T_CHANGE), V("Upload", T_CREATION),
    V("Unshare", T_CHANGE), V("Unassign", T_CHANGE), V("Unsubscribe", T_CHANGE)};
static const verb verbs_v[] = {V("Validate", T_INFO), V("View", T_INFO)};
#undef V
#define L(c, arr) [(c) - 'A'] = {(arr), sizeof(arr) / sizeof((arr)[0])}
static const struct {
    const verb *v;
    size_t n;
} verbs_by_letter[26] = {
    L('A', verbs_a), L('C', verbs_c), L('D', verbs_d), L('E', verbs_e), L('G', verbs_g),
    L('H', verbs_h), L('I', verbs_i), L('L', verbs_l), L('M', verbs_m), L('O', verbs_o),
    L('P', verbs_p), L('Q', verbs_q), L('R', verbs_r), L('S', verbs_s), L('T', verbs_t),
    L('U', verbs_u), L('V', verbs_v)};
#undef L
/* clang-format on */

static int verb_type(ch_sv w)
{
    if (w.n == 0 || !is_upper(w.p[0]))
        return T_INFO;
    const verb *v = verbs_by_letter[w.p[0] - 'A'].v;
    size_t n = verbs_by_letter[w.p[0] - 'A'].n;
    for (size_t i = 0; i < n; i++) {
        if (v[i].n != w.n)
            continue;
        /* Verbs are a few bytes long: a byte loop beats a call to memcmp. */
        uint32_t j = 1;
        while (j < w.n && v[i].s[j] == w.p[j])
            j++;
        if (j == w.n)
            return v[i].type;
    }
    return T_INFO;
}

/* Gets that hand out secrets or data are access, not info. */
static bool get_is_access(ch_sv noun)
{
    if (noun.n == 0)
        return false;
    switch (noun.p[0]) {
    case 'S':
        return SV_STARTS(noun, "SecretValue");
    case 'P':
        return SV_STARTS(noun, "Parameter") || SV_STARTS(noun, "PasswordData");
    case 'O':
        return SV_IS(noun, "Object");
    case 'C':
        return SV_STARTS(noun, "ConsoleOutput") || SV_STARTS(noun, "ConsoleScreenshot");
    default:
        return false;
    }
}

/* EC2 nouns that are instances (host) or network fabric (network); 0 for neither. */
enum { EC2_OTHER, EC2_HOST, EC2_NETWORK };
static int ec2_noun_kind(ch_sv n)
{
    if (n.n == 0)
        return EC2_OTHER;
    switch (n.p[0]) {
    case 'I':
        if (SV_STARTS(n, "Instance"))
            return EC2_HOST;
        if (SV_STARTS(n, "InternetGateway"))
            return EC2_NETWORK;
        break;
    case 'S':
        if (SV_STARTS(n, "SecurityGroup") || SV_STARTS(n, "Subnet"))
            return EC2_NETWORK;
        if (SV_STARTS(n, "SerialConsole"))
            return EC2_HOST;
        break;
    case 'V':
        if (SV_STARTS(n, "Vpc") || SV_STARTS(n, "Vpn"))
            return EC2_NETWORK;
        break;
    case 'N':
        if (SV_STARTS(n, "NetworkAcl") || SV_STARTS(n, "NetworkInterface") ||
            SV_STARTS(n, "NatGateway"))
            return EC2_NETWORK;
        break;
    case 'R':
        if (SV_STARTS(n, "Route"))
            return EC2_NETWORK;
        break;
    case 'F':
        if (SV_STARTS(n, "FlowLogs"))
            return EC2_NETWORK;
        break;
    case 'A':
        if (SV_STARTS(n, "Address"))
            return EC2_NETWORK;
        break;
    case 'T':
        if (SV_STARTS(n, "TransitGateway"))
            return EC2_NETWORK;
        break;
    case 'D':
        if (SV_STARTS(n, "DhcpOptions") || SV_STARTS(n, "DefaultVpc"))
            return EC2_NETWORK;
        break;
    case 'P':
        if (SV_STARTS(n, "PasswordData"))
            return EC2_HOST;
        if (SV_STARTS(n, "PrefixList"))
            return EC2_NETWORK;
        break;
    case 'C':
        if (SV_STARTS(n, "ConsoleOutput") || SV_STARTS(n, "ConsoleScreenshot"))
            return EC2_HOST;
        if (SV_STARTS(n, "CustomerGateway"))
            return EC2_NETWORK;
        break;
    default:
        break;
    }
    return EC2_OTHER;
}

void ch__cloudtrail_classify(ch_sv provider, ch_sv action, ch_sv *category, ch_sv *type)
{
    ch_sv svc = provider;
    const char *dot = provider.n ? memchr(provider.p, '.', provider.n) : NULL;
    if (dot != NULL)
        svc.n = (uint32_t)(dot - provider.p);

    ch_sv w = first_word(action);
    ch_sv noun = sv_tail(action, w.n);
    if (SV_IS(w, "Batch")) {
        w = first_word(noun);
        noun = sv_tail(noun, w.n);
    }
    int t = verb_type(w);
    if (t == T_INFO && SV_IS(w, "Get") && get_is_access(noun))
        t = T_ACCESS;
    const ch_sv *cat = &cat_configuration;
    bool auth = false;

    switch (svc.n) {
    case 3:
        if (SV_IS(svc, "iam")) {
            cat = &cat_iam;
        } else if (SV_IS(svc, "sts")) {
            auth = SV_IS(w, "Assume") || SV_IS(action, "GetSessionToken") ||
                   SV_IS(action, "GetFederationToken");
            cat = auth ? &cat_authentication : &cat_iam;
        } else if (SV_IS(svc, "ec2")) {
            int k = ec2_noun_kind(noun);
            if (k == EC2_HOST) {
                cat = &cat_host;
                if (SV_IS(w, "Stop"))
                    t = T_END;
            } else if (k == EC2_NETWORK) {
                cat = &cat_network;
            }
        } else if (SV_IS(svc, "ssm")) {
            if (SV_IS(noun, "Session") &&
                (SV_IS(w, "Start") || SV_IS(w, "Resume") || SV_IS(w, "Terminate"))) {
                cat = &cat_session;
                t = SV_IS(w, "Terminate") ? T_END : T_START;
            } else if (SV_IS(action, "SendCommand")) {
                cat = &cat_host;
            }
        } else if (SV_IS(svc, "sso")) {
            auth = SV_IS(w, "Federate") || SV_IS(w, "Authenticate") || SV_IS(w, "Login") ||
                   SV_IS(w, "Logout");
            cat = auth ? &cat_authentication : &cat_iam;
        }
        break;
    case 6:
        if (SV_IS(svc, "signin")) {
            auth = true;
            cat = &cat_authentication;
        }
        break;
    case 7:
        if (SV_IS(svc, "route53"))
            cat = &cat_network;
        break;
    case 13:
        if (SV_IS(svc, "identitystore") || SV_IS(svc, "rolesanywhere"))
            cat = &cat_iam;
        break;
    case 15:
        if (SV_IS(svc, "route53resolver"))
            cat = &cat_network;
        break;
    case 16:
        if (SV_IS(svc, "network-firewall"))
            cat = &cat_network;
        break;
    case 20:
        if (SV_IS(svc, "ec2-instance-connect"))
            cat = &cat_host;
        else if (SV_IS(svc, "elasticloadbalancing"))
            cat = &cat_network;
        break;
    default:
        break;
    }
    if (auth)
        t = (SV_IS(w, "Logout") || SV_IS(w, "Exit")) ? T_END : T_START;
    *category = *cat;
    *type = type_names[t];
}

/* ---- normalization -------------------------------------------------------------------- */

/* What the top-level pass keeps for the decisions taken after it. */
typedef struct ct_scan {
    ch_sv time, recipient, src;
    bool time_present, time_is_str, has_name, has_src;
    bool has_ui, has_resp, has_detail, has_detail_type;
    bool ecs_root; /* a top-level key is one of the writer's ECS roots */
    ch_json_val ui, resp, detail;
} ct_scan;

static void scan_record(ch_json_val obj, ch_event *ev, ct_scan *sc)
{
    ch_json_iter it;
    const char *k;
    size_t kn;
    ch_json_val v;
    if (!ch_json_obj_iter(obj, &it))
        return;
    while (ch_json_obj_next(&it, &k, &kn, &v)) {
        sc->ecs_root |= ch_ecs_is_root(k, kn);
        switch (kn) {
        case 6:
            if (KEY("detail")) {
                sc->detail = v;
                sc->has_detail = ch_json_typeof(v) == CH_JSON_OBJECT;
            }
            break;
        case 7:
            if (KEY("eventID"))
                get_sv(v, &ev->id);
            break;
        case 9:
            switch (k[0]) {
            case 'e':
                if (KEY("eventTime")) {
                    sc->time_present = true;
                    sc->time_is_str = get_sv(v, &sc->time);
                } else if (KEY("eventName")) {
                    sc->has_name = get_sv(v, &ev->action);
                } else if (KEY("errorCode")) {
                    get_sv(v, &ev->error_code);
                }
                break;
            case 'a':
                if (KEY("awsRegion"))
                    get_sv(v, &ev->region);
                break;
            case 'u':
                if (KEY("userAgent"))
                    get_sv(v, &ev->user_agent);
                break;
            default:
                break;
            }
            break;
        case 11:
            if (KEY("eventSource"))
                get_sv(v, &ev->provider);
            else if (KEY("detail-type"))
                sc->has_detail_type = true;
            break;
        case 12:
            if (KEY("userIdentity")) {
                sc->ui = v;
                sc->has_ui = true;
            }
            break;
        case 15:
            if (KEY("sourceIPAddress"))
                sc->has_src = get_sv(v, &sc->src);
            break;
        case 16:
            if (KEY("responseElements")) {
                sc->resp = v;
                sc->has_resp = true;
            }
            break;
        case 18:
            if (KEY("recipientAccountId"))
                get_sv(v, &sc->recipient);
            break;
        default:
            break;
        }
    }
}

/* userIdentity members kept for the user.name decision. */
typedef struct ct_ident {
    ch_sv arn, user_name, account;
    bool has_ctx, has_obo;
    ch_json_val ctx, obo;
} ct_ident;

static void scan_identity(ch_json_val ui, ch_event *ev, ct_ident *id)
{
    ch_json_iter it;
    const char *k;
    size_t kn;
    ch_json_val v;
    if (!ch_json_obj_iter(ui, &it))
        return;
    while (ch_json_obj_next(&it, &k, &kn, &v)) {
        switch (kn) {
        case 3:
            if (KEY("arn"))
                get_sv(v, &id->arn);
            break;
        case 4:
            if (KEY("type"))
                get_sv(v, &ev->user_type);
            break;
        case 8:
            if (KEY("userName"))
                get_sv(v, &id->user_name);
            break;
        case 9:
            if (KEY("accountId"))
                get_sv(v, &id->account);
            else if (KEY("invokedBy"))
                get_sv(v, &ev->invoked_by);
            break;
        case 10:
            if (KEY("onBehalfOf")) {
                id->obo = v;
                id->has_obo = true;
            }
            break;
        case 11:
            if (KEY("principalId"))
                get_sv(v, &ev->user_id);
            else if (KEY("accessKeyId"))
                get_sv(v, &ev->access_key);
            break;
        case 14:
            if (KEY("sessionContext")) {
                id->ctx = v;
                id->has_ctx = true;
            }
            break;
        default:
            break;
        }
    }
}

/* sessionContext.sessionIssuer.userName: the role (or user) that issued a session. */
static ch_sv session_issuer(const ct_ident *id)
{
    ch_sv out = {NULL, 0};
    ch_json_val iss, name;
    if (id->has_ctx && ch_json_obj_get(id->ctx, "sessionIssuer", 13, &iss) &&
        ch_json_obj_get(iss, "userName", 8, &name))
        get_sv(name, &out);
    return out;
}

/* user.name and the session name, by identity type:
 *   IAMUser                    userName
 *   Root                       "root"
 *   AssumedRole                sessionContext.sessionIssuer.userName (the role; from the arn
 *                              assumed-role/ROLE/SESSION when there is no issuer), session
 *                              name = the arn after its last '/'
 *   FederatedUser              the issuer's userName likewise (else the federated name)
 *   AWSService                 invokedBy
 *   anything else              userName, else principalId (IdentityCenterUser records carry
 *   (AWSAccount, Unknown,      neither: user.id and user.name are then onBehalfOf.userId,
 *   IdentityCenterUser...)     the Identity Store user)
 * A session named like an instance id ("i-0abc...") is an instance role: cloud.instance.id. */
static void map_user(ch_event *ev, const ct_ident *id)
{
    static const ch_sv root = SVI("root");
    ch_sv t = ev->user_type;
    if (SV_IS(t, "IAMUser")) {
        ev->user_name = id->user_name;
    } else if (SV_IS(t, "Root")) {
        ev->user_name = root;
    } else if (SV_IS(t, "AssumedRole")) {
        ev->user_name = session_issuer(id);
        if (id->arn.n) {
            ev->session_name = after_last_slash(id->arn);
            if (ev->user_name.n == 0) {
                /* arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION */
                const char *r = memmem(id->arn.p, id->arn.n, ":assumed-role/", 14);
                if (r != NULL && ev->session_name.p > r + 15) {
                    r += 14;
                    ev->user_name = (ch_sv){r, (uint32_t)(ev->session_name.p - 1 - r)};
                }
            }
        }
    } else if (SV_IS(t, "FederatedUser")) {
        ev->user_name = session_issuer(id);
        if (id->arn.n)
            ev->session_name = after_last_slash(id->arn);
        if (ev->user_name.n == 0)
            ev->user_name = ev->session_name;
    } else if (SV_IS(t, "AWSService")) {
        ev->user_name = ev->invoked_by;
    } else {
        ev->user_name = id->user_name;
    }
    if (ev->user_id.n == 0 && id->has_obo) {
        ch_json_val v;
        if (ch_json_obj_get(id->obo, "userId", 6, &v))
            get_sv(v, &ev->user_id);
    }
    if (ev->user_name.n == 0)
        ev->user_name = ev->user_id;
    if (ch__cloudtrail_is_instance_id(ev->session_name))
        ev->instance_id = ev->session_name;
}

static bool console_login_failed(const ct_scan *sc)
{
    ch_json_val v;
    ch_sv s;
    return sc->has_resp && ch_json_obj_get(sc->resp, "ConsoleLogin", 12, &v) && get_sv(v, &s) &&
           SV_IS(s, "Failure");
}

int ch__cloudtrail_normalize(ch_json_val root, ch_event *ev, ch_json_val *record, bool *enveloped,
                             const char **reason)
{
    ct_scan sc;
    memset(&sc, 0, sizeof sc);
    *enveloped = false;
    *record = root;
    scan_record(root, ev, &sc);
    if (!sc.has_name && !sc.time_present && sc.has_detail && sc.has_detail_type) {
        /* EventBridge / CloudWatch Events: the envelope adds nothing the detail lacks. */
        ch_json_val detail = sc.detail;
        ch_event_reset(ev);
        memset(&sc, 0, sizeof sc);
        *enveloped = true;
        *record = detail;
        scan_record(detail, ev, &sc);
    }
    if (!sc.has_name && !sc.time_present) {
        *reason = "not_cloudtrail";
        return CH_EPARSE;
    }
    if (!sc.time_is_str || !ch_time_parse_iso8601(sc.time.p, sc.time.n, &ev->ts_ms)) {
        *reason = "bad_timestamp";
        return CH_EPARSE;
    }
    ev->dataset = CH_DS_CLOUDTRAIL;

    ct_ident id;
    memset(&id, 0, sizeof id);
    if (sc.has_ui)
        scan_identity(sc.ui, ev, &id);
    map_user(ev, &id);

    ev->account_id = sc.recipient.n ? sc.recipient : id.account;
    if (sc.has_src && sc.src.n) {
        if (!ch_ip_parse(sc.src.p, sc.src.n, &ev->src_ip))
            ev->src_address = sc.src;
    }
    bool failed = ev->error_code.n > 0;
    if (!failed && SV_IS(ev->action, "ConsoleLogin"))
        failed = console_login_failed(&sc);
    ev->outcome = failed ? CH_OUTCOME_FAILURE : CH_OUTCOME_SUCCESS;
    ch__cloudtrail_classify(ev->provider, ev->action, &ev->category, &ev->type);
    ev->raw_no_ecs_root = !sc.ecs_root; /* the scan saw every top-level key of *record */
    return 0;
}

/* ---- detection ------------------------------------------------------------------------ */

static bool has(const char *h, size_t n, const char *lit, size_t ln)
{
    return memmem(h, n, lit, ln) != NULL;
}
#define HAS(lit) has(head, n, (lit), sizeof(lit) - 1)

/* CloudTrail keys near the start of a JSON input. Route 53 Resolver logs are JSON too but
 * carry none of these keys ("query_name", "srcaddr"), and VPC flow logs are not JSON at all,
 * so a record that names two of eventVersion/eventSource/eventName/eventTime is ours. */
static int detect(const char *head, size_t n)
{
    size_t i = 0;
    if (n >= 3 && memcmp(head, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < n && (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n'))
        i++;
    if (i == n || (head[i] != '{' && head[i] != '['))
        return 0;
    int keys = HAS("\"eventVersion\"") + HAS("\"eventSource\"") + HAS("\"eventName\"") +
               HAS("\"eventTime\"");
    if (keys >= 2)
        return 95;
    if (HAS("\"detail-type\"") && HAS(" via CloudTrail\"") && HAS("\"detail\""))
        return 95;
    if (HAS("\"query_name\""))
        return 0;
    if (keys == 1)
        return 60;
    if (HAS("{\"Records\"") || HAS("\"Records\":"))
        return 40;
    return 0;
}
#undef HAS

/* ---- the stream ----------------------------------------------------------------------- */

struct ch_stream {
    ch_input *in;
    ch_diag *diag;
    const char *name;
    ch_jsonrec *rec;
    ch_json_parser *parser;
    ch_buf text; /* raw_json when it cannot point into the input: minified or re-serialized */
};

static void ct_close(ch_stream *s)
{
    if (s == NULL)
        return;
    ch_jsonrec_free(s->rec);
    ch_json_parser_free(s->parser);
    ch_buf_free(&s->text);
    ch_free(s);
}

static ch_stream *ct_open(ch_input *in, ch_diag *diag, ch_error *err)
{
    ch_stream *s = ch_calloc(1, sizeof *s);
    if (s == NULL)
        goto oom;
    s->in = in;
    s->diag = diag;
    s->name = ch_input_name(in);
    ch_buf_init(&s->text, 2 * (size_t)CT_MAX_RECORD);
    s->rec = ch_jsonrec_new(in, CT_MAX_RECORD);
    s->parser = ch_json_parser_new(CT_MAX_RECORD, CT_MAX_DEPTH);
    if (s->rec == NULL || s->parser == NULL)
        goto oom;
    return s;
oom:
    ct_close(s);
    ch_error_set(err, CH_ENOMEM, "out of memory opening a CloudTrail stream");
    return NULL;
}

/* raw_json as one line: in place when the record is already one line, else minified (or, for
 * an envelope, the detail serialized) into the stream's buffer. */
static int set_raw_json(ch_stream *s, const ch_jsonrec_rec *rec, ch_event *ev, bool enveloped)
{
    int rc;
    if (enveloped) {
        ch_buf_clear(&s->text);
        if ((rc = ch_json_write(ev->raw_doc, &s->text)) < 0)
            return rc;
    } else if (rec->multiline) {
        size_t outlen = 0;
        ch_buf_clear(&s->text);
        if ((rc = ch_buf_reserve(&s->text, rec->n)) < 0)
            return rc;
        if ((rc = ch_json_minify(rec->p, rec->n, s->text.data, &outlen)) < 0)
            return rc;
        s->text.len = outlen;
        s->text.data[outlen] = '\0';
    } else {
        ev->raw_json = (ch_sv){rec->p, (uint32_t)rec->n};
        return 0;
    }
    ev->raw_json = (ch_sv){s->text.data, (uint32_t)s->text.len};
    return 0;
}

static int ct_next(ch_stream *s, ch_event *ev)
{
    ch_ds_stats *st = &s->diag->by_ds[CH_DS_CLOUDTRAIL];
    for (;;) {
        ch_jsonrec_rec rec;
        ch_json_val root, record;
        int rc =
            ch_jsonstream_next(s->rec, s->parser, s->diag, CH_DS_CLOUDTRAIL, s->name, &rec, &root);
        if (rc <= 0)
            return rc;
        st->records++;
        ch_event_reset(ev);
        bool enveloped;
        const char *reason = NULL;
        if (ch__cloudtrail_normalize(root, ev, &record, &enveloped, &reason) < 0) {
            if (reason[0] == 'b')
                ch_diag_report(
                    s->diag, CH_DS_CLOUDTRAIL, s->name, rec.line, rec.offset, reason,
                    "eventTime missing or not ISO 8601 (eventName '%.*s', eventID '%.*s')",
                    (int)ev->action.n, ev->action.p, (int)ev->id.n, ev->id.p);
            else
                ch_diag_report(s->diag, CH_DS_CLOUDTRAIL, s->name, rec.line, rec.offset, reason,
                               "a JSON object with neither eventName nor eventTime");
            continue;
        }
        ev->has_raw_doc = true;
        ev->raw_doc = record;
        if ((rc = set_raw_json(s, &rec, ev, enveloped)) < 0) {
            ch_diag_report(s->diag, CH_DS_CLOUDTRAIL, s->name, rec.line, rec.offset,
                           rc == CH_ENOMEM ? "out_of_memory" : "record_too_large",
                           "cannot write the record on one line (%s)", ch_strerror(rc));
            continue;
        }
        st->events++;
        return 1;
    }
}

const ch_source_type ch_source_cloudtrail = {
    "cloudtrail", CH_DS_CLOUDTRAIL, detect, ct_open, ct_next, ct_close,
};
