package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hubchat/chat"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Options configures a [Store]. The zero Options keeps every message
// forever.
type Options struct {
	// MaxMessages caps the messages kept per room, public and private
	// together. When an Append takes a room past it, the room's oldest
	// messages (by ID) are deleted in the same transaction. Zero means no
	// cap.
	MaxMessages int

	// MaxAge is how long messages are kept, measured from Message.Time.
	// Each Append to a room deletes, in the same transaction, the messages
	// at the start of the room (in ID order) that are older than MaxAge; a
	// room nobody appends to keeps its messages. Zero means messages of
	// any age are kept.
	MaxAge time.Duration

	// BusyTimeout is how long a write waits for another process that
	// holds the file's write lock before it fails. Zero means 10 seconds.
	BusyTimeout time.Duration
}

// schemaVersion is the PRAGMA user_version that this package writes and
// reads. Open migrates a file of an earlier version up, one step at a
// time (see migrations), in one transaction.
const schemaVersion = 2

// schema creates version 1; migrations take it on from there. Messages are clustered by (room, id), so that
// reads of a room in ID order are range scans; the partial indexes serve
// the three kinds of rows a user's reads take: public ones, and private
// ones by sender key and by recipient key.
const schema = `
CREATE TABLE rooms (
	id     INTEGER PRIMARY KEY,
	name   TEXT NOT NULL UNIQUE,
	count  INTEGER NOT NULL DEFAULT 0, -- messages held
	pruned INTEGER NOT NULL DEFAULT 0  -- greatest ID deleted by retention, 0 if none
);
CREATE TABLE messages (
	room      INTEGER NOT NULL REFERENCES rooms (id),
	id        INTEGER NOT NULL,
	username  TEXT NOT NULL,
	body      TEXT NOT NULL,
	recipient TEXT NOT NULL, -- Message.To, '' if public
	system    INTEGER NOT NULL,
	ts        INTEGER NOT NULL, -- Message.Time in Unix milliseconds
	from_key  TEXT NOT NULL,    -- chat.NameKey(username)
	to_key    TEXT,             -- chat.NameKey(recipient), NULL if public
	PRIMARY KEY (room, id)
) WITHOUT ROWID;
CREATE INDEX messages_public ON messages (room, id) WHERE to_key IS NULL;
CREATE INDEX messages_from ON messages (room, from_key, id) WHERE to_key IS NOT NULL;
CREATE INDEX messages_to ON messages (room, to_key, id) WHERE to_key IS NOT NULL;
`

// migrations[v-1] takes the schema from version v to v+1.
var migrations = [schemaVersion - 1]string{
	// 2: Message.File, the attachment: NULL for a message without one.
	`ALTER TABLE messages ADD COLUMN file_id TEXT;
	ALTER TABLE messages ADD COLUMN file_name TEXT;
	ALTER TABLE messages ADD COLUMN file_size INTEGER;
	ALTER TABLE messages ADD COLUMN file_type TEXT;`,
}

// columns are those of a [chat.Message], in the order scan reads them.
const columns = `id, username, body, recipient, system, ts, file_id, file_name, file_size, file_type`

