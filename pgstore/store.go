package pgstore

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/hubchat/chat"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A Store is a [chat.Store] on PostgreSQL, shared by any number of hubs,
// rooms and processes. It is safe for concurrent use. Create it with
// [Open] or [New].
type Store struct {
	pool *pgxpool.Pool
	own  bool // Close closes pool
}

var _ chat.Store = (*Store)(nil)

// Open connects to the database of connString (a URL such as
// "postgres://user:pw@host:5432/db" or keyword/value pairs; see
// [pgxpool.ParseConfig]), and creates or upgrades the store's tables as
// [New] does. The tables go in the first schema of the search_path, which
// the connection string may set (search_path=chat). Close closes the
// connections.
func Open(ctx context.Context, connString string) (*Store, error) {
	pool, err := pgxpool.New(ctx, connString)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s, err := New(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// New returns a store on pool, which stays the caller's to close, after
// creating the store's tables if they are missing or upgrading them if
// they are older than this package. Several processes may call it at once.
// It fails if the database's encoding is neither UTF8 nor SQL_ASCII, or
// if its tables are newer than this package.
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	var enc string
	if err := pool.QueryRow(ctx, `SHOW server_encoding`).Scan(&enc); err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if enc != "UTF8" && enc != "SQL_ASCII" {
		return nil, fmt.Errorf("pgstore: the database's encoding is %s: usernames need UTF8 (CREATE DATABASE ... ENCODING 'UTF8')", enc)
	}
	if err := migrate(ctx, pool); err != nil {
		return nil, fmt.Errorf("pgstore: creating the tables: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the connections if the store was made by [Open]; a store
// made by [New] leaves its pool open. It waits for the queries in flight.
func (s *Store) Close() {
	if s.own {
		s.pool.Close()
	}
}

// Append stores msgs for room with one statement, in one round trip and
// one transaction: all of them or, with an error, none. Messages the room
// holds already are skipped, as are messages at or below what [Store.Trim]
// removed, so hubs in several processes may append the same messages at
// the same time; PostgreSQL lets the first insert of each id win and the
// others skip it. An ID must be a decimal integer below 2⁶³.
func (s *Store) Append(ctx context.Context, room string, msgs []chat.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	var (
		ids       = make([]int64, len(msgs))
		users     = make([]string, len(msgs))
		bodies    = make([][]byte, len(msgs))
		tos       = make([]string, len(msgs))
		systems   = make([]bool, len(msgs))
		times     = make([]time.Time, len(msgs))
		userKeys  = make([]string, len(msgs))
		toKeys    = make([]string, len(msgs))
		fileIDs   = make([]*string, len(msgs)) // nil: no file
		fileNames = make([]*string, len(msgs))
		fileSizes = make([]*int64, len(msgs))
		fileTypes = make([]*string, len(msgs))
		err       error
		appendErr = func(err error) error { return fmt.Errorf("pgstore: append to room %q: %w", room, err) }
	)
	for i, m := range msgs {
		if ids[i], err = parseID(m.ID); err != nil {
			return appendErr(err)
		}
		users[i], bodies[i], tos[i], systems[i], times[i] = m.Username, []byte(m.Body), m.To, m.System, m.Time
		userKeys[i] = chat.NameKey(m.Username)
		if m.To != "" {
			toKeys[i] = chat.NameKey(m.To)
		}
		if f := m.File; f != nil {
			fileIDs[i], fileNames[i], fileSizes[i], fileTypes[i] = &f.ID, &f.Name, &f.Size, &f.Type
		}
	}
	if _, err := s.pool.Exec(ctx, appendSQL, room, ids, users, bodies, tos, systems, times, userKeys, toKeys,
		fileIDs, fileNames, fileSizes, fileTypes); err != nil {
		return appendErr(err)
	}
	return nil
}

// appendSQL inserts the messages in id order, so that transactions of
// several processes inserting overlapping batches take their locks in
// the same order and cannot deadlock: the later one waits for the earlier
// to commit and skips what it inserted.
const appendSQL = `
INSERT INTO hubchat_messages (room, id, username, body, recipient, system, ts, username_key, recipient_key,
	file_id, file_name, file_size, file_type)
SELECT $1, m.id, m.username, m.body, m.recipient, m.system, m.ts, m.username_key, m.recipient_key,
	m.file_id, m.file_name, m.file_size, m.file_type
FROM unnest($2::bigint[], $3::text[], $4::bytea[], $5::text[], $6::boolean[], $7::timestamptz[], $8::text[], $9::text[],
	$10::text[], $11::text[], $12::bigint[], $13::text[])
	AS m(id, username, body, recipient, system, ts, username_key, recipient_key, file_id, file_name, file_size, file_type)
WHERE m.id > coalesce((SELECT trimmed FROM hubchat_rooms WHERE room = $1), -1)
ORDER BY m.id
ON CONFLICT (room, id) DO NOTHING`

// Latest returns the room's last n public messages, oldest first.
func (s *Store) Latest(ctx context.Context, room string, n int) ([]chat.Message, error) {
	if n <= 0 {
		return nil, nil
	}
	rows, _ := s.pool.Query(ctx, `
		SELECT `+columns+` FROM hubchat_messages
		WHERE room = $1 AND recipient = ''
		ORDER BY id DESC LIMIT $2`, room, n)
	msgs, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("pgstore: latest of room %q: %w", room, err)
	}
	slices.Reverse(msgs)
	return msgs, nil
}

// After returns the first n messages of the room with IDs greater than
// after (from the first if after is "" or "0"), oldest first: the public ones and
// the private ones sent by or to user. It fails with an error wrapping
// [chat.ErrNotRetained] if [Store.Trim] removed messages after after.
func (s *Store) After(ctx context.Context, room, user, after string, n int) ([]chat.Message, error) {
	var bound int64 // IDs start at 1: "" and "0" mean from the first
	if after != "" {
		id, err := strconv.ParseUint(after, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("pgstore: after: invalid message id %q", after)
		}
		if id >= math.MaxInt64 { // no stored id is greater
			return nil, nil
		}
		bound = int64(id)
	}
	if n <= 0 {
		return nil, nil
	}
	// The messages first, then how far the room was trimmed, in one round
	// trip: Trim raises the mark in the transaction that deletes, so a
	// deletion that took messages from the first read shows in the second.
	var (
		msgs    []chat.Message
		trimmed *int64
		b       pgx.Batch
	)
	b.Queue(visibleAfterSQL, room, bound, chat.NameKey(user), n).Query(func(rows pgx.Rows) (err error) {
		msgs, err = pgx.CollectRows(rows, scanMessage)
		return err
	})
	b.Queue(`SELECT trimmed FROM hubchat_rooms WHERE room = $1`, room).Query(func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, []any{&trimmed}, func() error { return nil })
		return err
	})
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("pgstore: messages of room %q after %q: %w", room, after, err)
	}
	if trimmed != nil && *trimmed > bound {
		return nil, fmt.Errorf("pgstore: messages of room %q after %q: up to %d removed: %w", room, after, *trimmed, chat.ErrNotRetained)
	}
	return msgs, nil
}

