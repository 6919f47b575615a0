package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-cmp/cmp"
	"testing"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/sqlitestore"
	"github.com/hubchat/chat/storetest"
)

// open opens a store in a new file that the test removes.
func open(t testing.TB, opts sqlitestore.Options) *sqlitestore.Store {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "chat.db"), opts)
}

func openPath(t testing.TB, path string, opts sqlitestore.Options) *sqlitestore.Store {
	t.Helper()
	st, err := sqlitestore.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

func TestConformance(t *testing.T) {
	t.Run("File", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) chat.Store { return open(t, sqlitestore.Options{}) })
	})
	t.Run("SharedFile", func(t *testing.T) {
		st := open(t, sqlitestore.Options{})
		storetest.Run(t, func(*testing.T) chat.Store { return st })
	})
	t.Run("Memory", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) chat.Store { return openPath(t, ":memory:", sqlitestore.Options{}) })
	})
	t.Run("Retention", func(t *testing.T) { // large enough to keep what the suite writes
		storetest.Run(t, func(t *testing.T) chat.Store {
			return open(t, sqlitestore.Options{MaxMessages: 1000, MaxAge: 100 * 365 * 24 * time.Hour})
		})
	})
}

// msg returns public message id from alice, or private to bob if private.
func msg(id int, private bool) chat.Message {
	m := chat.Message{
		ID:       strconv.Itoa(id),
		Username: "alice",
		Body:     "message " + strconv.Itoa(id),
		Time:     time.UnixMilli(1_763_780_000_000 + int64(id)),
	}
	if private {
		m.To = "bob"
	}
	return m
}

// span returns messages lo to hi, every third one private.
func span(lo, hi int) []chat.Message {
	var ms []chat.Message
	for id := lo; id <= hi; id++ {
		ms = append(ms, msg(id, id%3 == 0))
	}
	return ms
}

func appendOK(t testing.TB, st chat.Store, room string, ms []chat.Message) {
	t.Helper()
	if err := st.Append(context.Background(), room, ms); err != nil {
		t.Fatalf("Append(%s..%s): %v", ms[0].ID, ms[len(ms)-1].ID, err)
	}
}

// all reads every message of room that bob may see.
func all(t testing.TB, st chat.Store, room string) []chat.Message {
	t.Helper()
	ms, err := st.After(context.Background(), room, "bob", "", math.MaxInt)
	if err != nil {
		t.Fatalf("After: %v", err)
	}
	return ms
}

// TestReopen: what one Store appended, the next Store on the file reads.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	st, err := sqlitestore.Open(t.Context(), path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := span(1, 100)
	appendOK(t, st, "lobby", want[:40])
	appendOK(t, st, "lobby", want[40:])
	appendOK(t, st, "other", span(1, 5))
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := st.LastID(t.Context(), "lobby"); err == nil {
		t.Errorf("LastID after Close: no error")
	}

	st = openPath(t, path, sqlitestore.Options{})
	if diff := cmp.Diff(want, all(t, st, "lobby")); diff != "" {
		t.Errorf("after reopening (-want +got):\n%s", diff)
	}
	if id, err := st.LastID(t.Context(), "lobby"); err != nil || id != "100" {
		t.Errorf("LastID = %q, %v; want 100", id, err)
	}
	appendOK(t, st, "lobby", span(101, 110))
	if got := all(t, st, "lobby"); len(got) != 110 {
		t.Errorf("after appending to the reopened file: %d messages, want 110", len(got))
	}
}

// TestPath: paths with characters that mean something in a URI, and a
// directory that does not exist.
func TestPath(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a?b=c.db", "x#y.db", "100%.db", "sp ace.db", "ü.db"} {
		path := filepath.Join(dir, name)
		st := openPath(t, path, sqlitestore.Options{})
		appendOK(t, st, "r", span(1, 1))
		if _, err := os.Stat(path); err != nil {
			t.Errorf("Open(%q) did not create that file: %v", name, err)
		}
	}
	if st, err := sqlitestore.Open(t.Context(), filepath.Join(dir, "missing", "chat.db"), sqlitestore.Options{}); err == nil {
		st.Close()
		t.Errorf("Open in a missing directory: no error")
	}
	if _, err := sqlitestore.Open(t.Context(), filepath.Join(dir, "neg.db"), sqlitestore.Options{MaxMessages: -1}); err == nil {
		t.Errorf("Open with MaxMessages -1: no error")
	}
}

// TestNewerSchema: a file written by a later version is refused, not
// misread.
func TestNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := sqlitestore.Open(t.Context(), path, sqlitestore.Options{})
	if err == nil {
		st.Close()
		t.Fatal("Open of a version 99 file: no error")
	}
	if !strings.Contains(err.Error(), "version 99") {
		t.Errorf("Open of a version 99 file: %v, want it to name the version", err)
	}
}

