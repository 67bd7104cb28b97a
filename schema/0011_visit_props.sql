-- Custom properties per action of a visit, so that the rollup can break a day down by a
-- property's value (`event:props:KEY`, docs/reports.md) and the engine can filter visits by one.
-- One element per action of the visit (the same actions, in the same order, as
-- `action_hours`): whether it is a page view, and its events' `prop_keys` / `prop_values`.
-- Columns added in place: visits rolled up before get empty arrays (their events had no
-- properties: migration 0010 added them). Like 0010, one statement, repeated safely.
ALTER TABLE visits ADD COLUMN action_pageview Array(UInt8), ADD COLUMN action_prop_keys Array(Array(String)), ADD COLUMN action_prop_values Array(Array(String));