// Statements. After and Before take the first (or last) n rows of each of
// the three indexes and merge them, so that a user's read costs O(n)
// whatever the room holds; with no user, the public part alone. They name
// their indexes (INDEXED BY) because the planner, without statistics,
// prefers the primary key and a filter, which would scan the room's whole
// tail to find a user's few private messages.
const (
	sqlLatest = `SELECT ` + columns + ` FROM messages INDEXED BY messages_public
		WHERE room = ?1 AND to_key IS NULL ORDER BY id DESC LIMIT ?2`
	sqlAfterPublic = `SELECT ` + columns + ` FROM messages INDEXED BY messages_public
		WHERE room = ?1 AND to_key IS NULL AND id > ?2 ORDER BY id LIMIT ?4`
	sqlAfter = `SELECT ` + columns + ` FROM (
		SELECT * FROM (` + sqlAfterPublic + `)
		UNION ALL SELECT * FROM (SELECT ` + columns + ` FROM messages INDEXED BY messages_from
			WHERE room = ?1 AND to_key IS NOT NULL AND from_key = ?3 AND id > ?2 ORDER BY id LIMIT ?4)
		UNION ALL SELECT * FROM (SELECT ` + columns + ` FROM messages INDEXED BY messages_to
			WHERE room = ?1 AND to_key = ?3 AND from_key <> ?3 AND id > ?2 ORDER BY id LIMIT ?4)
		) ORDER BY id LIMIT ?4`
	sqlBeforePublic = `SELECT ` + columns + ` FROM messages INDEXED BY messages_public
		WHERE room = ?1 AND to_key IS NULL AND id <= ?2 ORDER BY id DESC LIMIT ?4`
	sqlBefore = `SELECT ` + columns + ` FROM (
		SELECT * FROM (` + sqlBeforePublic + `)
		UNION ALL SELECT * FROM (SELECT ` + columns + ` FROM messages INDEXED BY messages_from
			WHERE room = ?1 AND to_key IS NOT NULL AND from_key = ?3 AND id <= ?2 ORDER BY id DESC LIMIT ?4)
		UNION ALL SELECT * FROM (SELECT ` + columns + ` FROM messages INDEXED BY messages_to
			WHERE room = ?1 AND to_key = ?3 AND from_key <> ?3 AND id <= ?2 ORDER BY id DESC LIMIT ?4)
		) ORDER BY id DESC LIMIT ?4`
	sqlLastID = `SELECT (SELECT max(id) FROM messages WHERE room = ?1), pruned FROM rooms WHERE id = ?1`
	sqlPruned = `SELECT pruned FROM rooms WHERE id = ?1`
	sqlRoom   = `SELECT id FROM rooms WHERE name = ?`
)

// insertRows are the row counts of the prepared INSERT statements: an
// Append of n messages runs n/64 of 64 rows, then up to 7 of 8, then up
// to 7 of 1, since one statement per row costs two to three times as much
// per message.
var insertRows = [...]int{64, 8, 1}