// schemaV1 is the schema that the first version of the package wrote
// (user_version 1), kept as it was for TestMigrateV1.
const schemaV1 = `
CREATE TABLE rooms (
	id     INTEGER PRIMARY KEY,
	name   TEXT NOT NULL UNIQUE,
	count  INTEGER NOT NULL DEFAULT 0,
	pruned INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE messages (
	room      INTEGER NOT NULL REFERENCES rooms (id),
	id        INTEGER NOT NULL,
	username  TEXT NOT NULL,
	body      TEXT NOT NULL,
	recipient TEXT NOT NULL,
	system    INTEGER NOT NULL,
	ts        INTEGER NOT NULL,
	from_key  TEXT NOT NULL,
	to_key    TEXT,
	PRIMARY KEY (room, id)
) WITHOUT ROWID;
CREATE INDEX messages_public ON messages (room, id) WHERE to_key IS NULL;
CREATE INDEX messages_from ON messages (room, from_key, id) WHERE to_key IS NOT NULL;
CREATE INDEX messages_to ON messages (room, to_key, id) WHERE to_key IS NOT NULL;
INSERT INTO rooms (id, name, count) VALUES (1, 'r', 2);
INSERT INTO messages VALUES (1, 1, 'alice', 'before the upgrade', '', 0, 1763780000000, 'ALICE', NULL);
INSERT INTO messages VALUES (1, 2, 'bob', 'psst', 'alice', 0, 1763780000001, 'BOB', 'ALICE');
PRAGMA user_version = 1;
`

// TestMigrateV1: a file of schema version 1, from before attachments, is
// migrated in place: its messages read back without a file, and messages
// with files are kept from then on.
func TestMigrateV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(schemaV1); err != nil {
		t.Fatal(err)
	}
	db.Close()

	st := openPath(t, path, sqlitestore.Options{})
	old := []chat.Message{
		{ID: "1", Username: "alice", Body: "before the upgrade", Time: time.UnixMilli(1763780000000)},
		{ID: "2", Username: "bob", Body: "psst", To: "alice", Time: time.UnixMilli(1763780000001)},
	}
	with := chat.Message{ID: "3", Username: "alice", Time: time.UnixMilli(1763780000002),
		File: &chat.File{ID: "Q2ZJ7UXM4V3K5N6P2RSTAB7CDE", Name: "cat.png", Size: 42, Type: "image/png"}}
	appendOK(t, st, "r", []chat.Message{with})
	got, err := st.After(t.Context(), "r", "alice", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(append(old, with), got); d != "" {
		t.Errorf("after the migration (-want +got):\n%s", d)
	}
	var version int
	db, err = sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != 2 {
		t.Errorf("user_version = %d (%v), want 2", version, err)
	}
}

// TestConcurrentReaders: readers on their own connections read while one
// goroutine appends; each read sees whole batches (an Append is one
// transaction), in order.
func TestConcurrentReaders(t *testing.T) {
	st := open(t, sqlitestore.Options{})
	const batches, size, readers = 60, 8, 4
	done := make(chan struct{})
	errc := make(chan error, readers)
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			errc <- func() error {
				last := 0
				for {
					select {
					case <-done:
						return nil
					default:
					}
					id, err := st.LastID(t.Context(), "r")
					if err != nil {
						return fmt.Errorf("LastID: %w", err)
					}
					n, _ := strconv.Atoi(id) // "" is 0
					if n%size != 0 || n < last {
						return fmt.Errorf("LastID %d after %d: a torn or lost batch", n, last)
					}
					last = n
					ms, err := st.After(t.Context(), "r", "bob", "", math.MaxInt)
					if err != nil {
						return fmt.Errorf("After: %w", err)
					}
					if len(ms) < n || len(ms)%size != 0 {
						return fmt.Errorf("After returned %d messages, LastID was %d: a torn batch", len(ms), n)
					}
					for i, m := range ms {
						if m.ID != strconv.Itoa(i+1) {
							return fmt.Errorf("After: message %d has ID %s", i, m.ID)
						}
					}
				}
			}()
		})
	}
	for b := range batches {
		appendOK(t, st, "r", span(b*size+1, (b+1)*size))
	}
	close(done)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestMaxMessages: a room keeps its last MaxMessages messages, private
