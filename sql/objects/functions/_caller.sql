/* the role the call is made as: GetOuterUserId() */

CREATE OR REPLACE FUNCTION broadcast._caller() RETURNS oid
    LANGUAGE c STABLE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'be_caller';

COMMENT ON FUNCTION broadcast._caller() IS 'The role the current call is made as (after SET ROLE), unchanged by SECURITY DEFINER functions';
