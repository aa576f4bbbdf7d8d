/*
 * context.h - the business context: what the organization considers normal, read from YAML
 * (`--context FILE`) over the defaults a content pack ships (PACK/context.yaml).
 *
 *     business_countries: [GB, US]            # where people log in from
 *     networks:                               # the organization's own address space
 *       - {cidr: 172.31.0.0/16, name: vpc}
 *     images:                                 # AMI id -> what it runs
 *       ami-0123456789abcdef0: {os: "Ubuntu 24.04 LTS"}
 *     learning: 24h                           # first-seen learning period
 *     unauthorized_os: [Kali, Parrot]         # optional; else PACK/refsets/unauthorized_os
 *     only_listed_images: [111122223333]      # accounts where an image not listed is refused
 *     protected_resources:                    # what turning off is defence evasion
 *       - org-trail                           # (trail names or ARNs, GuardDuty detector ids,
 *       - fl-0123456789abcdef0                #  flow log ids, query log configs, recorders)
 *
 * Layering: a context is built by loading files one over the other (pack defaults first, the
 * user's file last). Each top-level key a later file sets replaces that key as a whole; keys it
 * does not mention keep the earlier value. So a user who writes `business_countries: [DE]`
 * gets exactly DE, and inherits the pack's images and learning period.
 *
 * Rules see the context as reference sets (ch_context_apply), by these names:
 *   business_countries   string (case-insensitive): ISO 3166-1 alpha-2 codes
 *   business_networks    ip: the networks' CIDRs (each element's indicator is the name)
 *   known_images         string: every AMI id the context describes
 *   authorized_images    string: AMI ids whose OS names no unauthorised OS
 *   unauthorized_images  string: AMI ids whose OS names one (Kali, Parrot, Pentoo, BlackArch...)
 *   image_allowlist_accounts  string: the accounts of `only_listed_images`
 *   protected_resources  string: the names, ids and ARNs of `protected_resources`
 * An image the context does not list is unknown, not unauthorised: only in an account named by
 * `only_listed_images` does launching it count as launching an unauthorised image (a pack rule
 * tests `cloud.account.id in $image_allowlist_accounts and IMAGE not in $authorized_images`).
 * Without that key a test launch of Amazon Linux by a pipeline is nobody's offense.
 * An image's OS is unauthorised when it contains, case-insensitively, one of the unauthorised
 * OS names: the context's `unauthorized_os`, else the pack's refsets/unauthorized_os.string.txt
 * (read by ch_context_load_pack), else none. The event has no slot for an operating system, so
 * rules test the image id against these sets; ch_context_image_os gives the OS to consumers
 * that show it (offense details, the graph).
 *
 * Errors name the file, line and column (1-based) and what was expected; unknown keys are
 * errors so that a typo never silently drops a list.
 *
 * Cost: loading is linear in the file; ch_context_image_os is a linear scan over the images
 * (the context describes tens to thousands of AMIs, looked up per offense, not per event).
 *
 * Ownership: ch_context_new allocates a context, ch_context_free releases it and every string
 * in it. ch_context_apply copies into the registry; the context may be freed afterwards.
 * Strings returned by getters borrow from the context.
 */
#ifndef CH_ENRICH_CONTEXT_H
#define CH_ENRICH_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "enrich/refset.h"

#define CH_CONTEXT_MAX_FILE (4u << 20) /* bytes of one context file */
#define CH_CONTEXT_MAX_COUNTRIES 300
#define CH_CONTEXT_MAX_NETWORKS 100000
#define CH_CONTEXT_MAX_IMAGES 100000
#define CH_CONTEXT_MAX_OS_NAMES 1000
#define CH_CONTEXT_MAX_ACCOUNTS 10000
#define CH_CONTEXT_MAX_PROTECTED 100000
#define CH_CONTEXT_DEFAULT_LEARNING_MS (24LL * 3600 * 1000)

typedef struct ch_context ch_context;

int ch_context_new(ch_context **out);
void ch_context_free(ch_context *c);

/* Overlay a context file (or text; name is what messages call it). CH_EPARSE / CH_ELIMIT /
 * CH_EIO with err->msg "FILE:LINE:COL: what was expected". On failure the context is left as it
 * was before the call. */
int ch_context_load_path(ch_context *c, const char *path, ch_error *err);
int ch_context_load_mem(ch_context *c, const char *name, const char *text, size_t n, ch_error *err);
/* The pack's defaults: PACK/context.yaml when present, and the unauthorised OS names of
 * PACK/refsets/unauthorized_os.string[.txt] when the context names none. Call it before the
 * user's file. A pack without either is not an error. */
int ch_context_load_pack(ch_context *c, const char *pack_dir, ch_error *err);

/* Make (or empty and refill) the sets listed above in the registry, so that rules compiled
 * against it resolve `$business_countries` etc. Call it before ch_ruleset_load; calling it again
 * with another context refills the same set objects, so compiled rules see the new lists. */
int ch_context_apply(const ch_context *c, ch_refsets *sets, ch_error *err);

size_t ch_context_country_count(const ch_context *c);
const char *ch_context_country(const ch_context *c, size_t i); /* "GB" */
bool ch_context_is_business_country(const ch_context *c, const char *iso2, size_t n);
size_t ch_context_network_count(const ch_context *c);
/* The OS of an image, or NULL when the context does not describe it. */
const char *ch_context_image_os(const ch_context *c, const char *ami, size_t n);
/* Is this OS text unauthorised (contains an unauthorised OS name, ASCII case-insensitive)? */
bool ch_context_os_unauthorized(const ch_context *c, const char *os, size_t n);
size_t ch_context_image_count(const ch_context *c);
int64_t ch_context_learning_ms(const ch_context *c);
/* risk: the user risk model's parameters (docs/RISK.md), 0 where the context sets none, and the
 * watched user names (borrowed). */
void ch_context_risk(const ch_context *c, double *decay_per_hour, double *watchlist_multiplier,
                     double *scale);
size_t ch_context_watchlist_count(const ch_context *c);
const char *ch_context_watchlist(const ch_context *c, size_t i);
size_t ch_context_allowlist_account_count(const ch_context *c);
size_t ch_context_protected_count(const ch_context *c);

#endif