// sqlInsert returns the INSERT statement of rows messages.
func sqlInsert(rows int) string {
	values := strings.Repeat(", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)[2:]
	return `INSERT INTO messages (room, id, username, body, recipient, system, ts, from_key, to_key,
		file_id, file_name, file_size, file_type)
		VALUES ` + values + ` ON CONFLICT (room, id) DO NOTHING`
}

// A Store is a [chat.Store] in one SQLite file, for a hub, or several
// processes on one machine, that should keep their rooms' history across
// restarts. Use [Open]; the zero Store is not usable. It is safe for
// concurrent use: writes are serialized on one connection, each Append in
// one transaction, while reads run concurrently on a pool of connections
// and never wait for a write (WAL mode).
type Store struct {
	opts  Options
	w     *sql.DB // the one writer connection (also the reader for ":memory:")
	r     *sql.DB // the readers, query-only
	stmts struct {
		insert                                                                 [len(insertRows)]*sql.Stmt
		latest, afterPublic, after, beforePublic, before, lastID, pruned, room *sql.Stmt
	}
	prepared []*sql.Stmt // all of stmts, for Close

	mu    sync.Mutex
	rooms map[string]int64 // rooms.id by name; rooms are never deleted
}

var _ chat.Store = (*Store)(nil)

// Open opens the store in the SQLite file at path, creating the file and
// its tables if they do not exist, and migrating them if an earlier
// version of this package wrote them. ctx bounds the opening only.
//
// The path ":memory:" opens a store held in memory for the life of the
// Store, on a single connection: for tests and development.
//
// The file is in WAL mode with synchronous=NORMAL: an Append that returned
// survives a crash of the process; a power failure or an operating system
// crash may lose the last few transactions, never corrupt the file.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.MaxMessages < 0 || opts.MaxAge < 0 || opts.BusyTimeout < 0 {
		return nil, errors.New("sqlitestore: negative Options field")
	}
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	pragmas := url.Values{"_pragma": {
		fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()),
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
	}}
	s := &Store{opts: opts, rooms: make(map[string]int64)}
	var err error
	if path == ":memory:" {
		if s.w, err = sql.Open("sqlite", ":memory:?"+pragmas.Encode()); err != nil {
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
		s.w.SetMaxOpenConns(1)
		s.w.SetConnMaxLifetime(0)
		s.w.SetConnMaxIdleTime(0) // the database lives as long as its connection
		s.r = s.w
	} else {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
		// A file: URI, so that '?' and '#' in the path stay part of it.
		name := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.ToSlash(abs))
		w := pragmas["_pragma"]
		if s.w, err = sql.Open("sqlite", name+"?"+url.Values{"_pragma": w, "_txlock": {"immediate"}}.Encode()); err != nil {
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
		s.w.SetMaxOpenConns(1)
		readers := max(4, runtime.GOMAXPROCS(0))
		r := url.Values{"_pragma": w[:1], "_query_only": {"1"}} // busy_timeout only
		if s.r, err = sql.Open("sqlite", name+"?"+r.Encode()); err != nil {
			s.w.Close()
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
		s.r.SetMaxOpenConns(readers)
		s.r.SetMaxIdleConns(readers)
	}
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// init creates or migrates the schema and prepares the statements.
func (s *Store) init(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlitestore: open: %w", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("sqlitestore: open: %w", err)
	}
	switch {
	case version > schemaVersion:
		return fmt.Errorf("sqlitestore: open: the file has schema version %d, newer than this package's %d", version, schemaVersion)
	case version == 0:
		if _, err := tx.ExecContext(ctx, schema); err != nil {
			return fmt.Errorf("sqlitestore: open: create tables: %w", err)
		}
		version = 1
	}
	for ; version < schemaVersion; version++ {
		if _, err := tx.ExecContext(ctx, migrations[version-1]); err != nil {
			return fmt.Errorf("sqlitestore: open: migrate from schema version %d: %w", version, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return fmt.Errorf("sqlitestore: open: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlitestore: open: %w", err)
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		db   *sql.DB
		sql  string
	}{
		{&s.stmts.insert[0], s.w, sqlInsert(insertRows[0])},
		{&s.stmts.insert[1], s.w, sqlInsert(insertRows[1])},
		{&s.stmts.insert[2], s.w, sqlInsert(insertRows[2])},
		{&s.stmts.latest, s.r, sqlLatest},
		{&s.stmts.afterPublic, s.r, sqlAfterPublic},
		{&s.stmts.after, s.r, sqlAfter},
		{&s.stmts.beforePublic, s.r, sqlBeforePublic},
		{&s.stmts.before, s.r, sqlBefore},
		{&s.stmts.lastID, s.r, sqlLastID},
		{&s.stmts.pruned, s.r, sqlPruned},
		{&s.stmts.room, s.r, sqlRoom},
	} {
		if *p.stmt, err = p.db.PrepareContext(ctx, p.sql); err != nil {
			return fmt.Errorf("sqlitestore: open: prepare: %w", err)
		}
		s.prepared = append(s.prepared, *p.stmt)
	}
	return nil
}

// Close closes the file. Calls after Close fail.
func (s *Store) Close() error {
	var err error
	for _, st := range s.prepared {
		err = errors.Join(err, st.Close())
	}
	err = errors.Join(err, s.r.Close())
	if s.w != s.r {
		err = errors.Join(err, s.w.Close())
	}
	return err
}

// Append implements [chat.Store]: it stores msgs in one transaction,
// skipping those whose ID the room holds already, and applies the
// retention Options. It fails, storing nothing, if an ID is not a decimal
// number from 0 to 9223372036854775807.
func (s *Store) Append(ctx context.Context, room string, msgs []chat.Message) error {
	ids := make([]int64, len(msgs))
	for i, m := range msgs {
		var err error
		if ids[i], err = parseID(m.ID); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlitestore: append: %w", err)
	}
	defer tx.Rollback()
	roomID, cached := s.roomID(room)
	if !cached {
		if err := tx.QueryRowContext(ctx,
			`INSERT INTO rooms (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id`,
			room).Scan(&roomID); err != nil {
			return fmt.Errorf("sqlitestore: append: room: %w", err)
		}
	}
	var added int64
	args := make([]any, 0, 13*insertRows[0])
	for k, rows := range insertRows {
		var insert *sql.Stmt
		for ; len(msgs) >= rows; msgs, ids = msgs[rows:], ids[rows:] {
			if insert == nil {
				insert = tx.StmtContext(ctx, s.stmts.insert[k])
			}
			args = args[:0]
			for i, m := range msgs[:rows] {
				var toKey any
				if m.To != "" {
					toKey = chat.NameKey(m.To)
				}
				args = append(args, roomID, ids[i], m.Username, m.Body, m.To, m.System, m.Time.UnixMilli(), chat.NameKey(m.Username), toKey)
				if f := m.File; f != nil {
					args = append(args, f.ID, f.Name, f.Size, f.Type)
				} else {
					args = append(args, nil, nil, nil, nil)
				}
			}
			res, err := insert.ExecContext(ctx, args...)
			if err != nil {
				return fmt.Errorf("sqlitestore: append: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("sqlitestore: append: %w", err)
			}
			added += n
		}
	}
	var count int64
	if err := tx.QueryRowContext(ctx, `UPDATE rooms SET count = count + ? WHERE id = ? RETURNING count`, added, roomID).Scan(&count); err != nil {
		return fmt.Errorf("sqlitestore: append: %w", err)
	}
	if err := s.prune(ctx, tx, roomID, count); err != nil {
		return fmt.Errorf("sqlitestore: append: retention: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlitestore: append: commit: %w", err)
	}
	if !cached {
		s.mu.Lock()
		s.rooms[room] = roomID
		s.mu.Unlock()
	}
	return nil
}

// prune deletes what the retention Options drop from the room, which holds
// count messages, always a prefix of the room in ID order, and records the
// greatest deleted ID in rooms.pruned.
func (s *Store) prune(ctx context.Context, tx *sql.Tx, roomID, count int64) error {
	var through sql.NullInt64 // delete IDs up to this one
	if s.opts.MaxMessages > 0 && count > int64(s.opts.MaxMessages) {
		err := tx.QueryRowContext(ctx, `SELECT id FROM messages WHERE room = ? ORDER BY id LIMIT 1 OFFSET ?`,
			roomID, count-int64(s.opts.MaxMessages)-1).Scan(&through)
		if err != nil {
			return err
		}
	}
	if s.opts.MaxAge > 0 {
		// Everything before the first message young enough to keep, or
		// everything if none is.
		cutoff := time.Now().Add(-s.opts.MaxAge).UnixMilli()
		var young sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT id FROM messages WHERE room = ? AND ts >= ? ORDER BY id LIMIT 1`,
			roomID, cutoff).Scan(&young)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var old sql.NullInt64
		if young.Valid {
			err = tx.QueryRowContext(ctx, `SELECT max(id) FROM messages WHERE room = ? AND id < ?`, roomID, young.Int64).Scan(&old)
		} else {
			err = tx.QueryRowContext(ctx, `SELECT max(id) FROM messages WHERE room = ?`, roomID).Scan(&old)
		}
		if err != nil {
			return err
		}
		if old.Valid && (!through.Valid || old.Int64 > through.Int64) {
			through = old
		}
	}
	if !through.Valid {
		return nil
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE room = ? AND id <= ?`, roomID, through.Int64)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE rooms SET count = count - ?, pruned = max(pruned, ?) WHERE id = ?`, n, through.Int64, roomID)
	return err
}

// Latest implements [chat.Store].
func (s *Store) Latest(ctx context.Context, room string, n int) ([]chat.Message, error) {
	roomID, ok, err := s.lookup(ctx, room)
	if err != nil || !ok || n <= 0 {
		return nil, err
	}
	ms, err := scan(s.stmts.latest.QueryContext(ctx, roomID, n))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: latest: %w", err)
	}
	slices.Reverse(ms)
	return ms, nil
}

// After implements [chat.Store]. It fails with an error wrapping
// [chat.ErrNotRetained] if the retention Options deleted a message with an
// ID greater than after (with any Options the file was opened with).
func (s *Store) After(ctx context.Context, room, user, after string, n int) ([]chat.Message, error) {
	from := int64(0)
	if after != "" {
		id, err := strconv.ParseUint(after, 10, 64)
		if err != nil || strconv.FormatUint(id, 10) != after {
			return nil, invalidID(after)
		}
		if id >= math.MaxInt64 {
			return nil, ctx.Err() // nothing can follow
		}
		from = int64(id)
	}
	roomID, ok, err := s.lookup(ctx, room)
	if err != nil || !ok {
		return nil, err
	}
	// One read transaction, so that the messages and the retention mark
	// agree.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: after: %w", err)
	}
	defer tx.Rollback()
	var ms []chat.Message
	if n > 0 {
		key := chat.NameKey(user)
		if key == "" {
			ms, err = scan(tx.StmtContext(ctx, s.stmts.afterPublic).QueryContext(ctx, roomID, from, nil, n))
		} else {
			ms, err = scan(tx.StmtContext(ctx, s.stmts.after).QueryContext(ctx, roomID, from, key, n))
		}
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: after: %w", err)
		}
	}
	var pruned int64
	if err := tx.StmtContext(ctx, s.stmts.pruned).QueryRowContext(ctx, roomID).Scan(&pruned); err != nil {
		return nil, fmt.Errorf("sqlitestore: after: %w", err)
	}
	if pruned > from {
		return nil, fmt.Errorf("sqlitestore: room %q after ID %s: messages through %d were deleted: %w", room, after, pruned, chat.ErrNotRetained)
	}
	return ms, nil
}

// Before implements [chat.Store]. Before "" reads back from the end of the
// room.
func (s *Store) Before(ctx context.Context, room, user, before string, n int) ([]chat.Message, error) {
	through := int64(math.MaxInt64)
	if before != "" {
		id, err := strconv.ParseUint(before, 10, 64)
		if err != nil || strconv.FormatUint(id, 10) != before {
			return nil, invalidID(before)
		}
		if id == 0 {
			return nil, ctx.Err() // nothing comes first
		}
		through = int64(min(id-1, math.MaxInt64))
	}
	roomID, ok, err := s.lookup(ctx, room)
	if err != nil || !ok || n <= 0 {
		return nil, err
	}
	var ms []chat.Message
	if key := chat.NameKey(user); key == "" {
		ms, err = scan(s.stmts.beforePublic.QueryContext(ctx, roomID, through, nil, n))
	} else {
		ms, err = scan(s.stmts.before.QueryContext(ctx, roomID, through, key, n))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: before: %w", err)
	}
	slices.Reverse(ms)
	return ms, nil
}

// LastID implements [chat.Store]. It counts messages that the retention
// Options deleted: a room whose messages all aged out still reports the
// last ID it held, so that a hub numbers on from there.
func (s *Store) LastID(ctx context.Context, room string) (string, error) {
	roomID, ok, err := s.lookup(ctx, room)
	if err != nil || !ok {
		return "", err
	}
	var last sql.NullInt64
	var pruned int64
	if err := s.stmts.lastID.QueryRowContext(ctx, roomID).Scan(&last, &pruned); err != nil {
		return "", fmt.Errorf("sqlitestore: last id: %w", err)
	}
	switch {
	case last.Valid:
		return strconv.FormatInt(max(last.Int64, pruned), 10), nil
	case pruned > 0:
		return strconv.FormatInt(pruned, 10), nil
	}
	return "", nil
}

// roomID returns the room's id if it is known to this Store.
func (s *Store) roomID(room string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.rooms[room]
	return id, ok
}

// lookup returns the room's id, and false if the room holds nothing yet.
// It checks ctx, so that every read fails on a cancelled context.
func (s *Store) lookup(ctx context.Context, room string) (int64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	if id, ok := s.roomID(room); ok {
		return id, true, nil
	}
	var id int64
	switch err := s.stmts.room.QueryRowContext(ctx, room).Scan(&id); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("sqlitestore: room: %w", err)
	}
	s.mu.Lock()
	s.rooms[room] = id
	s.mu.Unlock()
	return id, true, nil
}

// scan reads the messages that a query returned.
func scan(rows *sql.Rows, err error) ([]chat.Message, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ms []chat.Message
	for rows.Next() {
		var (
			m          chat.Message
			id, ts     int64
			fid, fname sql.NullString
			fsize      sql.NullInt64
			ftype      sql.NullString
		)
		if err := rows.Scan(&id, &m.Username, &m.Body, &m.To, &m.System, &ts, &fid, &fname, &fsize, &ftype); err != nil {
			return nil, err
		}
		m.ID, m.Time = strconv.FormatInt(id, 10), time.UnixMilli(ts)
		if fid.Valid {
			m.File = &chat.File{ID: fid.String, Name: fname.String, Size: fsize.Int64, Type: ftype.String}
		}
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

// parseID parses a message ID for storage: a decimal number without sign
// or leading zeros that fits SQLite's signed 64-bit integers.
func parseID(s string) (int64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(id, 10) != s || id > math.MaxInt64 {
		return 0, invalidID(s)
	}
	return int64(id), nil
}

func invalidID(s string) error {
	return fmt.Errorf("sqlitestore: invalid message ID %q: want a decimal number from 0 to %d", s, int64(math.MaxInt64))
}
