#!/usr/bin/env python3
"""Perhitungan ulang independen bundel bukti Pantau / independent recomputation
of a Pantau evidence bundle.

    python3 pantau-recompute.py BUNDEL            (folder atau berkas .tar)

Membaca hasil mentah, katalog target dan jendela pemeliharaan dari bundel,
menghitung ulang menit per status, ketersediaan, kelengkapan dan gangguan per
OPD dan kelompok (aturan: docs/METHODOLOGY.md), lalu membandingkannya dengan
angka laporan JSON di bundel yang sama.

Reads the raw results, target catalogue and maintenance windows of the bundle,
recomputes minutes per state, availability, completeness and incidents per OPD
and group, and compares them with the report JSON of the same bundle.

Exit: 0 every figure equal, 1 some figure differs (each one listed),
2 unusable input. Python 3.8+, standard library only. This script does not
check signatures: run `pantau-collector verify` first.
"""

import csv
import io
import json
import os
import sys
import tarfile

MINUTE = 60_000
HOUR = 3_600_000
NOT_COUNTED_KINDS = ("heartbeat", "bandwidth", "link")  # never minute states
GROUP_ORDER = ["intranet", "datacenter", "internet", "jip", "app"]


class Unusable(Exception):
    """The bundle cannot be used for a recomputation (exit 2)."""


# ---------------------------------------------------------------- reading --

def read_bundle(path):
    """All files of a bundle folder or .tar archive: name -> bytes."""
    files = {}
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            p = os.path.join(path, name)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    files[name] = f.read()
    elif os.path.isfile(path) and tarfile.is_tarfile(path):
        with tarfile.open(path) as t:
            for m in t.getmembers():
                if m.isfile() and "/" not in m.name:
                    files[m.name] = t.extractfile(m).read()
    else:
        raise Unusable(f"{path}: bukan folder bundel atau berkas .tar / not a bundle folder or .tar file")
    return files


def one(files, prefix, suffix):
    names = [n for n in files if n.startswith(prefix) and n.endswith(suffix)]
    if len(names) != 1:
        raise Unusable(f"satu berkas {prefix}*{suffix} diharapkan, ada {len(names)} / "
                       f"expected one {prefix}*{suffix} file, found {len(names)}")
    return names[0]


def plain(value):
    """A CSV text as it was stored: Pantau puts a ' in front of any text that
    starts with = + - @ TAB CR or ' (so no spreadsheet runs it as a formula);
    dropping one leading ' undoes that exactly."""
    return value[1:] if value.startswith("'") else value


def rows(files, name):
    if name not in files:
        raise Unusable(f"{name} tidak ada di bundel / missing from the bundle")
    text = io.StringIO(files[name].decode("utf-8"), newline="")
    return [{k: plain(v) if isinstance(v, str) else v for k, v in r.items()}
            for r in csv.DictReader(text)]


def opt_int(s):
    return int(s) if s not in ("", None) else None


def opt_float(s):
    return float(s) if s not in ("", None) else None


# ------------------------------------------------------------------ rules --

def parse_rules(meta):
    p = dict(meta["parameters"])
    if meta.get("business_hours"):
        raise Unusable("laporan jam kerja: skrip ini hanya menghitung ulang laporan sehari penuh / "
                       "business-hours report: this script covers the full-day report only")
    older = [k for k in p if k.startswith("rules_before")]
    if older:
        raise Unusable(f"sebagian periode memakai aturan lama ({older[0]}): tidak dapat dihitung "
                       f"ulang dari hasil mentah / part of the period used an earlier rule set")
    composite = {}
    for g in GROUP_ORDER:
        c = p.get(f"composite.{g}", "any")
        if c in ("any", "all"):
            composite[g] = c
        elif c.startswith("quorum(") and c.endswith(")"):
            composite[g] = int(c[7:-1])
        else:
            raise Unusable(f"composite.{g} = {c!r} tidak dikenal / unknown")
    return {
        "version": p.get("rule_version", meta.get("rule_version")),
        "degraded_loss": float(p["degraded_loss"]),
        "degraded_rtt_ms": float(p["degraded_rtt_ms"]),
        "incident_minutes": int(p["incident_minutes"]),
        "composite": composite,
    }


def target_minute(rules, obs):
    """rules.rs target_minute: obs = [(ok, rtt_ms, loss)]."""
    if not obs:
        return "-"
    ok = [o for o in obs if o[0]]
    if not ok:
        return "D"
    for _, rtt, loss in ok:
        if (loss is not None and loss > rules["degraded_loss"]) or \
           (rtt is not None and rtt > rules["degraded_rtt_ms"]):
            return "G"
    return "U"


