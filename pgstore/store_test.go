package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubchat/chat"
	"github.com/hubchat/chat/pgstore"
	"github.com/hubchat/chat/pgstore/internal/pgtest"
	"github.com/hubchat/chat/storetest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open opens a store on a new, empty schema.
func open(t testing.TB) (*pgstore.Store, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	return openDSN(t, dsn), dsn
}

// openDSN opens another store on dsn, as another process would.
func openDSN(t testing.TB, dsn string) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// t0 is the time of message 0; message i is i ms later. PostgreSQL keeps
// times to the microsecond.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)

// msg returns message id from user, to someone if to is set.
func msg(id int, user, to string) chat.Message {
	return chat.Message{
		ID:       strconv.Itoa(id),
		Username: user,
		To:       to,
		Body:     fmt.Sprintf("body %d", id),
		Time:     t0.Add(time.Duration(id) * time.Millisecond),
	}
}

func mustAppend(t testing.TB, s *pgstore.Store, room string, msgs ...chat.Message) {
	t.Helper()
	if err := s.Append(testContext(t), room, msgs); err != nil {
		t.Fatal(err)
	}
}

func ids(msgs []chat.Message) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

// TestConformance runs the chat.Store suite, with a new Store (as a new
// process would open) on one schema for every subtest.
func TestConformance(t *testing.T) {
	dsn := pgtest.DSN(t)
	storetest.Run(t, func(t *testing.T) chat.Store { return openDSN(t, dsn) })
}

