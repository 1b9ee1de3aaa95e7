/* wakes the scheduler worker when the calling transaction commits */

CREATE OR REPLACE FUNCTION broadcast._wake_scheduler() RETURNS void
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'be_sql_wake_scheduler';