def group_minute(composite, states):
    """rules.rs group_minute over the target states of one minute."""
    if "M" in states:
        return "M"
    monitored = [s for s in states if s != "."]
    if not monitored and states:
        return "."
    n = len(monitored)
    up = monitored.count("U")
    deg = monitored.count("G")
    unknown = monitored.count("-")
    if n == 0 or unknown == n:
        return "-"
    need = 1 if composite == "any" else n if composite == "all" else min(max(composite, 1), n)
    if up >= need:
        return "U"
    if up + deg >= need:
        return "G"
    if up + deg + unknown >= need:
        return "-"
    return "D"


# ---------------------------------------------------------------- minutes --

def minute_timelines(opd, rules, catalogue, results, windows, from_ms, until_ms):
    """Group timelines of one OPD: group -> {minute start ms: state}, over
    every hour from its monitoring start to the data cut-off."""
    targets = [t for t in catalogue if t["opd"] == opd]
    if not targets:
        return {}
    latest = {}
    for t in targets:
        latest[t["agent"]] = max(latest.get(t["agent"], 0), int(t["last_declared_ms"]))
    minute_targets = [t for t in targets if t["kind"] not in ("bandwidth", "link")]
    # Per target: observations per minute and the result holding each minute.
    obs, held, counted_hours, since, hold_of = {}, {}, {}, {}, {}
    for t in minute_targets:
        key = (t["agent"], t["id"])
        hold_of[key] = -(-max(int(t["interval_ms"]), MINUTE) // MINUTE)  # minutes, rounded up
        first = opt_int(t["agent_first_result_ms"])
        seen = int(t["first_seen_ms"])
        since[key] = seen if first is None else min(seen, first)
        obs[key], held[key], counted_hours[key] = {}, {}, set()
    for r in results:  # sorted by observed time
        key = (r["agent"], r["target"])
        if key not in obs or r["clock_flag"] or r["kind"] in NOT_COUNTED_KINDS:
            continue
        at = int(r["observed_at_ms"])
        if at >= until_ms:
            continue
        ok = r["outcome"] == "ok"
        sent, recv = opt_int(r["sent"]), opt_int(r["received"])
        loss = 1.0 - recv / sent if sent is not None and recv is not None and sent > 0 else None
        o = (ok, opt_float(r["value_ms"]) if ok else None, loss)
        m = at - at % MINUTE
        obs[key].setdefault(m, []).append(o)
        counted_hours[key].add(at - at % HOUR)
        for k in range(1, hold_of[key]):  # it holds into the next minutes
            held[key][m + k * MINUTE] = o
    if not since:
        return {}
    start = min(since.values())
    hour = max(from_ms - from_ms % HOUR, start - start % HOUR)
    timelines = {}
    while hour < until_ms:
        in_hour = [t for t in minute_targets
                   if (since[(t["agent"], t["id"])] < hour + HOUR
                       and int(t["last_declared_ms"]) == latest[t["agent"]])
                   or hour in counted_hours[(t["agent"], t["id"])]]
        per_group = {}
        for t in in_hour:
            key = (t["agent"], t["id"])
            states = []
            for i in range(60):
                m = hour + i * MINUTE
                if m >= until_ms:
                    states.append(">")
                elif any((w["opd"] in ("", opd)) and (w["group"] in ("", t["group"]))
                         and int(w["from_ms"]) <= m < int(w["to_ms"]) for w in windows):
                    states.append("M")
                elif m in obs[key]:
                    states.append(target_minute(rules, obs[key][m]))
                elif m in held[key]:
                    states.append(target_minute(rules, [held[key][m]]))
                elif m + MINUTE <= since[key]:
                    states.append(".")
                else:
                    states.append("-")
            per_group.setdefault(t["group"], []).append(states)
        for g, states in per_group.items():
            tl = timelines.setdefault(g, {})
            comp = rules["composite"].get(g, "any")
            for i in range(60):
                m = hour + i * MINUTE
                if from_ms <= m < until_ms:
                    tl[m] = group_minute(comp, [s[i] for s in states])
        hour += HOUR
    return timelines


def figures(tl):
    """Minutes per state, availability and completeness (StateMinutes)."""
    c = {s: sum(1 for v in tl.values() if v == s) for s in "UGD-M"}
    m = {"up": c["U"], "degraded": c["G"], "down": c["D"], "unknown": c["-"], "maintenance": c["M"]}
    return with_percentages(m)


def with_percentages(m):
    avail, measured = m["up"] + m["degraded"], m["up"] + m["degraded"] + m["down"]
    m = dict(m)
    m["availability_pct"] = avail / measured * 100.0 if measured else None
    m["completeness_pct"] = measured / (measured + m["unknown"]) * 100.0 if measured + m["unknown"] else None
    return m


# -------------------------------------------------------------- incidents --

def majority(t, minutes, want):
    return t is not None and sum(1 for m in minutes if t.get(m) in want) * 2 > len(minutes)


def cause(tl, grp, minutes):
    """incident.rs cause: a hint from the other groups over the same minutes."""
    down = lambda g: majority(tl.get(g), minutes, ("D",))
    up = lambda g: majority(tl.get(g), minutes, ("U", "G"))
    intranet_down = down("intranet") or down("datacenter")
    intranet_up = up("intranet") or up("datacenter")
    if grp == "internet":
        return "local_network" if intranet_down else "internet_provider" if intranet_up else "unclear"
    if grp in ("intranet", "datacenter"):
        return "local_network" if down("internet") else "intranet_link" if up("internet") else "unclear"
    if grp == "app":
        if intranet_down:
            return "local_network"
        return "application" if intranet_up or up("internet") else "unclear"
    if grp == "jip":
        return "local_network" if intranet_down else "interconnection"
    return "unclear"


def runs(minutes):
    """Consecutive minute starts -> list of runs."""
    out, run = [], []
    for m in minutes:
        if run and run[-1] + MINUTE != m:
            out.append(run)
            run = []
        run.append(m)
    if run:
        out.append(run)
    return out


def incidents(opd, tl, min_minutes, until_ms):
    out = []
    need = max(min_minutes, 1)
    for g, t in tl.items():
        for run in runs([m for m in sorted(t) if t[m] == "D"]):
            if len(run) >= need:
                end = run[-1] + MINUTE
                out.append((opd, g, run[0], end, len(run), end == until_ms, cause(tl, g, run)))
    # Agent offline: every group without data at the same minute.
    every = sorted(set().union(*[set(t) for t in tl.values()])) if tl else []
    offline = [m for m in every if all(m in t and t[m] == "-" for t in tl.values())]
    for run in runs(offline):
        if len(run) >= need:
            end = run[-1] + MINUTE
            out.append((opd, "agent", run[0], end, len(run), end == until_ms, "agent_offline"))
    return sorted(out, key=lambda i: (i[2], i[1]))


# ---------------------------------------------------------------- compare --

def fmt(v):
    if v is None:
        return "-"
    return f"{v:.4f}".replace(".", ",") if isinstance(v, float) else str(v)  # decimal comma


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) < 1e-9
    return a == b


