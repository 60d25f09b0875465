-- The parties of an activity belong to its latest version: the last party set (in name order)
-- that lists any parties for the activity replaces earlier sets; a version without parties keeps
-- them. A canonical file is one party set. A CRM export's pages split one table across files, so
-- an export folder (`dataverse/activityparty/`, ...) is one set: an activity's parties may sit on
-- two pages of it.
-- The SQL is a macro (macros/staging.sql): the nightly activity tables read it for their scope.
{{ staged_activity_parties() }}
