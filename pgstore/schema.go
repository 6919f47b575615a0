package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// schemaVersion is the version of the tables this package uses. Open
// creates them, or upgrades older ones, and records the version in the
// table hubchat_schema.
const schemaVersion = 2

// migrations[i] takes the schema from version i to version i+1.
var migrations = []string{
	// 1: messages, keyed by room and numeric id. Bodies are bytea because
	// a valid UTF-8 body may hold NUL, which text cannot. The partial
	// indexes serve reads: public messages by id, private ones by either
	// end's name key. The BRIN index on ts lets Trim find old messages
	// without a scan of the table and costs appends next to nothing.
	`CREATE TABLE IF NOT EXISTS hubchat_messages (
		room          text        NOT NULL,
		id            bigint      NOT NULL,
		username      text        NOT NULL,
		body          bytea       NOT NULL,
		recipient     text        NOT NULL,
		system        boolean     NOT NULL,
		ts            timestamptz NOT NULL,
		username_key  text        NOT NULL,
		recipient_key text        NOT NULL,
		PRIMARY KEY (room, id)
	);
	CREATE INDEX IF NOT EXISTS hubchat_messages_public
		ON hubchat_messages (room, id) WHERE recipient = '';
	CREATE INDEX IF NOT EXISTS hubchat_messages_sender
		ON hubchat_messages (room, username_key, id) WHERE recipient <> '';
	CREATE INDEX IF NOT EXISTS hubchat_messages_recipient
		ON hubchat_messages (room, recipient_key, id) WHERE recipient <> '';
	CREATE INDEX IF NOT EXISTS hubchat_messages_ts
		ON hubchat_messages USING brin (ts);
	CREATE TABLE IF NOT EXISTS hubchat_rooms (
		room    text   PRIMARY KEY,
		trimmed bigint NOT NULL
	);`,
	// 2: Message.File, the attachment, in four columns, NULL for a
	// message without one. Adding nullable columns without a default
	// changes only the catalog: existing rows are not rewritten.
	`ALTER TABLE hubchat_messages
		ADD COLUMN IF NOT EXISTS file_id   text,
		ADD COLUMN IF NOT EXISTS file_name text,
		ADD COLUMN IF NOT EXISTS file_size bigint,
		ADD COLUMN IF NOT EXISTS file_type text;`,
}

// migrateLock is the key of the advisory lock that serializes Opens of
// several processes while they create or upgrade the tables (concurrent
// CREATE TABLE IF NOT EXISTS of one table can fail).
const migrateLock = 0x6875626368617431 // "hubchat1"

// migrate brings the tables in the connection's search_path up to
// schemaVersion, in one transaction.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS hubchat_schema (version integer NOT NULL)`); err != nil {
			return err
		}
		var version int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM hubchat_schema`).Scan(&version); err != nil {
			return err
		}
		if version > schemaVersion {
			return fmt.Errorf("the database has schema version %d, newer than this package's %d: upgrade github.com/hubchat/chat/pgstore", version, schemaVersion)
		}
		for v := version; v < schemaVersion; v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("schema version %d: %w", v+1, err)
			}
		}
		if version < schemaVersion {
			if _, err := tx.Exec(ctx, `DELETE FROM hubchat_schema`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO hubchat_schema (version) VALUES ($1)`, schemaVersion); err != nil {
				return err
			}
		}
		return nil
	})
}
