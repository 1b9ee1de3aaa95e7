/* wakes the sender workers when the calling transaction commits */

CREATE OR REPLACE FUNCTION broadcast._wake_senders() RETURNS void
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'be_sql_wake_senders';