// Before returns the last n messages of the room with IDs less than
// before (the last of all if before is ""), oldest first: the public ones
// and the private ones sent by or to user.
func (s *Store) Before(ctx context.Context, room, user, before string, n int) ([]chat.Message, error) {
	bound := int64(math.MaxInt64)
	if before != "" {
		id, err := strconv.ParseUint(before, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("pgstore: before: invalid message id %q", before)
		}
		if id == 0 { // no stored id is less
			return nil, nil
		}
		bound = int64(min(id-1, math.MaxInt64))
	}
	if n <= 0 {
		return nil, nil
	}
	rows, _ := s.pool.Query(ctx, visibleBeforeSQL, room, bound, chat.NameKey(user), n)
	msgs, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("pgstore: messages of room %q before %q: %w", room, before, err)
	}
	slices.Reverse(msgs)
	return msgs, nil
}

// visibleSQL selects the first $4 messages of room $1, in id order dir,
// whose ids compare with $2 as cmp and that name key $3 may read: the
// public ones, and the private ones from or to $3. Each of the three kinds
// is read from its own index.
func visibleSQL(cmp, dir string) string {
	kind := func(where string) string {
		return `(SELECT ` + columns + ` FROM hubchat_messages
			WHERE room = $1 AND id ` + cmp + ` $2 AND ` + where + `
			ORDER BY id ` + dir + ` LIMIT $4)`
	}
	return `SELECT * FROM (` +
		kind(`recipient = ''`) + ` UNION ALL ` +
		kind(`recipient <> '' AND username_key = $3`) + ` UNION ALL ` +
		kind(`recipient <> '' AND recipient_key = $3 AND username_key <> $3`) +
		`) v ORDER BY id ` + dir + ` LIMIT $4`
}

