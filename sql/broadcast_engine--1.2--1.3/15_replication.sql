/*
 * Logical replication: every table has a primary key, so a publication FOR
 * ALL TABLES (or one that lists the schema's tables) replicates updates and
 * deletes.  pending_events had none: its deletes failed under such a
 * publication, and since the history trigger deletes from it inside the
 * sender's own transaction, a sender's commit failed with them.  Its
 * natural key has nullable columns (message_id or provider_message_id), so
 * it gets a surrogate key; the unique index pending_events_key still
 * collapses replayed events.  The regress suite "backup" lists every table
 * of the schema without a primary key or replica identity: none.
 */
ALTER TABLE broadcast.pending_events
	ADD COLUMN pending_id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE broadcast.pending_events ADD PRIMARY KEY (workspace_id, pending_id);
SELECT pg_catalog.pg_extension_config_dump(
	pg_catalog.pg_get_serial_sequence('broadcast.pending_events', 'pending_id'), '');
