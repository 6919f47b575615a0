package chat_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/storetest"
)

// testStore wraps a Store to watch and disturb it: it records every
// Append's IDs, can hold Appends at a gate, fail them, and fail reads.
type testStore struct {
	chat.Store

	mu        sync.Mutex
	appends   [][]string    // the IDs of every successful Append, in call order
	gate      chan struct{} // if set, Append waits until it is closed (or ctx ends)
	entered   chan struct{} // if set, gets a value when an Append reaches the gate
	failN     int           // fail this many more Appends
	failed    int           // Appends failed so far
	afterErr  error         // if set, After fails with it
	lastIDErr error         // if set, LastID fails with it
	latestErr error         // if set, Latest fails with it
	afters    int           // calls of After
	befores   int           // calls of Before
}

func newTestStore() *testStore { return &testStore{Store: storetest.NewMemory()} }

func (s *testStore) Append(ctx context.Context, room string, msgs []chat.Message) error {
	s.mu.Lock()
	gate, entered := s.gate, s.entered
	s.mu.Unlock()
	if gate != nil {
		if entered != nil {
			entered <- struct{}{}
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	if s.failN > 0 {
		s.failN--
		s.failed++
		s.mu.Unlock()
		return errors.New("teststore: disk on fire")
	}
	s.mu.Unlock()
	if err := s.Store.Append(ctx, room, msgs); err != nil {
		return err
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	s.mu.Lock()
	s.appends = append(s.appends, ids)
	s.mu.Unlock()
	return nil
}

func (s *testStore) After(ctx context.Context, room, user, after string, n int) ([]chat.Message, error) {
	s.mu.Lock()
	err := s.afterErr
	s.afters++
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.Store.After(ctx, room, user, after, n)
}

func (s *testStore) Before(ctx context.Context, room, user, before string, n int) ([]chat.Message, error) {
	s.mu.Lock()
	s.befores++
	s.mu.Unlock()
	return s.Store.Before(ctx, room, user, before, n)
}

func (s *testStore) LastID(ctx context.Context, room string) (string, error) {
	s.mu.Lock()
	err := s.lastIDErr
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	return s.Store.LastID(ctx, room)
}

func (s *testStore) Latest(ctx context.Context, room string, n int) ([]chat.Message, error) {
	s.mu.Lock()
	err := s.latestErr
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.Store.Latest(ctx, room, n)
}

// holdAppends makes the following Appends wait until release is called.
func (s *testStore) holdAppends() (entered <-chan struct{}, release func()) {
	gate, ent := make(chan struct{}), make(chan struct{}, 64)
	s.mu.Lock()
	s.gate, s.entered = gate, ent
	s.mu.Unlock()
	return ent, func() {
		s.mu.Lock()
		s.gate, s.entered = nil, nil
		s.mu.Unlock()
		close(gate)
	}
}

func (s *testStore) appendCalls() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.appends)
}

// stored returns the IDs of the room's messages in the store that user
// may see, oldest first.
func stored(t testing.TB, s chat.Store, user string) []string {
	t.Helper()
	msgs, err := s.After(context.Background(), "default", user, "", 1<<20)
	if err != nil {
		t.Fatalf("After: %v", err)
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

// waitStored polls until the store holds n of the room's messages.
func waitStored(t testing.TB, s chat.Store, user string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for {
		ids := stored(t, s, user)
		if len(ids) >= n {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store holds %d messages, want %d", len(ids), n)
		}
		time.Sleep(time.Millisecond) // polling, with a deadline
	}
}

// logRecorder is a slog handler that keeps the text of every record at
// Warn or above and passes everything to the test's log.
type logRecorder struct {
	rec  *records
	next slog.Handler
}

type records struct {
	mu   sync.Mutex
	msgs []string
}

func newLogRecorder(t testing.TB) (*slog.Logger, *records) {
	r := &records{}
	next := slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})
	return slog.New(logRecorder{rec: r, next: next}), r
}

func (l logRecorder) Enabled(ctx context.Context, lvl slog.Level) bool { return lvl >= slog.LevelWarn }

func (l logRecorder) Handle(ctx context.Context, r slog.Record) error {
	l.rec.mu.Lock()
	l.rec.msgs = append(l.rec.msgs, r.Message)
	l.rec.mu.Unlock()
	return l.next.Handle(ctx, r)
}

func (l logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return logRecorder{rec: l.rec, next: l.next.WithAttrs(as)}
}

func (l logRecorder) WithGroup(name string) slog.Handler {
	return logRecorder{rec: l.rec, next: l.next.WithGroup(name)}
}

// count returns how many records contain text.
func (r *records) count(text string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.Contains(m, text) {
			n++
		}
	}
	return n
}

func postN(t testing.TB, h *chat.Hub, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := h.Post(context.Background(), fmt.Sprint("m", i)); err != nil {
			t.Fatalf("Post: %v", err)
		}
	}
}

func mustUint(t testing.TB, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("id %q: %v", s, err)
	}
	return n
}

