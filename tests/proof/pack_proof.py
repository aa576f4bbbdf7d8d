#!/usr/bin/env python3
"""pack_proof.py - what the cryptojacking-aws pack says about logs nobody here generated.

    tests/proof/pack_proof.py stratus BIN CORPORA [--pack DIR] [--json]
    tests/proof/pack_proof.py panther BIN CORPORA [--pack DIR] [--json]

stratus: runs `coinhound analyze --format json` over each Stratus Red Team detonation log
(CORPORA/cloudtrail/stratus_red_team_detonation_logs/aws.*.json), one fresh offense store per
technique, and prints what fired (the rules of the offenses raised) per technique.
panther: runs it over each CloudTrail fixture of CORPORA/panther/panther_dev_fixtures.jsonl (one
event, one run), grouped by Panther rule family, beside Panther's own verdict (a peer's opinion,
not ground truth): how many of the fixtures Panther expects to alert raised an offense here,
and how many it expects to stay silent did.

The tables go into content/cryptojacking-aws/README.md; tests/integration/test_stratus.sh
checks the stratus result. Python 3 standard library only.
"""
import argparse, glob, json, os, shutil, subprocess, sys, tempfile

def analyze(bin_, pack, path, work):
    db = os.path.join(work, "run.db")
    for f in glob.glob(db + "*"):
        # the event store is a directory beside the database (docs/SEARCH.md)
        shutil.rmtree(f) if os.path.isdir(f) else os.remove(f)
    cmd = [bin_, "analyze", "--format", "json", "--no-progress", "-q", "--no-geoip", "--db", db, path]
    if pack:
        cmd[2:2] = ["--pack", pack]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True).stdout
    rep = json.loads(out)
    fired = sorted({r["id"] for o in rep.get("offenses", []) for r in o.get("rules", [])})
    return rep["stats"]["events"], rep["stats"]["errors"], fired

def stratus(args, work):
    d = os.path.join(args.corpora, "cloudtrail", "stratus_red_team_detonation_logs")
    rows = []
    for path in sorted(glob.glob(os.path.join(d, "aws.*.json"))):
        tech = os.path.basename(path)[:-5]
        events, errors, fired = analyze(args.bin, args.pack, path, work)
        rows.append({"technique": tech, "events": events, "errors": errors, "fired": fired})
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return
    print("| Stratus technique | events | fired |")
    print("|---|---|---|")
    for r in rows:
        print("| %s | %d | %s |" % (r["technique"], r["events"], ", ".join(r["fired"]) or "-"))
    n = sum(1 for r in rows if r["fired"])
    print("\n%d of %d techniques raise an offense" % (n, len(rows)))

def panther(args, work):
    path = os.path.join(args.corpora, "panther", "panther_dev_fixtures.jsonl")
    fam = {}
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            if "AWS.CloudTrail" not in t.get("log_types", []) or not isinstance(t.get("log"), dict):
                continue
            ev = os.path.join(work, "ev.json")
            with open(ev, "w") as o:
                json.dump(t["log"], o)
            try:
                events, errors, fired = analyze(args.bin, args.pack, ev, work)
            except subprocess.CalledProcessError:
                events, errors, fired = 0, 1, []
            a = fam.setdefault(t["rule_id"], {"tests": 0, "panther_alerts": 0, "we_fire_on_alerts": 0,
                                              "we_fire_on_silent": 0, "unparsed": 0, "rules": set()})
            a["tests"] += 1
            a["unparsed"] += 1 if events == 0 else 0
            if t["expected"]:
                a["panther_alerts"] += 1
                a["we_fire_on_alerts"] += 1 if fired else 0
            else:
                a["we_fire_on_silent"] += 1 if fired else 0
            a["rules"].update(fired)
    for a in fam.values():
        a["rules"] = sorted(a["rules"])
    if args.json:
        json.dump(fam, sys.stdout, indent=1, sort_keys=True)
        print()
        return
    print("| Panther rule | fixtures | Panther alerts | we fire on those | we fire on Panther-silent | our rules |")
    print("|---|---|---|---|---|---|")
    for k in sorted(fam):
        a = fam[k]
        if not a["rules"] and a["panther_alerts"] == 0:
            continue
        print("| %s | %d | %d | %d | %d | %s |" % (k, a["tests"], a["panther_alerts"], a["we_fire_on_alerts"],
                                                   a["we_fire_on_silent"], ", ".join(a["rules"]) or "-"))

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["stratus", "panther"])
    ap.add_argument("bin")
    ap.add_argument("corpora")
    ap.add_argument("--pack")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        (stratus if args.what == "stratus" else panther)(args, work)

if __name__ == "__main__":
    main()
