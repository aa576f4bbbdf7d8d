/*
 * images.h - what an AMI runs, decided from the image rather than from a list the user must
 * keep: a catalogue of penetration-testing and mining images shipped with the pack
 * (PACK/images.yaml: AWS Marketplace product codes, owners, name and description words), and
 * the names, descriptions, owners and product codes the logs themselves reveal, learned and
 * kept in the store across runs.
 *
 * Where the facts come from (CloudTrail):
 *   DescribeImages   responseElements.imagesSet.items[]: imageId, name, description,
 *                    imageOwnerId, productCodes.items[].productCode (when the trail logs it)
 *   RunInstances     responseElements.instancesSet.items[]: imageId, productCodes
 *   RegisterImage, CreateImage, CopyImage
 *                    requestParameters.name / description, responseElements.imageId; the
 *                    owner is the event's account
 * Each image is merged into one record (a later fact fills what an earlier one lacked) and
 * classified against the catalogue; an image the catalogue names (Kali, Parrot, a miner...)
 * goes into the reference set `unauthorized_images` at once, before the rules see the event,
 * so that a RunInstances whose response carries Kali's product code is judged on its own
 * event. An image nobody described stays unknown, not unauthorised: only a context that says
 * "only these images are allowed" (only_listed_images, CJ-EC2-07) refuses unknown images.
 *
 * Catalogue (PACK/images.yaml; missing = empty):
 *     images:
 *       - {os: Kali Linux, product_code: 89bab4k3h9x4rkojcm2tj8j4l, source: "..."}
 *       - {os: Kali Linux, owner: "679593333241", text: kali, source: "..."}
 *       - {os: XMRig miner, text: xmrig, source: "..."}
 * An entry matches an image when every key it gives matches: product_code (exact, any of the
 * image's codes), owner (exact account id), text (ASCII case-insensitive substring of the name
 * or of the description). An entry must give at least one of them, and its source.
 *
 * Store: the table `images` of component "images" in schema_versions (core/sqlite_util.h), in
 * the pipeline's database file, written by ch_images_save in its own transaction at each
 * checkpoint (only records changed since the last save). Upserts: replaying logs writes the
 * same rows. The stored verdict (`os`) is for people; at load the image is classified again
 * with the current catalogue, so a catalogue update applies to images learned before.
 *
 * Caps: CH_IMAGES_MAX records (past it new images are counted in `dropped`, never an error),
 * text fields cut at CH_IMAGES_MAX_TEXT bytes, CH_IMAGES_MAX_CODES product codes per image.
 * Cost per event: a test of the action name; for the five actions above, a walk of the items
 * and one hash probe per image; classification is linear in the catalogue (tens of entries),
 * done only when a record changes.
 *
 * Ownership: ch_images_open allocates, ch_images_free releases (and closes the store
 * connection). The reference-set registry is borrowed: ch_images_rebind moves to a new one (a
 * reload). Strings returned by ch_images_get borrow from the object until the next observe.
 */
#ifndef CH_ENRICH_IMAGES_H
#define CH_ENRICH_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/event.h"

#define CH_IMAGES_MAX 200000u
#define CH_IMAGES_MAX_TEXT 512u
#define CH_IMAGES_MAX_CODES 8u
#define CH_IMAGES_MAX_CATALOGUE 10000u
#define CH_IMAGES_SCHEMA_VERSION 1
#define CH_IMAGES_SET "unauthorized_images"

typedef struct ch_images ch_images;
typedef struct ch_refsets ch_refsets;

/* What is known of one image (borrowed strings, "" when unknown). */
typedef struct ch_image_info {
    const char *id, *name, *description, *owner, *os; /* os: the catalogue's verdict or "" */
    const char *codes;                                /* product codes joined with ',' */
    int64_t first_seen, last_seen;
} ch_image_info;

typedef struct ch_images_stats {
    uint64_t learned;  /* records held */
    uint64_t flagged;  /* of those, named by the catalogue */
    uint64_t dropped;  /* new images refused at CH_IMAGES_MAX */
    uint64_t restored; /* records read from the store at open */
    size_t catalogue;  /* catalogue entries */
} ch_images_stats;

/* Load PACK/images.yaml (CH_EPARSE "FILE:LINE:COL: ..." when malformed), and when db_path is
 * not NULL open (creating when missing) the store's `images` table and restore its records.
 * Flagged images are put in sets' `unauthorized_images` (made when missing). */
int ch_images_open(const char *pack_dir, const char *db_path, ch_refsets *sets, ch_images **out,
                   ch_error *err);
/* The catalogue alone from text (tests, the fuzz target); name is what messages call it. */
int ch_images_open_mem(const char *name, const char *yaml, size_t n, ch_refsets *sets,
                       ch_images **out, ch_error *err);
void ch_images_free(ch_images *im);
/* Learn from one event (see the top). Never fails: out of memory or the cap drop the fact,
 * counted. */
void ch_images_observe(ch_images *im, const ch_event *ev);
/* Write the records changed since the last save; 0 without a store. */
int ch_images_save(ch_images *im, ch_error *err);
/* Use another registry (a reload made new sets): the flagged images are put in its set. */
int ch_images_rebind(ch_images *im, ch_refsets *sets, ch_error *err);
/* What is known of image id, false when nothing. */
bool ch_images_get(const ch_images *im, const char *id, size_t n, ch_image_info *out);
void ch_images_stats_get(const ch_images *im, ch_images_stats *out);

#endif
