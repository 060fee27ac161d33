//! `Box<dyn Storage>` is a [`Storage`] too: one catalogue and mount type for every backend,
//! chosen when the store is opened.

use super::{
    Iden, IntLift, NodesVisitor, PropQuery, Result, Row, RowRead, RowVisitor, RowWrite, Storage,
    Transaction, Valu,
};

impl<S: Storage + ?Sized> RowRead for Box<S> {
    fn rows_by_id(&self, iden: &Iden) -> Result<Vec<Row>> {
        (**self).rows_by_id(iden)
    }
    fn visit_rows_by_id(&self, iden: &Iden, visit: &mut RowVisitor<'_>) -> Result<()> {
        (**self).visit_rows_by_id(iden, visit)
    }
    fn visit_rows_by_idens(&self, idens: &[Iden], visit: &mut NodesVisitor<'_>) -> Result<()> {
        (**self).visit_rows_by_idens(idens, visit)
    }
    fn rows_by_idens(&self, idens: &[Iden]) -> Result<Vec<Row>> {
        (**self).rows_by_idens(idens)
    }
    fn rows_by_id_prop(&self, iden: &Iden, prop: &str, valu: Option<&Valu>) -> Result<Vec<Row>> {
        (**self).rows_by_id_prop(iden, prop, valu)
    }
    fn rows_by_prop(&self, q: &PropQuery<'_>) -> Result<Vec<Row>> {
        (**self).rows_by_prop(q)
    }
    fn visit_rows_by_prop(
        &self,
        q: &PropQuery<'_>,
        visit: &mut super::RowsVisitor<'_>,
    ) -> Result<()> {
        (**self).visit_rows_by_prop(q, visit)
    }
    fn size_by_prop(&self, q: &PropQuery<'_>) -> Result<usize> {
        (**self).size_by_prop(q)
    }
    fn join_by_prop(&self, q: &PropQuery<'_>) -> Result<Vec<Row>> {
        (**self).join_by_prop(q)
    }
    fn rows_by_int(&self, prop: &str, lift: IntLift, limit: Option<usize>) -> Result<Vec<Row>> {
        (**self).rows_by_int(prop, lift, limit)
    }
    fn size_by_int(&self, prop: &str, lift: IntLift, limit: Option<usize>) -> Result<usize> {
        (**self).size_by_int(prop, lift, limit)
    }
    fn joins_by_int(&self, prop: &str, lift: IntLift, limit: Option<usize>) -> Result<Vec<Row>> {
        (**self).joins_by_int(prop, lift, limit)
    }
    fn joins_by_in(&self, prop: &str, valus: &[Valu], limit: Option<usize>) -> Result<Vec<Row>> {
        (**self).joins_by_in(prop, valus, limit)
    }
    fn blob_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        (**self).blob_get(key)
    }
    fn blob_has(&self, key: &str) -> Result<bool> {
        (**self).blob_has(key)
    }
    fn visit_blob_keys_with_prefix(
        &self,
        prefix: &str,
        visit: &mut super::KeysVisitor<'_>,
    ) -> Result<()> {
        (**self).visit_blob_keys_with_prefix(prefix, visit)
    }
    fn blob_keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        (**self).blob_keys_with_prefix(prefix)
    }
    fn blobs_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        (**self).blobs_with_prefix(prefix)
    }
    fn props(&self) -> Result<Vec<String>> {
        (**self).props()
    }
}

