/* the senders reload what they cached from this table after the transaction commits */

CREATE OR REPLACE FUNCTION broadcast._bump_generation() RETURNS trigger
    LANGUAGE c
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS 'MODULE_PATHNAME', 'be_bump_generation';

REVOKE ALL ON FUNCTION broadcast._bump_generation() FROM PUBLIC;
