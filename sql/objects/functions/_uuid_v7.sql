/* time-ordered message ids: history inserts land at the index's right edge (src/uuid7.c) */

CREATE OR REPLACE FUNCTION broadcast._uuid_v7() RETURNS uuid
    LANGUAGE c PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'be_uuid_v7';
