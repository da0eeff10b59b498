//! Maintenance windows (create, end early, delete with a reason) and
//! incident notes. Every change marks the hours it touches dirty (the
//! store does it in the same transaction), so availability follows.

use serde_json::{Value, json};

use super::{ActionError, audit, text};
use crate::audit::{Action, Actor};
use crate::store::report::{IncidentNote, MaintenanceRecord, NewMaintenance};
use crate::store::{Store, now_ms};

fn known_opd(s: &dyn Store, field: &'static str, opd: &str) -> Result<(), ActionError> {
    match s.opd_name(opd)? {
        Some(_) => Ok(()),
        None => Err(ActionError::invalid(
            field,
            &format!("OPD `{opd}` tidak ada"),
            &format!("OPD `{opd}` does not exist"),
        )),
    }
}

/// The audit form of a window.
fn window_json(w: &MaintenanceRecord) -> Value {
    json!({
        "id": w.id, "opd": w.opd, "group": w.group, "from_ms": w.from_ms, "to_ms": w.to_ms,
        "reason": w.reason, "by": w.recorded_by,
    })
}

/// `maintenance` / the console's form.
pub fn create(s: &dyn Store, actor: &Actor, w: &NewMaintenance) -> Result<String, ActionError> {
    let reason = text("reason", &w.reason)?;
    let by = text("by", &w.by)?;
    if w.to_ms <= w.from_ms {
        return Err(ActionError::invalid(
            "to",
            "harus sesudah waktu mulai",
            "must be after the start",
        ));
    }
    if let Some(o) = &w.opd {
        known_opd(s, "opd", o)?;
    }
    if let Some(g) = &w.group
        && pantau_core::Group::parse(g).is_none()
    {
        return Err(ActionError::invalid(
            "group",
            &format!("grup `{g}` tidak dikenal (internet, intranet, datacenter, jip, app)"),
            &format!("unknown group `{g}` (internet, intranet, datacenter, jip, app)"),
        ));
    }
    let after = json!({
        "opd": w.opd, "group": w.group, "from_ms": w.from_ms, "to_ms": w.to_ms, "reason": reason, "by": by,
    });
    s.add_maintenance(&NewMaintenance {
        reason,
        by,
        ..w.clone()
    })?;
    let object = w.opd.as_deref().unwrap_or("*");
    audit(
        s,
        actor,
        Action::MaintenanceCreate,
        object,
        Value::Null,
        after,
    )?;
    Ok("pemeliharaan dicatat / maintenance window recorded".into())
}

/// `maintenance-end` / the console's "end now" button: the window ends now.
pub fn end(s: &dyn Store, actor: &Actor, id: i64) -> Result<String, ActionError> {
    let now = now_ms();
    let was = s.end_maintenance(id, now)?;
    let mut now_w = was.clone();
    now_w.to_ms = now.max(was.from_ms);
    let object = was.opd.as_deref().unwrap_or("*").to_string();
    audit(
        s,
        actor,
        Action::MaintenanceEnd,
        &object,
        window_json(&was),
        window_json(&now_w),
    )?;
    Ok(format!(
        "pemeliharaan {id} diakhiri lebih awal / maintenance window {id} ended early"
    ))
}

/// `maintenance-delete --reason` / the console's delete form.
pub fn delete(s: &dyn Store, actor: &Actor, id: i64, reason: &str) -> Result<String, ActionError> {
    let reason = text("reason", reason)?;
    let was = s.delete_maintenance(id)?;
    let mut after = window_json(&was);
    after["deleted"] = json!(true);
    after["delete_reason"] = json!(reason);
    let object = was.opd.as_deref().unwrap_or("*").to_string();
    audit(
        s,
        actor,
        Action::MaintenanceDelete,
        &object,
        window_json(&was),
        after,
    )?;
    Ok(format!(
        "pemeliharaan {id} dihapus / maintenance window {id} deleted"
    ))
}

/// A note on an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// OPD.
    pub opd: String,
    /// Group.
    pub group: String,
    /// Incident start, UTC ms.
    pub start_ms: i64,
    /// Note.
    pub note: String,
    /// Ticket reference ("" for none).
    pub ticket: String,
    /// Author.
    pub by: String,
}

/// `incident-note` / the console's form.
pub fn incident_note(s: &dyn Store, actor: &Actor, n: &Note) -> Result<String, ActionError> {
    let note = text("note", &n.note)?;
    let by = text("by", &n.by)?;
    let ticket = n.ticket.trim().to_string();
    if ticket.chars().count() > super::MAX_TEXT || ticket.chars().any(char::is_control) {
        return Err(ActionError::invalid(
            "ticket",
            "terlalu panjang atau berisi karakter kontrol",
            "too long or has control characters",
        ));
    }
    if pantau_core::Group::parse(&n.group).is_none() {
        return Err(ActionError::invalid(
            "group",
            &format!("grup `{}` tidak dikenal", n.group),
            &format!("unknown group `{}`", n.group),
        ));
    }
    known_opd(s, "opd", &n.opd)?;
    let before =
        crate::store::report::snapshot(s, |r| r.incident_note(&n.opd, &n.group, n.start_ms))
            .ok()
            .flatten();
    s.set_incident_note(&IncidentNote {
        opd: n.opd.clone(),
        group: n.group.clone(),
        start_ms: n.start_ms,
        note: note.clone(),
        ticket: ticket.clone(),
        by: by.clone(),
        at_ms: now_ms(),
    })?;
    let after = json!({
        "opd": n.opd, "group": n.group, "start_ms": n.start_ms, "note": note, "ticket": ticket, "by": by,
    });
    let before = before.map_or(
        Value::Null,
        |(note, ticket)| json!({"note": note, "ticket": ticket}),
    );
    let object = format!("{}/{}@{}", n.opd, n.group, n.start_ms);
    audit(s, actor, Action::IncidentNote, &object, before, after)?;
    Ok("catatan gangguan disimpan / incident note saved".into())
}