func shutdown(t testing.TB, h *chat.Hub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// closeHub closes h at once: the messages queued for its store are still
// written.
func closeHub(t testing.TB, h *chat.Hub) {
	t.Helper()
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestStoreRestart: a hub on a Store that holds messages starts with them
// as its history, numbers on from the last ID (private messages
// included), and what its members say is stored, private messages too.
func TestStoreRestart(t *testing.T) {
	t.Parallel()
	st := storetest.NewMemory()
	s := startServer(t, chat.Options{Store: st, HistorySize: 3})
	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	alice.next()
	for _, body := range []string{"one", "two", "three", "four"} {
		alice.say(body)
		alice.next()
		bob.next()
	}
	alice.send(map[string]string{"type": "message", "body": "secret", "to": "bob"})
	secret := alice.next()
	bob.next()
	closeHub(t, s.hub)
	diff(t, "alice's messages in the store", 5, len(stored(t, st, "alice")))
	diff(t, "carol's", 4, len(stored(t, st, "carol")))

	s2 := startServer(t, chat.Options{Store: st, HistorySize: 3})
	var bodies []string
	for _, m := range s2.hub.History() {
		bodies = append(bodies, m.Body)
	}
	diff(t, "history after the restart", []string{"two", "three", "four"}, bodies)
	carol := s2.dial(t, "username=carol")
	diff(t, "carol's welcome",
		[]frame{join("carol"), users("carol"), history(msg("alice", "two"), msg("alice", "three"), msg("alice", "four"))},
		carol.nextN(3))
	carol.say("five")
	five := carol.next()
	if mustUint(t, five.ID) <= mustUint(t, secret.ID) {
		t.Errorf("first id after the restart %s, want more than %s, the last before it", five.ID, secret.ID)
	}
	closeHub(t, s2.hub)
	diff(t, "carol's messages in the store", 5, len(stored(t, st, "carol")))
}

// TestStoreStartErrors: a Store that cannot be read at NewHub is logged,
// the hub serves without history and numbers from the clock, so that IDs
// still do not repeat, and later Appends work.
func TestStoreStartErrors(t *testing.T) {
	t.Parallel()
	st := newTestStore()
	if err := st.Store.Append(context.Background(), "default", []chat.Message{
		{ID: "41", Username: "alice", Body: "old", Time: time.UnixMilli(1)},
	}); err != nil {
		t.Fatal(err)
	}
	st.lastIDErr = errors.New("teststore: no")
	st.latestErr = errors.New("teststore: no")
	log, rec := newLogRecorder(t)
	h := chat.NewHub(chat.Options{Store: st, Logger: log, PingInterval: -1})
	defer shutdown(t, h)
	if n := rec.count("last message id"); n != 1 {
		t.Errorf("%d warnings about the last id, want 1", n)
	}
	if n := rec.count("cannot read the history"); n != 1 {
		t.Errorf("%d warnings about the history, want 1", n)
	}
	if got := h.History(); len(got) != 0 {
		t.Errorf("history %v, want none", got)
	}
	start := uint64(time.Now().Add(-time.Hour).UnixMicro())
	postN(t, h, 0, 1)
	got := waitStored(t, st, "", 2)
	if id := mustUint(t, got[1]); id < start {
		t.Errorf("first id %d: want one from the clock, past %d", id, start)
	}
}

// TestStoreGroupCommit: while the Store is busy, fan-out goes on and the
// messages queue; they are then stored together, in order.
func TestStoreGroupCommit(t *testing.T) {
	t.Parallel()
	st := newTestStore()
	entered, release := st.holdAppends()
	s := startServer(t, chat.Options{Store: st})
	alice := s.joinAs(t, "alice")
	postN(t, s.hub, 0, 1)
	<-entered // the first Append waits at the gate
	postN(t, s.hub, 1, 50)
	got := alice.nextN(50) // fan-out does not wait for the store
	release()
	want := make([]string, 50)
	for i, f := range got {
		want[i] = f.ID
	}
	diff(t, "stored", want, waitStored(t, st, "", 50))
	diff(t, "Append calls", [][]string{want[:1], want[1:]}, st.appendCalls())
}

// TestStoreShutdownFlushes: Shutdown waits for the queued messages to be
// stored; if its context ends first, it reports it and logs the loss.
func TestStoreShutdownFlushes(t *testing.T) {
	t.Parallel()
	t.Run("flushed", func(t *testing.T) {
		t.Parallel()
		st := newTestStore()
		entered, release := st.holdAppends()
		h := chat.NewHub(chat.Options{Store: st, PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
		postN(t, h, 0, 1)
		<-entered
		postN(t, h, 1, 20)
		done := make(chan error)
		go func() { done <- h.Shutdown(context.Background()) }()
		release()
		if err := <-done; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		diff(t, "stored after Shutdown", 20, len(stored(t, st, "")))
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		st := newTestStore()
		entered, release := st.holdAppends()
		defer release()
		log, rec := newLogRecorder(t)
		h := chat.NewHub(chat.Options{Store: st, PingInterval: -1, Logger: log})
		postN(t, h, 0, 5)
		<-entered
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := h.Shutdown(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown = %v, want context.Canceled", err)
		}
		if n := rec.count("before the store had every message"); n != 1 {
			t.Errorf("%d warnings of the loss, want 1", n)
		}
	})
}

// TestStoreAppendErrors: failed Appends are retried and logged; members
// notice nothing and every message is stored in the end.
func TestStoreAppendErrors(t *testing.T) {
	t.Parallel()
	st := newTestStore()
	st.failN = 2
	log, rec := newLogRecorder(t)
	s := startServer(t, chat.Options{Store: st, Logger: log})
	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	alice.next()
	for i := range 10 {
		alice.say(fmt.Sprint("m", i))
	}
	want := make([]string, 10)
	for i, f := range bob.nextN(10) {
		diff(t, "bob's message", msg("alice", fmt.Sprint("m", i)), f)
		want[i] = f.ID
	}
	diff(t, "stored", want, waitStored(t, st, "", 10))
	if n := rec.count("store append failed"); n != 2 {
		t.Errorf("%d warnings of failed appends, want 2", n)
	}
	if n := rec.count("works again"); n != 1 {
		t.Errorf("%d notes of recovery, want 1", n)
	}
}
