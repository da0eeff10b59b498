//! The closing "Keabsahan dokumen" box: how to check the bundle, where the
//! official key is, and the sign-off block.

use crate::report::model::{Block, Body, FieldStyle, Media, Section};
use crate::report::model::{gap, heading};
use crate::report::text::date;
use crate::report::{Lang, Report};

/// The validity box (pages only).
pub fn build(r: &Report) -> Vec<Section> {
    let m = &r.meta;
    let en = m.lang == Lang::En;
    let pick = |id: &'static str, e: &'static str| if en { e } else { id };
    let bundle = pick("FOLDER-BUNDEL-atau-BERKAS.tar", "BUNDLE-DIR-or-FILE.tar");
    let key = m.public_key.clone().unwrap_or_else(|| "-".into());
    let (raw, digest) = match &m.raw_export {
        Some(x) => (x.file.clone(), x.sha256.clone()),
        None => {
            let none = pick(
                "- (bukan bundel bertanda tangan)",
                "- (not a signed bundle)",
            );
            (none.to_string(), none.to_string())
        }
    };
    let rows = vec![
        (pick("Berkas hasil mentah", "Raw export file"), raw),
        (pick("SHA-256 hasil mentah", "Raw export SHA-256"), digest),
        (
            pick(
                "Kunci publik kolektor (Ed25519)",
                "Collector public key (Ed25519)",
            ),
            key.clone(),
        ),
        (
            pick(
                "Kunci publik resmi diterbitkan di",
                "Official public key published at",
            ),
            m.public_key_url.clone(),
        ),
        (
            pick("Periksa keaslian", "Check authenticity"),
            format!("pantau-collector verify {bundle} --public-key {key}"),
        ),
        (
            pick("Hitung ulang angka", "Recompute the figures"),
            format!("python3 pantau-recompute.py {bundle}"),
        ),
        (
            pick("Catatan", "Note"),
            pick(
                "Tanpa --public-key, verify hanya memeriksa keutuhan (kode keluar 3), bukan asal-usul.",
                "Without --public-key, verify checks integrity only (exit code 3), not origin.",
            )
            .to_string(),
        ),
    ];
    // Place and date, position, room for the signature, name, NIP; none
    // without `[report.signoff]`.
    let signoff = m.signoff.as_ref().map_or_else(Vec::new, |s| {
        vec![
            format!(
                "{}, {}",
                s.place,
                date(m.issued_ms, m.utc_offset_minutes, m.lang)
            ),
            s.position.clone(),
            String::new(),
            String::new(),
            s.name.clone(),
            format!("NIP {}", s.nip),
        ]
    });
    // A signed bundle: where the electronic signature of this file is.
    let mut signoff = signoff;
    if !signoff.is_empty() && m.raw_export.is_some() {
        use crate::report::sign::{MANIFEST, SIGNATURE};
        signoff.push(String::new());
        signoff.push(if en {
            format!("This document is signed electronically: its SHA-256 is listed in the bundle's {MANIFEST}, signed with Ed25519 in {SIGNATURE} (check with pantau-collector verify).")
        } else {
            format!("Dokumen ini ditandatangani secara elektronik: SHA-256 berkas ini tercantum dalam {MANIFEST} bundel yang ditandatangani Ed25519 di {SIGNATURE} (periksa dengan pantau-collector verify).")
        });
    }
    vec![Section {
        id: "validity",
        sheet: None,
        blocks: vec![
            gap(8.0, Media::PDF),
            Block::new(Body::Frame {
                class: "validity",
                keep: 120.0,
                blocks: vec![
                    heading(2, None, pick("Keabsahan dokumen", "Document validity")),
                    Block::new(Body::Fields {
                        style: FieldStyle::Boxed,
                        rows: rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                    }),
                    Block::new(Body::Signature(signoff)),
                ],
            })
            .only(Media::PRINT),
        ],
    }]
}