impl<S: Storage + ?Sized> RowWrite for Box<S> {
    fn add_rows(&self, rows: &[Row]) -> Result<()> {
        (**self).add_rows(rows)
    }
    fn del_rows_by_id(&self, iden: &Iden) -> Result<usize> {
        (**self).del_rows_by_id(iden)
    }
    fn del_rows(&self, rows: &[Row]) -> Result<()> {
        (**self).del_rows(rows)
    }
    fn del_rows_by_prop(&self, q: &PropQuery<'_>) -> Result<usize> {
        (**self).del_rows_by_prop(q)
    }
    fn del_rows_by_id_prop(&self, iden: &Iden, prop: &str, valu: Option<&Valu>) -> Result<usize> {
        (**self).del_rows_by_id_prop(iden, prop, valu)
    }
    fn del_join_by_prop(&self, q: &PropQuery<'_>) -> Result<usize> {
        (**self).del_join_by_prop(q)
    }
    fn set_rows_by_id_prop(&self, iden: &Iden, prop: &str, valu: &Valu) -> Result<()> {
        (**self).set_rows_by_id_prop(iden, prop, valu)
    }
    fn update_property(&self, oldprop: &str, newprop: &str) -> Result<usize> {
        (**self).update_property(oldprop, newprop)
    }
    fn update_property_valu(&self, prop: &str, oldval: &Valu, newval: &Valu) -> Result<usize> {
        (**self).update_property_valu(prop, oldval, newval)
    }
    fn blob_set(&self, key: &str, valu: &[u8]) -> Result<()> {
        (**self).blob_set(key, valu)
    }
    fn blob_del(&self, key: &str) -> Result<Vec<u8>> {
        (**self).blob_del(key)
    }
}

impl<S: Storage + ?Sized> Storage for Box<S> {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>> {
        (**self).begin()
    }
    fn backup_rows(&self, chunk_rows: usize) -> Box<dyn Iterator<Item = Result<Vec<Row>>> + '_> {
        (**self).backup_rows(chunk_rows)
    }
    fn check_indexes(&self) -> Result<Vec<String>> {
        (**self).check_indexes()
    }
    fn sync(&self) -> Result<()> {
        (**self).sync()
    }
    fn blob_set_unlogged(&self, key: &str, valu: &[u8]) -> Result<()> {
        (**self).blob_set_unlogged(key, valu)
    }
    fn persist_blobs(&self) -> Result<()> {
        (**self).persist_blobs()
    }
    fn reclaim_blob_space(&self) -> Result<()> {
        (**self).reclaim_blob_space()
    }
    fn wait_for_change(&self, timeout: std::time::Duration) -> Result<super::ChangesElsewhere> {
        (**self).wait_for_change(timeout)
    }
    fn server_time(&self) -> Result<i64> {
        (**self).server_time()
    }
    fn history_bounds(&self) -> Result<super::HistoryBounds> {
        (**self).history_bounds()
    }
    fn as_of(&self, at: i64) -> Result<Box<dyn Storage>> {
        (**self).as_of(at)
    }
    fn as_of_kept(&self, at: i64) -> Result<Box<dyn Storage>> {
        (**self).as_of_kept(at)
    }
    fn check_readable(&self) -> Result<()> {
        (**self).check_readable()
    }
    fn prune_history(&self, floor: i64, pins: &[i64]) -> Result<super::Pruned> {
        (**self).prune_history(floor, pins)
    }
    fn commits(&self, after: i64, upto: i64) -> Result<Vec<super::Commit>> {
        (**self).commits(after, upto)
    }
    fn row_versions(&self, iden: &Iden) -> Result<Vec<super::RowVersion>> {
        (**self).row_versions(iden)
    }
    fn commit_actors(&self, stamps: &[super::Stamp]) -> Result<Vec<Option<super::Actor>>> {
        (**self).commit_actors(stamps)
    }
    fn visit_past_rows_by_prop(
        &self,
        prop: &str,
        died_after: i64,
        visit: &mut super::RowsVisitor<'_>,
    ) -> Result<()> {
        (**self).visit_past_rows_by_prop(prop, died_after, visit)
    }
    fn raise_history_floor(&self, floor: i64) -> Result<i64> {
        (**self).raise_history_floor(floor)
    }
    fn is_shared(&self) -> bool {
        (**self).is_shared()
    }
}