// TestReads covers the reads on one room of public and private messages,
// with ids that order differently as numbers than as strings.
func TestReads(t *testing.T) {
	s, _ := open(t)
	ctx := testContext(t)
	all := []chat.Message{
		msg(8, "alice", ""),
		msg(9, "bob", "alice"),   // private bob -> alice
		msg(10, "carol", "dave"), // private, neither alice nor bob
		msg(11, "Alice", "Bob"),  // private alice -> bob, names in other case
		msg(100, "bob", ""),
		msg(101, "ſam", "SAM"), // private to oneself, under case folding
		{ID: "102", Username: "system", Body: "restart at 5", System: true, Time: t0},
	}
	mustAppend(t, s, "lobby", all...)
	mustAppend(t, s, "other", msg(1000, "alice", ""), msg(1001, "bob", "alice"))

	latest, err := s.Latest(ctx, "lobby", 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]chat.Message{all[0], all[4], all[6]}, latest); diff != "" {
		t.Errorf("Latest(10) (-want +got):\n%s", diff)
	}
	latest, err = s.Latest(ctx, "lobby", 2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"100", "102"}, ids(latest)); diff != "" {
		t.Errorf("Latest(2) (-want +got):\n%s", diff)
	}

	tests := []struct {
		read        string // After or Before
		user, bound string
		n           int
		want        []string
	}{
		{"After", "alice", "", 100, []string{"8", "9", "11", "100", "102"}},
		{"After", "ALICE", "8", 3, []string{"9", "11", "100"}},
		{"After", "bob", "9", 100, []string{"11", "100", "102"}},
		{"After", "dave", "0", 100, []string{"8", "10", "100", "102"}},
		{"After", "sam", "", 100, []string{"8", "100", "101", "102"}},
		{"After", "nobody", "", 100, []string{"8", "100", "102"}},
		{"After", "", "", 100, []string{"8", "100", "102"}},
		{"After", "alice", "102", 100, []string{}},
		{"After", "alice", "18446744073709551615", 100, []string{}},
		{"After", "alice", "", 0, []string{}},
		{"Before", "alice", "", 100, []string{"8", "9", "11", "100", "102"}},
		{"Before", "alice", "", 2, []string{"100", "102"}},
		{"Before", "bob", "100", 2, []string{"9", "11"}},
		{"Before", "carol", "101", 100, []string{"8", "10", "100"}},
		{"Before", "alice", "8", 100, []string{}},
		{"Before", "alice", "0", 100, []string{}},
		{"Before", "alice", "18446744073709551615", 1, []string{"102"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s(%s,%s,%d)", tc.read, tc.user, tc.bound, tc.n), func(t *testing.T) {
			read := s.After
			if tc.read == "Before" {
				read = s.Before
			}
			got, err := read(ctx, "lobby", tc.user, tc.bound, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	// Messages come back as they went in.
	got, err := s.After(ctx, "lobby", "bob", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]chat.Message{all[0], all[1], all[3], all[4], all[6]}, got); diff != "" {
		t.Errorf("After for bob (-want +got):\n%s", diff)
	}

	for room, want := range map[string]string{"lobby": "102", "other": "1001", "empty": ""} {
		id, err := s.LastID(ctx, room)
		if err != nil || id != want {
			t.Errorf("LastID(%q) = %q, %v; want %q", room, id, err, want)
		}
	}
}

// TestBodies: any valid UTF-8 body comes back unchanged, NUL included
// (which PostgreSQL's text cannot hold).
func TestBodies(t *testing.T) {
	s, _ := open(t)
	bodies := []string{"a\x00b", "\x00", "héllo wörld 👋", "line\nbreak\ttab", strings.Repeat("x", 64<<10), `'; DROP TABLE hubchat_messages; --`}
	var in []chat.Message
	for i, b := range bodies {
		m := msg(i+1, "alice", "")
		m.Body = b
		in = append(in, m)
	}
	mustAppend(t, s, "r", in...)
	got, err := s.Latest(testContext(t), "r", 100)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestAppendIdempotent: appending messages the room holds already, alone
// or among new ones, or twice in one batch, stores each once and keeps
// the first version.
func TestAppendIdempotent(t *testing.T) {
	s, _ := open(t)
	mustAppend(t, s, "r", msg(1, "a", ""), msg(2, "a", ""), msg(3, "a", ""))
	mustAppend(t, s, "r", msg(1, "a", ""), msg(2, "a", ""), msg(3, "a", ""))
	changed := msg(3, "a", "")
	changed.Body = "rewritten"
	mustAppend(t, s, "r", msg(2, "a", ""), changed, msg(4, "a", ""), msg(4, "a", ""), msg(5, "a", ""))
	mustAppend(t, s, "r", msg(7, "a", ""), msg(6, "a", "")) // out of order
	mustAppend(t, s, "r")                                   // nothing
	got, err := s.Latest(testContext(t), "r", 100)
	if err != nil {
		t.Fatal(err)
	}
	var want []chat.Message
	for i := 1; i <= 7; i++ {
		want = append(want, msg(i, "a", ""))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestAppendBadID: a batch with an id that is no integer, or too large
// for bigint, fails as a whole with a clear error, and nothing of it is
// stored.
func TestAppendBadID(t *testing.T) {
	s, _ := open(t)
	ctx := testContext(t)
	for _, id := range []string{"", "x", "-1", "+1", "1.5", "9223372036854775808"} {
		bad := msg(0, "a", "")
		bad.ID = id
		err := s.Append(ctx, "r", []chat.Message{msg(1, "a", ""), bad})
		if err == nil || !strings.Contains(err.Error(), "invalid message id") {
			t.Errorf("Append with id %q: %v; want an invalid message id error", id, err)
		}
	}
	if id, err := s.LastID(ctx, "r"); err != nil || id != "" {
		t.Errorf("LastID = %q, %v; want nothing stored", id, err)
	}
	mustAppend(t, s, "r", chat.Message{ID: "9223372036854775807", Username: "a", Body: "max", Time: t0})
	if id, err := s.LastID(ctx, "r"); err != nil || id != "9223372036854775807" {
		t.Errorf("LastID = %q, %v; want the largest id", id, err)
	}
	for _, id := range []string{"x", "-1"} {
		if _, err := s.After(ctx, "r", "a", id, 10); err == nil {
			t.Errorf("After(%q) succeeded", id)
		}
		if _, err := s.Before(ctx, "r", "a", id, 10); err == nil {
			t.Errorf("Before(%q) succeeded", id)
		}
	}
}

// TestConcurrentAppends: several processes, each with its own Store on
// the database, append overlapping batches of one room's messages at
// once, as hubs sharing a Broker may; each message is stored exactly once,
// without errors (deadlocks among them).
func TestConcurrentAppends(t *testing.T) {
	const (
		procs    = 4
		messages = 2000
	)
	_, dsn := open(t)
	stores := make([]*pgstore.Store, procs)
	for i := range stores {
		stores[i] = openDSN(t, dsn)
	}
	all := make([]chat.Message, messages)
	for i := range all {
		to := ""
		if i%5 == 0 {
			to = "bob"
		}
		all[i] = msg(2*i+1, fmt.Sprint("user", i%7), to) // odd ids: gaps, as joins make
	}
	ctx := testContext(t)
	errs := make(chan error, procs)
	var wg sync.WaitGroup
	for p, s := range stores {
		wg.Go(func() {
			// Each process appends every message, in batches of its own
			// random sizes, so that batches overlap in every way.
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			for i := 0; i < len(all); {
				j := min(len(all), i+1+rng.IntN(64))
				if err := s.Append(ctx, "lobby", all[i:j]); err != nil {
					errs <- err
					return
				}
				i = j
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := stores[0].After(ctx, "lobby", "bob", "", 2*messages)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(all, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestTrim: Trim deletes old messages of every room; resuming from before
// them fails with ErrNotRetained, LastID still reports the trimmed ids,
// and appending them again does not bring them back.
func TestTrim(t *testing.T) {
	s, _ := open(t)
	ctx := testContext(t)
	for i := 1; i <= 10; i++ {
		mustAppend(t, s, "a", msg(i, "alice", ""))
	}
	mustAppend(t, s, "b", msg(3, "bob", "alice"), msg(20, "bob", ""))
	mustAppend(t, s, "c", msg(1, "carol", ""))
	trimmed, err := s.Trim(ctx, t0.Add(5*time.Millisecond)) // before message 5
	if err != nil {
		t.Fatal(err)
	}
	if trimmed != 4+1+1 {
		t.Errorf("Trim deleted %d messages, want 6", trimmed)
	}
	for _, tc := range []struct {
		room, after string
		want        []string // nil: ErrNotRetained
	}{
		{"a", "", nil},
		{"a", "3", nil},
		{"a", "4", []string{"5", "6", "7", "8", "9", "10"}},
		{"a", "9", []string{"10"}},
		{"b", "2", nil},
		{"b", "3", []string{"20"}},
		{"c", "", nil},
		{"c", "1", []string{}},
		{"d", "", []string{}},
	} {
		got, err := s.After(ctx, tc.room, "alice", tc.after, 100)
		if tc.want == nil {
			if !errors.Is(err, chat.ErrNotRetained) {
				t.Errorf("After(%s, %q) = %v, %v; want ErrNotRetained", tc.room, tc.after, ids(got), err)
			}
			continue
		}
		if err != nil {
			t.Errorf("After(%s, %q): %v", tc.room, tc.after, err)
			continue
		}
		if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
			t.Errorf("After(%s, %q) (-want +got):\n%s", tc.room, tc.after, diff)
		}
	}
	if id, err := s.LastID(ctx, "c"); err != nil || id != "1" {
		t.Errorf("LastID of a trimmed room = %q, %v; want 1", id, err)
	}
	mustAppend(t, s, "a", msg(3, "alice", ""), msg(4, "alice", ""), msg(11, "alice", ""))
	latest, err := s.Latest(ctx, "a", 100)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"5", "6", "7", "8", "9", "10", "11"}, ids(latest)); diff != "" {
		t.Errorf("Latest after appending trimmed ids again (-want +got):\n%s", diff)
	}
	if n, err := s.Trim(ctx, t0); err != nil || n != 0 {
		t.Errorf("Trim of nothing = %d, %v", n, err)
	}
}

// TestOpen: several processes open a new database at once; one creates
// the tables and the others find them. A database with newer tables, an
// unreachable server and a cancelled context are errors.
func TestOpen(t *testing.T) {
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := pgstore.Open(testContext(t), dsn)
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Open: %v", err)
	}

	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var version int
	if err := conn.QueryRow(ctx, `SELECT version FROM hubchat_schema`).Scan(&version); err != nil || version != 2 {
		t.Errorf("schema version %d, %v; want 2", version, err)
	}
	if _, err := conn.Exec(ctx, `UPDATE hubchat_schema SET version = 99`); err != nil {
		t.Fatal(err)
	}
	if s, err := pgstore.Open(ctx, dsn); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema: %v; want an error", err)
		if err == nil {
			s.Close()
		}
	}

	if s, err := pgstore.Open(ctx, "host=127.0.0.1 port=1 user=nobody connect_timeout=5"); err == nil {
		t.Error("Open of an unreachable server succeeded")
		s.Close()
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if s, err := pgstore.Open(cancelled, dsn); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v; want context.Canceled", err)
		if err == nil {
			s.Close()
		}
	}
}

// schemaV1 is the schema that the first version of the package created
// (hubchat_schema version 1), kept as it was for TestMigrateV1, with two
// messages.
const schemaV1 = `
CREATE TABLE hubchat_schema (version integer NOT NULL);
INSERT INTO hubchat_schema VALUES (1);
CREATE TABLE hubchat_messages (
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
CREATE INDEX hubchat_messages_public ON hubchat_messages (room, id) WHERE recipient = '';
CREATE INDEX hubchat_messages_sender ON hubchat_messages (room, username_key, id) WHERE recipient <> '';
CREATE INDEX hubchat_messages_recipient ON hubchat_messages (room, recipient_key, id) WHERE recipient <> '';
CREATE INDEX hubchat_messages_ts ON hubchat_messages USING brin (ts);
CREATE TABLE hubchat_rooms (room text PRIMARY KEY, trimmed bigint NOT NULL);
INSERT INTO hubchat_messages VALUES
	('r', 1, 'alice', 'before the upgrade', '', false, '2026-01-02 03:04:05.124456Z', 'ALICE', ''),
	('r', 2, 'bob', 'psst', 'alice', false, '2026-01-02 03:04:05.125456Z', 'BOB', 'ALICE');
`

// TestMigrateV1: tables of schema version 1, from before attachments, are
// migrated in place when the store opens: the old messages read back
// without a file, and messages with files are kept from then on.
func TestMigrateV1(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, schemaV1); err != nil {
		t.Fatal(err)
	}
	s := openDSN(t, dsn)
	with := msg(3, "alice", "")
	with.Body = ""
	with.File = &chat.File{ID: "Q2ZJ7UXM4V3K5N6P2RSTAB7CDE", Name: "cat.png", Size: 42, Type: "image/png"}
	mustAppend(t, s, "r", with)
	got, err := s.After(ctx, "r", "alice", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	old1, old2 := msg(1, "alice", ""), msg(2, "bob", "alice")
	old1.Body, old2.Body = "before the upgrade", "psst"
	if diff := cmp.Diff([]chat.Message{old1, old2, with}, got); diff != "" {
		t.Errorf("after the migration (-want +got):\n%s", diff)
	}
	var version int
	if err := conn.QueryRow(ctx, `SELECT version FROM hubchat_schema`).Scan(&version); err != nil || version != 2 {
		t.Errorf("schema version %d, %v; want 2", version, err)
	}
}
