-- The SQL is a macro (macros/staging.sql): the nightly activity tables read it for their scope.
{{ staged_activities() }}
