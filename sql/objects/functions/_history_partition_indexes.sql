/*
 * Gives one partition of message_history its primary key and indexes.  The
 * partitioned root has none of its own: an extension member's partitioned
 * index would make pg_restore of every partition created at run time fail
 * (the partition's dumped PRIMARY KEY and indexes collide with those that
 * ATTACH PARTITION creates from the root's).  Since message_id is the
 * partition key, a primary key per partition is unique over the table.
 *
 * Every index here is paid for on every message sent (issue 13), so there
 * are two.  A broadcast's statistics read the primary key between its
 * first and last message ids (broadcasts.first_message_id), not an index
 * of broadcast and template.
 */

CREATE OR REPLACE FUNCTION broadcast._history_partition_indexes(part text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
	IF part !~ '^message_history_(default|p[0-9]{6})$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('%s is not a partition name of message_history', quote_literal(part));
	END IF;
	EXECUTE format('ALTER TABLE broadcast.%I ADD CONSTRAINT %I PRIMARY KEY (workspace_id, message_id)',
				   part, part || '_pkey');
	/*
	 * segments, erasure, and delivery events that carry only the provider's
	 * id: they always name the recipient too, and one contact's history is
	 * small, so no index of provider ids is paid for on every sent message
	 */
	EXECUTE format('CREATE INDEX %I ON broadcast.%I (workspace_id, email)', part || '_contact_idx', part);
END
$$;

REVOKE ALL ON FUNCTION broadcast._history_partition_indexes(part text) FROM PUBLIC;
