//! Sections 3a-3c: Pusat Data and JIP reachability (interconnection),
//! throughput against the contracted bandwidth, link utilisation; one sheet
//! and one CSV block each.

use crate::report::capacity::{BandwidthFigure, DirFigure, Dist, LinkFigure};
use crate::report::model::{Block, Cell, Empty, Media, Para, Section, Sheet, Size, Unit};
use crate::report::model::{gap, heading, labels, records, table};
use crate::report::text::{group_label, num, t};
use crate::report::{Lang, Report};

fn mb(v: Option<f64>) -> Cell {
    Cell::num(v.map(|v| v / 1e6), 2, Unit::Mbps)
}

/// One capacity section: heading, note, table (a row saying there is no
/// data when empty) and its CSV block.
fn section(
    r: &Report,
    sheet: &'static str,
    [title, note]: [String; 2],
    (columns, weights): (Vec<String>, &[f32]),
    rows: Vec<Vec<Cell>>,
    csv: Block,
) -> Section {
    let none = if r.meta.lang == Lang::En {
        "No data in the period."
    } else {
        "Tidak ada data dalam periode ini."
    };
    Section {
        id: sheet,
        sheet: Some(Sheet {
            name: sheet,
            widths: vec![(0, 24.0)],
        }),
        blocks: vec![
            heading(2, None, title),
            Para::text(Size::Note, note),
            gap(1.0, Media::SHEET),
            table(columns, rows, weights, Empty::Row(none.into())),
            csv,
        ],
    }
}

/// The three sections, numbered 3a-3c (after the per-OPD table).
pub fn build(r: &Report) -> Vec<Section> {
    vec![reachability(r), throughput(r), utilisation(r)]
}

fn plain(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.4}"))
}