var (
	visibleAfterSQL  = visibleSQL(">", "ASC")
	visibleBeforeSQL = visibleSQL("<=", "DESC")
)

// LastID returns the greatest ID the room holds, or held before
// [Store.Trim] removed it, or "" if it never held any.
func (s *Store) LastID(ctx context.Context, room string) (string, error) {
	var id *int64
	err := s.pool.QueryRow(ctx, `SELECT greatest(
		(SELECT max(id) FROM hubchat_messages WHERE room = $1),
		(SELECT trimmed FROM hubchat_rooms WHERE room = $1))`, room).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("pgstore: last id of room %q: %w", room, err)
	}
	if id == nil {
		return "", nil
	}
	return strconv.FormatInt(*id, 10), nil
}

// Trim deletes old messages: in every room, the message with the greatest
// ID among those whose Time is before t, and all messages with lower IDs
// (IDs and times agree but for clock skew between processes). It returns
// how many it deleted. Each room remembers how far it was trimmed: After
// from an earlier ID then fails with [chat.ErrNotRetained], and Append
// skips messages up to there, so a late process cannot bring them back.
// Run it periodically to bound the table, e.g. once an hour with t a
// month ago.
func (s *Store) Trim(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `
		WITH cut AS (
			SELECT room, max(id) AS id FROM hubchat_messages WHERE ts < $1 GROUP BY room
		), mark AS (
			INSERT INTO hubchat_rooms (room, trimmed) SELECT room, id FROM cut
			ON CONFLICT (room) DO UPDATE SET trimmed = greatest(hubchat_rooms.trimmed, excluded.trimmed)
		), gone AS (
			DELETE FROM hubchat_messages m USING cut WHERE m.room = cut.room AND m.id <= cut.id
			RETURNING 1
		)
		SELECT count(*) FROM gone`, t).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("pgstore: trim: %w", err)
	}
	return n, nil
}

// columns are those of a [chat.Message], in the order scanMessage reads
// them.
const columns = `id, username, body, recipient, system, ts, file_id, file_name, file_size, file_type`

// scanMessage scans the columns.
func scanMessage(row pgx.CollectableRow) (chat.Message, error) {
	var (
		m                 chat.Message
		id                int64
		body              []byte
		fileID, name, typ *string
		size              *int64
	)
	if err := row.Scan(&id, &m.Username, &body, &m.To, &m.System, &m.Time, &fileID, &name, &size, &typ); err != nil {
		return chat.Message{}, err
	}
	m.ID, m.Body = strconv.FormatInt(id, 10), string(body)
	if fileID != nil && name != nil && size != nil && typ != nil {
		m.File = &chat.File{ID: *fileID, Name: *name, Size: *size, Type: *typ}
	}
	return m, nil
}

// parseID parses a message ID as the bigint it is stored as.
func parseID(s string) (int64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id > math.MaxInt64 {
		return 0, fmt.Errorf("invalid message id %q: want a decimal integer below 2⁶³", s)
	}
	return int64(id), nil
}
