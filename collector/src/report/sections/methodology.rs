//! Section 7: methodology, the rule parameters in the report's language and
//! the collector's public key.

use crate::report::model::{
    Block, Body, Cell, Empty, FieldStyle, Media, Para, Section, Size, Span,
};
use crate::report::model::{heading, table};
use crate::report::text::{group_label, t};
use crate::report::{Lang, Meta, Report};

/// The §7 parameter table: a label in the report's language for each
/// machine key of [`Meta::parameters`] (JSON keeps the keys) and the value
/// with the language's decimal mark.
pub fn parameter_rows(m: &Meta) -> Vec<Vec<String>> {
    m.parameters
        .iter()
        .map(|(k, v)| vec![parameter_label(k, m.lang), parameter_value(k, v, m.lang)])
        .collect()
}

/// Headers matching [`parameter_rows`].
pub fn parameter_headers(l: Lang) -> [&'static str; 2] {
    [t(l, "param"), t(l, "value")]
}

fn parameter_label(key: &str, l: Lang) -> String {
    let en = l == Lang::En;
    let pick = |id: &str, e: &str| if en { e.to_string() } else { id.to_string() };
    if let Some(g) = key.strip_prefix("sla.") {
        let g = group_label(g, l);
        return pick(
            &format!("target SLA {g} (%)"),
            &format!("SLA target, {g} (%)"),
        );
    }
    if let Some(g) = key.strip_prefix("composite.") {
        let g = group_label(g, l);
        return pick(
            &format!("aturan komposit {g}"),
            &format!("composite rule, {g}"),
        );
    }
    if let Some(rest) = key.strip_prefix("rules_before ") {
        return pick(
            &format!("aturan yang berlaku sebelum {rest}"),
            &format!("rules in force before {rest}"),
        );
    }
    match key {
        "rule_version" => pick("versi aturan", "rule version"),
        "degraded_loss" => pick(
            "ambang kehilangan paket menurun",
            "degraded packet-loss threshold",
        ),
        "degraded_rtt_ms" => pick(
            "ambang latensi menurun (ms)",
            "degraded latency threshold (ms)",
        ),
        "incident_minutes" => pick(
            "menit henti berturut-turut minimum untuk gangguan",
            "minimum consecutive down minutes for an incident",
        ),
        "business_hours" => pick("jam kerja", "business hours"),
        "coverage_target" => pick(
            "target cakupan OPD terhubung (%)",
            "OPD coverage target (%)",
        ),
        "saturation_p95_pct" => pick(
            "ambang jenuh pemanfaatan tautan p95 (%)",
            "link saturation threshold, p95 utilisation (%)",
        ),
        "throughput_min_pct_of_contract" => pick(
            "kecepatan minimum terhadap kontrak (%)",
            "minimum throughput, percent of contract",
        ),
        "utilisation_hist_buckets_per_doubling" => pick(
            "ember histogram pemanfaatan per kelipatan dua",
            "utilisation histogram buckets per doubling",
        ),
        other => other.to_string(),
    }
}

fn parameter_value(key: &str, v: &str, l: Lang) -> String {
    let en = l == Lang::En;
    if key.starts_with("composite.") {
        return match v {
            "any" => if en {
                "any target"
            } else {
                "salah satu target"
            }
            .to_string(),
            "all" => if en { "every target" } else { "semua target" }.to_string(),
            q => match q.strip_prefix("quorum(").and_then(|r| r.strip_suffix(')')) {
                Some(n) if en => format!("quorum of {n} targets"),
                Some(n) => format!("kuorum {n} target"),
                None => q.to_string(),
            },
        };
    }
    if en {
        return v.to_string();
    }
    if key == "business_hours" {
        return v.replace(':', ".").replace("Mon-Fri", "Senin-Jumat");
    }
    // A plain number as configured ("0.2", "99.5"), with the decimal comma.
    if v.parse::<f64>().is_ok() {
        return v.replace('.', ",");
    }
    v.to_string()
}

/// The methodology section (continues the "Reviu" sheet).
pub fn build(r: &Report) -> Vec<Section> {
    let (l, m) = (r.meta.lang, &r.meta);
    let rows = parameter_rows(m);
    let mut blocks = vec![
        heading(2, Some("7"), t(l, "methodology")),
        Para::text(Size::Small, t(l, "method_text")),
        table(
            parameter_headers(l).iter().map(|s| s.to_string()).collect(),
            rows.iter()
                .map(|row| row.iter().map(Cell::text).collect())
                .collect(),
            &[1.5, 1.0],
            Empty::Headers,
        )
        .only(Media::PRINT),
        Block::new(Body::Fields {
            style: FieldStyle::Lines,
            rows: rows
                .into_iter()
                .map(|mut row| {
                    let v = row.pop().unwrap_or_default();
                    (row.pop().unwrap_or_default(), v)
                })
                .collect(),
        })
        .only(Media::SHEET),
    ];
    if let Some(k) = &m.public_key {
        blocks.push(
            Block::new(Body::Para(Para {
                size: Size::Small,
                spans: vec![
                    Span::Text(format!("{}: ", t(l, "public_key"))),
                    Span::Code(k.clone()),
                ],
            }))
            .only(Media::PRINT),
        );
    }
    vec![Section {
        id: "methodology",
        sheet: None,
        blocks,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(lang: Lang, parameters: Vec<(String, String)>) -> Meta {
        crate::report::test_meta(lang, parameters)
    }

    #[test]
    fn parameters_in_the_report_language() {
        let p: Vec<(String, String)> = [
            ("degraded_loss", "0.2"),
            ("degraded_rtt_ms", "150"),
            ("business_hours", "08:00-16:00 Mon-Fri"),
            ("composite.app", "quorum(2)"),
            ("composite.internet", "any"),
            ("sla.datacenter", "99.5"),
            ("rule_version", "pantau-rules/2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let id = parameter_rows(&meta(Lang::Id, p.clone()));
        let line = |rows: &[Vec<String>], i: usize| format!("{}: {}", rows[i][0], rows[i][1]);
        assert_eq!(line(&id, 0), "ambang kehilangan paket menurun: 0,2");
        assert_eq!(line(&id, 1), "ambang latensi menurun (ms): 150");
        assert_eq!(line(&id, 2), "jam kerja: 08.00-16.00 Senin-Jumat");
        assert_eq!(line(&id, 3), "aturan komposit Aplikasi: kuorum 2 target");
        assert_eq!(line(&id, 4), "aturan komposit Internet: salah satu target");
        assert_eq!(line(&id, 5), "target SLA Pusat Data (%): 99,5");
        assert_eq!(line(&id, 6), "versi aturan: pantau-rules/2");
        let en = parameter_rows(&meta(Lang::En, p));
        assert_eq!(line(&en, 0), "degraded packet-loss threshold: 0.2");
        assert_eq!(
            line(&en, 3),
            "composite rule, Applications: quorum of 2 targets"
        );
        assert_eq!(line(&en, 5), "SLA target, Data centre (%): 99.5");
        assert_eq!(parameter_headers(Lang::Id), ["Parameter", "Nilai"]);
    }
}