// ones included; After from before them fails with ErrNotRetained, also
// once the file is reopened without the option.
func TestMaxMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	st := openPath(t, path, sqlitestore.Options{MaxMessages: 10})
	for lo := 1; lo <= 25; lo += 5 {
		appendOK(t, st, "r", span(lo, lo+4))
	}
	appendOK(t, st, "small", span(1, 3))
	check := func(st chat.Store) {
		t.Helper()
		ctx := t.Context()
		want := span(16, 25)
		if got, err := st.After(ctx, "r", "bob", "15", 100); err != nil || !cmp.Equal(want, got) {
			t.Errorf("After(15) = %v, %v; want %v", ids(got), err, ids(want))
		}
		for _, after := range []string{"", "0", "1", "14"} {
			if got, err := st.After(ctx, "r", "bob", after, 100); !errors.Is(err, chat.ErrNotRetained) {
				t.Errorf("After(%q) = %v, %v; want ErrNotRetained", after, ids(got), err)
			}
		}
		if got, err := st.Before(ctx, "r", "bob", "", 100); err != nil || !cmp.Equal(want, got) {
			t.Errorf("Before(\"\") = %v, %v; want %v", ids(got), err, ids(want))
		}
		if got, err := st.Latest(ctx, "r", 100); err != nil || len(got) != 7 || got[0].ID != "16" {
			t.Errorf("Latest = %v, %v; want the 7 public ones of 16..25", ids(got), err)
		}
		if id, err := st.LastID(ctx, "r"); err != nil || id != "25" {
			t.Errorf("LastID = %q, %v; want 25", id, err)
		}
		if got, err := st.After(ctx, "small", "bob", "", 100); err != nil || len(got) != 3 {
			t.Errorf("After in a room under the cap = %v, %v; want 3 messages", ids(got), err)
		}
	}
	check(st)
	appendOK(t, st, "r", span(20, 25)) // held already: nothing to drop
	check(st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openPath(t, path, sqlitestore.Options{})
	check(st)
}

// TestMaxAge: each Append drops the room's leading messages older than
// MaxAge; LastID remembers them.
func TestMaxAge(t *testing.T) {
	st := open(t, sqlitestore.Options{MaxAge: time.Hour})
	ctx := t.Context()
	aged := func(ms []chat.Message, age time.Duration) []chat.Message {
		for i := range ms {
			ms[i].Time = time.Now().Add(-age)
		}
		return ms
	}
	// 1..5 old, 6 young, 7 old: only the old prefix goes.
	appendOK(t, st, "r", slices.Concat(aged(span(1, 5), 2*time.Hour), aged(span(6, 6), 0), aged(span(7, 7), 2*time.Hour)))
	got, err := st.After(ctx, "r", "bob", "5", 100)
	if err != nil || !slices.Equal(ids(got), []string{"6", "7"}) {
		t.Errorf("After(5) = %v, %v; want [6 7]", ids(got), err)
	}
	if _, err := st.After(ctx, "r", "bob", "4", 100); !errors.Is(err, chat.ErrNotRetained) {
		t.Errorf("After(4): %v, want ErrNotRetained", err)
	}
	// A room whose every message aged out.
	appendOK(t, st, "old", aged(span(1, 3), 2*time.Hour))
	if id, err := st.LastID(ctx, "old"); err != nil || id != "3" {
		t.Errorf("LastID of an aged-out room = %q, %v; want 3", id, err)
	}
	if got, err := st.After(ctx, "old", "bob", "3", 100); err != nil || len(got) != 0 {
		t.Errorf("After(3) of an aged-out room = %v, %v; want nothing", ids(got), err)
	}
	if _, err := st.After(ctx, "old", "bob", "2", 100); !errors.Is(err, chat.ErrNotRetained) {
		t.Errorf("After(2) of an aged-out room: %v, want ErrNotRetained", err)
	}
	if got, err := st.Latest(ctx, "old", 100); err != nil || len(got) != 0 {
		t.Errorf("Latest of an aged-out room = %v, %v; want nothing", ids(got), err)
	}
	// A late young message below the deleted ones (from a hub sharing a
	// Broker) is kept, and LastID still reports the greatest ID.
	appendOK(t, st, "old", aged(span(2, 2), 0))
	if id, err := st.LastID(ctx, "old"); err != nil || id != "3" {
		t.Errorf("LastID after a late message 2 = %q, %v; want 3", id, err)
	}
}

func ids(ms []chat.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// TestTwoStoresOneFile: two Stores on one file, as two processes would
// have, append the same messages at once; their writes take turns and the
// room holds each message once.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	stores := []*sqlitestore.Store{openPath(t, path, sqlitestore.Options{}), openPath(t, path, sqlitestore.Options{})}
	const batches, size = 40, 5
	errc := make(chan error, len(stores))
	var wg sync.WaitGroup
	for _, st := range stores {
		wg.Go(func() {
			for b := range batches {
				if err := st.Append(t.Context(), "r", span(b*size+1, (b+1)*size)); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("Append: %v", err)
	}
	for i, st := range stores {
		if diff := cmp.Diff(span(1, batches*size), all(t, st, "r")); diff != "" {
			t.Errorf("store %d reads (-want +got):\n%s", i, diff)
		}
	}
}