def local(ms, offset_min):
    import datetime
    t = datetime.datetime.fromtimestamp((ms + offset_min * MINUTE) / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%d %H.%M")


# ------------------------------------------------------------------ audit --

GENESIS = "0" * 64


def audit_hash(e):
    """SHA-256 of the canonical entry, as pantau-collector computes it."""
    import hashlib
    fields = [e["seq"], e["time_ms"], e["actor_kind"], e["actor_name"], e["source"], e["action"],
              e["object"], e["before"], e["after"], e["prev_hash"]]
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def audit_segment(files):
    """Check audit.jsonl: every hash, ascending seqs, the link of consecutive entries."""
    if "audit.jsonl" not in files:
        return []
    lines = [l for l in files["audit.jsonl"].decode("utf-8").splitlines() if l.strip()]
    entries = [json.loads(l) for l in lines]
    print(f"\nLog audit / audit log: {len(entries)} entri / entries")
    diffs = []
    prev = None
    for e in entries:
        print(f"  {e['seq']:>6} {e['action']:<20} {e['object']:<20} {e['actor_kind']}:{e['actor_name']}")
        if audit_hash(e) != e["hash"]:
            diffs.append(f"audit seq {e['seq']}: isi tidak cocok dengan hash / content does not match its hash")
        if prev is not None and e["seq"] <= prev["seq"]:
            diffs.append(f"audit seq {e['seq']}: tidak berurutan / out of order")
        if prev is not None and e["seq"] == prev["seq"] + 1 and e["prev_hash"] != prev["hash"]:
            diffs.append(f"audit seq {e['seq']}: prev_hash != hash seq {prev['seq']}")
        if e["seq"] == 1 and e["prev_hash"] != GENESIS:
            diffs.append("audit seq 1: tidak dimulai dari genesis / does not start the chain")
        prev = e
    return diffs


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) == 2 else 2
    files = read_bundle(argv[1])
    report = json.loads(files[one(files, "laporan-", ".json")])
    meta = report["meta"]
    rules = parse_rules(meta)
    from_ms, until_ms, off = int(meta["from_ms"]), int(meta["data_until_ms"]), int(meta["utc_offset_minutes"])
    raw = one(files, "hasil-mentah-", ".csv")
    catalogue = rows(files, "katalog-target.csv")
    results = rows(files, raw)
    windows = rows(files, "pemeliharaan.csv")
    results.sort(key=lambda r: (int(r["observed_at_ms"]), r["agent"], int(r["epoch"]), int(r["seq"])))
    zone = meta.get("zone", "")
    print(f"Pantau: perhitungan ulang independen / independent recomputation  ({rules['version']})")
    print(f"periode / period {local(from_ms, off)} - {local(int(meta['to_ms']), off)} {zone}; "
          f"data s.d. / until {local(until_ms, off)} {zone}; {len(results)} hasil mentah / raw results")
    diffs = []
    mine_incidents = []
    province = {}
    print(f"\n{'OPD':<14}{'kelompok/group':<15}{'':<16}{'naik':>7}{'menurun':>8}{'putus':>7}"
          f"{'t.data':>7}{'pemel.':>7}{'ketersediaan %':>16}{'kelengkapan %':>15}")
    keys = ["up", "degraded", "down", "unknown", "maintenance", "availability_pct", "completeness_pct"]
    for o in report["opds"]:
        tl = minute_timelines(o["id"], rules, catalogue, results, windows, from_ms, until_ms)
        mine_incidents += incidents(o["id"], tl, rules["incident_minutes"], until_ms)
        theirs = {g["group"]: dict(g["minutes"], availability_pct=g["availability_pct"],
                                   completeness_pct=g["completeness_pct"]) for g in o["groups"]}
        mine = {g: figures(t) for g, t in tl.items()}
        for g in sorted(set(mine) | set(theirs), key=lambda g: (GROUP_ORDER + [g]).index(g)):
            a, b = mine.get(g), theirs.get(g)
            for label, f in (("skrip/script", a), ("laporan/report", b)):
                cells = "".join(f"{fmt(f[k] if f else None):>{w}}" for k, w in zip(keys, (7, 8, 7, 7, 7, 16, 15)))
                print(f"{o['id']:<14}{g:<15}{label:<16}{cells}")
            if a and not b or b and not a:
                diffs.append(f"{o['id']} {g}: kelompok hanya di {'skrip' if a else 'laporan'} / group only in one")
                continue
            for k in keys:
                if not same(a[k], b[k]):
                    diffs.append(f"{o['id']} {g} {k}: skrip/script {fmt(a[k])} != laporan/report {fmt(b[k])}")
            p = province.setdefault(g, {k: 0 for k in keys[:5]})
            for k in keys[:5]:
                p[k] += a[k]
        covs = [f["completeness_pct"] for f in mine.values() if f["completeness_pct"] is not None]
        completeness = max(covs) if covs else None
        print(f"{o['id']:<14}kelengkapan OPD / OPD completeness = maks/max(kelengkapan kelompok / group "
              f"completeness) = {fmt(completeness)} (laporan/report {fmt(o['completeness_pct'])})")
        if not same(completeness, o["completeness_pct"]):
            diffs.append(f"{o['id']} completeness_pct: skrip/script {fmt(completeness)} != "
                         f"laporan/report {fmt(o['completeness_pct'])}")
    for g in report["groups"]:
        a = with_percentages(province.get(g["group"], {k: 0 for k in keys[:5]}))
        b = dict(g["minutes"], availability_pct=g["availability_pct"], completeness_pct=g["completeness_pct"])
        for k in keys:
            if not same(a[k], b[k]):
                diffs.append(f"total {g['group']} {k}: skrip/script {fmt(a[k])} != laporan/report {fmt(b[k])}")
    theirs_inc = sorted(((i["opd"], i["group"], i["start_ms"], i["end_ms"], i["minutes"], i["open"], i["cause"])
                         for i in report["incidents"]), key=lambda i: (i[0], i[2], i[1]))
    mine_incidents.sort(key=lambda i: (i[0], i[2], i[1]))
    print(f"\nGangguan / incidents: skrip/script {len(mine_incidents)}, laporan/report {len(theirs_inc)}")
    for i in mine_incidents:
        mark = "=" if i in theirs_inc else "!"
        print(f" {mark} {i[0]:<12}{i[1]:<11}{local(i[2], off)} - {local(i[3], off)} {zone} "
              f"{i[4]:>5} menit/min{' (berlangsung/ongoing)' if i[5] else ''}  {i[6]}")
        if mark == "!":
            diffs.append(f"gangguan/incident hanya di skrip / only in the script: {i}")
    for i in theirs_inc:
        if i not in mine_incidents:
            diffs.append(f"gangguan/incident hanya di laporan / only in the report: {i}")
    diffs += audit_segment(files)
    if diffs:
        print(f"\nBERBEDA / DIFFERENT: {len(diffs)} angka / figure(s)")
        for d in diffs:
            print(f"  - {d}")
        return 1
    print("\nSAMA / EQUAL: semua angka laporan cocok dengan perhitungan ulang / "
          "every figure of the report matches the recomputation")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Unusable as e:
        print(f"pantau-recompute: {e}", file=sys.stderr)
        sys.exit(2)
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError,
            tarfile.TarError, OSError) as e:
        print(f"pantau-recompute: masukan tidak dapat dipakai / unusable input: "
              f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
