//! stub
use super::PgStore;
use crate::store::StoreError;
use crate::store::report::*;
impl ReportStore for PgStore {
    fn read_snapshot(
        &self,
        _f: &mut dyn FnMut(&dyn ReportRead) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        Err(StoreError::NotStored("todo".into()))
    }
}
impl ReportAdmin for PgStore {
    fn add_maintenance(&self, _w: &NewMaintenance) -> Result<(), StoreError> {
        Err(StoreError::NotStored("todo".into()))
    }
    fn set_incident_note(&self, _n: &IncidentNote) -> Result<(), StoreError> {
        Err(StoreError::NotStored("todo".into()))
    }
    fn set_contract(&self, _opd: &str, _mbps: Option<f64>) -> Result<bool, StoreError> {
        Err(StoreError::NotStored("todo".into()))
    }
}
impl RollupStore for PgStore {
    fn current_rules(&self) -> Result<Option<String>, StoreError> {
        Err(StoreError::NotStored("todo".into()))
    }
    fn ensure_rules(&self, _c: &RuleRecord, _p: &RuleRecord) -> Result<bool, StoreError> {
        Err(StoreError::NotStored("todo".into()))
    }
    fn advance_watermarks(&self, _u: i64) -> Result<(), StoreError> {
        Err(StoreError::NotStored("todo".into()))
    }
    fn rebuild_dirty(&self, _l: usize, _b: &dyn RollupBuilder) -> Result<usize, StoreError> {
        Err(StoreError::NotStored("todo".into()))
    }
    fn prune_raw(&self, _b: i64) -> Result<usize, StoreError> {
        Err(StoreError::NotStored("todo".into()))
    }
}