fn reachability(r: &Report) -> Section {
    let l = r.meta.lang;
    let s = |id: &str, e: &str| if l == Lang::En { e } else { id }.to_string();
    let rows = r
        .capacity
        .reachability
        .iter()
        .map(|x| {
            let mut row = vec![
                Cell::Text(format!("{} — {}", x.opd, x.opd_name)),
                Cell::Text(group_label(&x.group, l)),
            ];
            match &x.figure {
                Some(g) => row.extend([
                    Cell::num(g.availability_pct, 2, Unit::Percent),
                    Cell::num(Some(g.sla_pct), 1, Unit::Percent),
                    Cell::text(match g.sla_met {
                        Some(true) => t(l, "yes"),
                        Some(false) => t(l, "no"),
                        None => "-",
                    }),
                    Cell::num(g.p50_ms, 1, Unit::Millis),
                    Cell::num(g.p95_ms, 1, Unit::Millis),
                    Cell::num(g.loss_pct, 2, Unit::Percent),
                    Cell::count(g.minutes.down, Unit::Minutes),
                    Cell::count(g.minutes.unknown, Unit::Minutes),
                    Cell::num(g.completeness_pct, 1, Unit::Percent),
                ]),
                None => {
                    row.push(Cell::Text(s("tidak diukur", "not measured")));
                    row.extend(std::iter::repeat_n(Cell::text("-"), 8));
                }
            }
            row
        })
        .collect();
    let columns = [
        "OPD",
        t(l, "group"),
        t(l, "avail"),
        "SLA %",
        t(l, "met"),
        t(l, "p50"),
        t(l, "p95"),
        t(l, "loss"),
        t(l, "down_min"),
        t(l, "unknown_min"),
        t(l, "completeness"),
    ];
    let rv = &r.meta.rule_version;
    let csv = r
        .capacity
        .reachability
        .iter()
        .map(|x| {
            let g = x.figure.as_ref();
            vec![
                "reachability".into(),
                x.opd.clone(),
                x.group.clone(),
                plain(g.and_then(|g| g.availability_pct)),
                g.map_or(String::new(), |g| g.sla_pct.to_string()),
                g.and_then(|g| g.sla_met)
                    .map_or(String::new(), |m| m.to_string()),
                plain(g.and_then(|g| g.completeness_pct)),
                g.map_or(String::new(), |g| g.minutes.down.to_string()),
                g.map_or(String::new(), |g| g.minutes.unknown.to_string()),
                plain(g.and_then(|g| g.p50_ms)),
                plain(g.and_then(|g| g.p95_ms)),
                plain(g.and_then(|g| g.loss_pct)),
                rv.clone(),
            ]
        })
        .collect();
    section(
        r,
        "Pusat Data dan JIP",
        [
            s(
                "3a. Keterjangkauan Pusat Data dan JIP (interkoneksi)",
                "3a. Data-centre and JIP reachability (interconnection)",
            ),
            s(
                "Ketersediaan kelompok Pusat Data dan JIP/PDN dari setiap OPD menurut aturan komposit; \"tidak diukur\" = OPD belum memiliki target pada kelompok itu.",
                "Availability of the data-centre and JIP/PDN groups from each OPD by the composite rule; \"not measured\" = the OPD has no target in that group.",
            ),
        ],
        (
            labels(&columns),
            &[2.0, 1.1, 1.1, 0.7, 1.1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        ),
        rows,
        records(
            vec![
                "section",
                "opd",
                "group",
                "availability_pct",
                "sla_pct",
                "sla_met",
                "completeness_pct",
                "down_min",
                "unknown_min",
                "p50_ms",
                "p95_ms",
                "loss_pct",
                "rule_version",
            ],
            csv,
        ),
    )
}

/// A capacity table in both languages: one table row and one CSV record
/// per item. Columns are (Indonesian, English, width); every CSV record
/// gets the rule version appended.
struct Spec<T> {
    sheet: &'static str,
    title: [&'static str; 2],
    note: [&'static str; 2],
    columns: &'static [(&'static str, &'static str, f32)],
    csv_columns: &'static [&'static str],
    row: fn(&T, Lang) -> Vec<Cell>,
    record: fn(&T) -> Vec<String>,
}

fn bilingual_section<T>(r: &Report, items: &[T], spec: Spec<T>) -> Section {
    let l = r.meta.lang;
    let pick = |id: &str, e: &str| if l == Lang::En { e } else { id }.to_string();
    let columns = spec.columns.iter().map(|&(id, e, _)| pick(id, e)).collect();
    let weights: Vec<f32> = spec.columns.iter().map(|c| c.2).collect();
    let rows = items.iter().map(|x| (spec.row)(x, l)).collect();
    let csv = items
        .iter()
        .map(|x| {
            let mut rec = (spec.record)(x);
            rec.push(r.meta.rule_version.clone());
            rec
        })
        .collect();
    let mut csv_columns = spec.csv_columns.to_vec();
    csv_columns.push("rule_version");
    section(
        r,
        spec.sheet,
        [
            pick(spec.title[0], spec.title[1]),
            pick(spec.note[0], spec.note[1]),
        ],
        (columns, &weights),
        rows,
        records(csv_columns, csv),
    )
}

fn throughput(r: &Report) -> Section {
    bilingual_section(
        r,
        &r.capacity.bandwidth,
        Spec {
            sheet: "Kecepatan aktual",
            title: [
                "3b. Kecepatan aktual (throughput) vs bandwidth kontrak",
                "3b. Throughput measured against contracted bandwidth",
            ],
            note: [
                "Mbit/s per uji (goodput HTTP). Uji: jalan/dilewati/gagal. Median dan p5 = peringkat terdekat atas seluruh uji periode; % kontrak = median / bandwidth kontrak (registri OPD, atau contracted_mbps tautan pada agen).",
                "Mbit/s per test (HTTP goodput). Tests: run/skipped/failed. Median and p5 = nearest rank over every test of the period; % of contract = median / contracted bandwidth (OPD registry, or the agent's link contracted_mbps).",
            ],
            columns: &[
                ("OPD", "OPD", 1.1),
                ("Target", "Target", 1.6),
                ("Uji", "Tests", 1.0),
                ("Unduh median", "Down median", 1.0),
                ("Unduh p5", "Down p5", 0.9),
                ("Unduh maks", "Down max", 0.9),
                ("Unggah median", "Up median", 1.0),
                ("Unggah p5", "Up p5", 0.9),
                ("Unggah maks", "Up max", 0.9),
                ("Kontrak", "Contract", 0.9),
                ("Unduh % kontrak", "Down % contract", 1.0),
                ("Unggah % kontrak", "Up % contract", 1.0),
            ],
            csv_columns: &[
                "section",
                "opd",
                "agent",
                "target",
                "group",
                "tests_run",
                "tests_skipped",
                "tests_failed",
                "download_n",
                "download_median_bps",
                "download_p5_bps",
                "download_min_bps",
                "download_max_bps",
                "upload_n",
                "upload_median_bps",
                "upload_p5_bps",
                "upload_min_bps",
                "upload_max_bps",
                "contracted_bps",
                "contracted_source",
                "download_pct_of_contracted",
                "upload_pct_of_contracted",
            ],
            row: throughput_row,
            record: throughput_record,
        },
    )
}

fn throughput_row(b: &BandwidthFigure, _: Lang) -> Vec<Cell> {
    vec![
        Cell::Text(b.opd.clone()),
        Cell::Text(b.label.clone()),
        Cell::Text(format!(
            "{}/{}/{}",
            b.tests_run, b.tests_skipped, b.tests_failed
        )),
        mb(b.download.as_ref().map(|d| d.median_bps)),
        mb(b.download.as_ref().map(|d| d.p5_bps)),
        mb(b.download.as_ref().map(|d| d.max_bps)),
        mb(b.upload.as_ref().map(|d| d.median_bps)),
        mb(b.upload.as_ref().map(|d| d.p5_bps)),
        mb(b.upload.as_ref().map(|d| d.max_bps)),
        mb(b.contracted_bps),
        Cell::num(b.download_pct_of_contracted, 1, Unit::Percent),
        Cell::num(b.upload_pct_of_contracted, 1, Unit::Percent),
    ]
}

fn throughput_record(b: &BandwidthFigure) -> Vec<String> {
    let d = |x: &Option<Dist>| match x {
        Some(d) => [
            d.n.to_string(),
            d.median_bps.to_string(),
            d.p5_bps.to_string(),
            d.min_bps.to_string(),
            d.max_bps.to_string(),
        ],
        None => Default::default(),
    };
    let mut row = vec![
        "throughput".to_string(),
        b.opd.clone(),
        b.agent.clone(),
        b.target.clone(),
        b.group.clone(),
        b.tests_run.to_string(),
        b.tests_skipped.to_string(),
        b.tests_failed.to_string(),
    ];
    row.extend(d(&b.download));
    row.extend(d(&b.upload));
    row.extend([
        plain(b.contracted_bps),
        b.contracted_source.clone().unwrap_or_default(),
        plain(b.download_pct_of_contracted),
        plain(b.upload_pct_of_contracted),
    ]);
    row
}

fn utilisation(r: &Report) -> Section {
    bilingual_section(
        r,
        &r.capacity.utilisation,
        Spec {
            sheet: "Pemanfaatan",
            title: [
                "3c. Pemanfaatan tautan (utilisasi bandwidth)",
                "3c. Link utilisation",
            ],
            note: [
                "Mbit/s: rata-rata (tertimbang waktu), p95 dan puncak laju per selang polling, masuk dan keluar. p95 % = p95 tertinggi dari kedua arah / kapasitas. Kelengkapan data = detik yang memiliki laju / detik periode; selang tanpa laju (polling pertama, reset, celah) dihitung dan tidak diinterpolasi.",
                "Mbit/s: time-weighted average, p95 and peak of the per-poll-interval rates, in and out. p95 % = the higher p95 of both directions / capacity. Coverage = seconds with a rate / seconds of the period; intervals without a rate (first poll, reset, gap) are counted and never interpolated.",
            ],
            columns: &[
                ("OPD", "OPD", 1.0),
                ("Tautan", "Link", 1.6),
                ("Kapasitas Mbit/s", "Capacity Mbit/s", 1.2),
                ("Masuk rata2", "In avg", 0.9),
                ("Masuk p95", "In p95", 0.9),
                ("Masuk puncak", "In peak", 0.9),
                ("Keluar rata2", "Out avg", 0.9),
                ("Keluar p95", "Out p95", 0.9),
                ("Keluar puncak", "Out peak", 0.9),
                ("p95 %", "p95 %", 0.8),
                ("Kelengkapan data %", "Data completeness %", 0.9),
                ("Polling tanpa laju", "No-rate polls", 0.9),
            ],
            csv_columns: &[
                "section",
                "opd",
                "agent",
                "target",
                "if_name",
                "capacity_bps",
                "capacity_contracted",
                "polls",
                "polls_without_rate",
                "covered_seconds",
                "period_seconds",
                "coverage_pct",
                "in_avg_bps",
                "in_p95_bps",
                "in_peak_bps",
                "in_p95_pct",
                "out_avg_bps",
                "out_p95_bps",
                "out_peak_bps",
                "out_p95_pct",
            ],
            row: utilisation_row,
            record: utilisation_record,
        },
    )
}

fn utilisation_row(k: &LinkFigure, l: Lang) -> Vec<Cell> {
    let s = |id: &str, e: &str| if l == Lang::En { e } else { id }.to_string();
    let d = |x: &Option<DirFigure>, f: fn(&DirFigure) -> f64| mb(x.as_ref().map(f));
    let worst = [&k.inbound, &k.outbound]
        .iter()
        .filter_map(|x| x.as_ref().and_then(|x| x.p95_pct))
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    vec![
        Cell::Text(k.opd.clone()),
        Cell::Text(if k.if_name.is_empty() {
            k.label.clone()
        } else {
            format!("{} ({})", k.label, k.if_name)
        }),
        Cell::Text(match k.capacity_bps {
            Some(c) => format!(
                "{} {}",
                num(c / 1e6, 2, l),
                if k.capacity_contracted {
                    s("(kontrak)", "(contract)")
                } else {
                    s("(port)", "(port)")
                }
            ),
            None => "-".into(),
        }),
        d(&k.inbound, |x| x.avg_bps),
        d(&k.inbound, |x| x.p95_bps),
        d(&k.inbound, |x| x.peak_bps),
        d(&k.outbound, |x| x.avg_bps),
        d(&k.outbound, |x| x.p95_bps),
        d(&k.outbound, |x| x.peak_bps),
        Cell::num(worst, 1, Unit::Percent),
        Cell::num(Some(k.coverage_pct), 1, Unit::Percent),
        Cell::num(Some(k.polls_without_rate as f64), 0, Unit::Count),
    ]
}

fn utilisation_record(k: &LinkFigure) -> Vec<String> {
    let dir = |x: &Option<DirFigure>| match x {
        Some(d) => [
            plain(Some(d.avg_bps)),
            d.p95_bps.to_string(),
            d.peak_bps.to_string(),
            plain(d.p95_pct),
        ],
        None => Default::default(),
    };
    let mut row = vec![
        "utilisation".to_string(),
        k.opd.clone(),
        k.agent.clone(),
        k.target.clone(),
        k.if_name.replace(',', " "),
        plain(k.capacity_bps),
        k.capacity_contracted.to_string(),
        k.polls.to_string(),
        k.polls_without_rate.to_string(),
        k.covered_seconds.to_string(),
        k.period_seconds.to_string(),
        plain(Some(k.coverage_pct)),
    ];
    row.extend(dir(&k.inbound));
    row.extend(dir(&k.outbound));
    row
}
