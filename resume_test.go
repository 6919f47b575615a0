package chat_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/storetest"
)

func resumed(ok bool, msgs ...frame) frame {
	f := history(msgs...)
	f.Resume = &ok
	return f
}

func private(from, to, body string) frame {
	return frame{Type: "message", Username: from, To: to, Body: body}
}

// rejoin connects as name, resuming after since, and returns the
// connection and its history frame, after its join and users frames.
func (s *testServer) rejoin(t testing.TB, name, since string) (*conn, frame) {
	t.Helper()
	c := s.dial(t, "username="+url.QueryEscape(name)+"&since="+url.QueryEscape(since))
	if got := c.next(); got.Type != "join" || got.Username != name {
		t.Fatalf("%s: first frame = %+v, want its join", name, got)
	}
	if got := c.next(); got.Type != "users" {
		t.Fatalf("%s: second frame = %+v, want users", name, got)
	}
	return c, c.next()
}

// gone closes c, a member named name, and waits until the hub has let
// the name go.
func (s *testServer) gone(t testing.TB, c *conn, name string) {
	t.Helper()
	c.ws.Close()
	deadline := time.Now().Add(ioTimeout)
	for {
		found := false
		for _, u := range s.hub.Users() {
			found = found || u == name
		}
		if !found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still a member", name)
		}
		time.Sleep(time.Millisecond) // polling, with a deadline
	}
}

// nextMessage returns c's next message frame, skipping joins and leaves.
func (c *conn) nextMessage() frame {
	c.t.Helper()
	for {
		if f := c.next(); f.Type == "message" {
			return f
		}
	}
}

func messageIDs(fs []frame) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

// stores runs test with each kind of hub memory: none, and a Store.
func stores(t *testing.T, test func(t *testing.T, st chat.Store)) {
	t.Run("memory", func(t *testing.T) { t.Parallel(); test(t, nil) })
	t.Run("store", func(t *testing.T) { t.Parallel(); test(t, storetest.NewMemory()) })
}

// TestResumeLive: a client that reconnects while others keep posting gets
// exactly what it missed, then the live stream: no gap, no duplicate.
func TestResumeLive(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, st chat.Store) {
		s := startServer(t, chat.Options{Store: st, RateLimit: -1})
		alice := s.joinAs(t, "alice")
		carol := s.joinAs(t, "carol")
		alice.next()
		const n = 300
		posted := make(chan error, 1)
		go func() {
			for i := range n {
				if err := s.hub.Post(context.Background(), fmt.Sprint("m", i)); err != nil {
					posted <- err
					return
				}
			}
			posted <- nil
		}()

		var got []frame
		for range 50 {
			got = append(got, carol.nextMessage())
		}
		s.gone(t, carol, "carol")
		carol, hist := s.rejoin(t, "carol", got[len(got)-1].ID)
		if hist.Type != "history" || hist.Resume == nil || !*hist.Resume {
			t.Fatalf("history frame %+v, want one with resume:true", hist)
		}
		got = append(got, *hist.Messages...)
		for len(got) < n {
			got = append(got, carol.nextMessage())
		}
		var want []frame
		for range n {
			want = append(want, alice.nextMessage())
		}
		if err := <-posted; err != nil {
			t.Fatal(err)
		}
		diff(t, "carol's messages, across the reconnect", messageIDs(want), messageIDs(got))
	})
}

// TestResumePrivate: the resumed history holds the public messages and the
// client's own private ones, to or from it, and no one else's; from
// memory, from a Store, and from a Store after a restart.
func TestResumePrivate(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, st chat.Store, restart bool) {
		s := startServer(t, chat.Options{Store: st})
		alice := s.joinAs(t, "alice")
		bob := s.joinAs(t, "bob")
		carol := s.joinAs(t, "carol")
		alice.nextN(2)
		bob.next()
		alice.say("p1")
		since := carol.next().ID
		alice.next()
		bob.next()
		alice.send(map[string]string{"type": "message", "body": "a2c", "to": "carol"})
		diff(t, "carol's a2c", private("alice", "carol", "a2c"), carol.next())
		alice.send(map[string]string{"type": "message", "body": "a2b", "to": "bob"})
		bob.next()
		carol.send(map[string]string{"type": "message", "body": "c2b", "to": "bob"})
		diff(t, "carol's c2b", private("carol", "bob", "c2b"), carol.next())
		bob.next()
		bob.say("p2")
		diff(t, "carol's p2", msg("bob", "p2"), carol.next())
		s.gone(t, carol, "carol")
		want := resumed(true, private("alice", "carol", "a2c"), private("carol", "bob", "c2b"), msg("bob", "p2"))
		if restart {
			closeHub(t, s.hub)
			s = startServer(t, chat.Options{Store: st})
		}
		_, hist := s.rejoin(t, "carol", since)
		diff(t, "carol's resumed history", want, hist)
	}
	t.Run("memory", func(t *testing.T) { t.Parallel(); run(t, nil, false) })
	t.Run("store", func(t *testing.T) { t.Parallel(); run(t, storetest.NewMemory(), false) })
	t.Run("store after restart", func(t *testing.T) { t.Parallel(); run(t, storetest.NewMemory(), true) })
}

// TestResumeStoreLag: after a restart the hub's memory does not reach
// back, so a resume reads the Store; the messages accepted since, not yet
// stored, come from memory.
func TestResumeStoreLag(t *testing.T) {
	t.Parallel()
	st := newTestStore()
	s := startServer(t, chat.Options{Store: st})
	alice := s.joinAs(t, "alice")
	var stream []frame
	for i := range 5 {
		alice.say(fmt.Sprint("m", i))
		stream = append(stream, alice.next())
	}
	closeHub(t, s.hub)

	entered, release := st.holdAppends()
	defer release()
	s = startServer(t, chat.Options{Store: st})
	bob := s.joinAs(t, "bob")
	bob.say("n0")
	<-entered // n0 is being stored
	bob.say("n1")
	bob.nextN(2)
	_, hist := s.rejoin(t, "carol", stream[2].ID)
	diff(t, "carol's resumed history",
		resumed(true, msg("alice", "m3"), msg("alice", "m4"), msg("bob", "n0"), msg("bob", "n1")), hist)
	st.mu.Lock()
	afters := st.afters
	st.mu.Unlock()
	if afters != 1 {
		t.Errorf("%d reads of the store, want 1", afters)
	}
}

// TestResumeFallback: when the hub cannot give everything after since, the
// client gets the plain history with resume:false.
func TestResumeFallback(t *testing.T) {
	t.Parallel()
	notRetained := &testStore{Store: storetest.NewMemory(), afterErr: fmt.Errorf("gone: %w", chat.ErrNotRetained)}
	// Each case posts p0..p4 (alice says them), then rejoins carol.
	tests := []struct {
		name  string
		opts  chat.Options
		setup func(t *testing.T, s *testServer, alice, bob *conn)
		since func(ids []string) string
	}{
		{name: "since in the future", since: func(ids []string) string { return fmt.Sprint(mustUint(t, ids[4]) + 10) }},
		{name: "since not a number", since: func([]string) string { return "seventeen" }},
		{name: "too many", opts: chat.Options{ResumeLimit: 3, Store: storetest.NewMemory()}, since: func(ids []string) string { return ids[0] }},
		{name: "resume off", opts: chat.Options{ResumeLimit: -1}, since: func(ids []string) string { return ids[3] }},
		{
			// Private messages between others pushed the last ones
			// carol might have had out of memory.
			name: "memory does not reach",
			opts: chat.Options{ResumeLimit: 3},
			setup: func(t *testing.T, s *testServer, alice, bob *conn) {
				for i := range 4 {
					alice.send(map[string]string{"type": "message", "body": fmt.Sprint("x", i), "to": "bob"})
					alice.next()
					bob.next()
				}
			},
			since: func(ids []string) string { return ids[4] },
		},
		{
			// After a restart, memory does not reach back; the store
			// has let the messages go.
			name: "not retained",
			opts: chat.Options{Store: notRetained},
			setup: func(t *testing.T, s *testServer, alice, bob *conn) {
				closeHub(t, s.hub)
				*s = *startServer(t, chat.Options{Store: notRetained, HistorySize: 2})
			},
			since: func(ids []string) string { return ids[3] },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.opts
			opts.HistorySize = 2
			s := startServer(t, opts)
			alice := s.joinAs(t, "alice")
			bob := s.joinAs(t, "bob")
			alice.next()
			var ids []string
			for i := range 5 {
				alice.say(fmt.Sprint("p", i))
				ids = append(ids, alice.next().ID)
				bob.next()
			}
			if tc.setup != nil {
				tc.setup(t, s, alice, bob)
			}
			_, hist := s.rejoin(t, "carol", tc.since(ids))
			diff(t, "carol's history", resumed(false, msg("alice", "p3"), msg("alice", "p4")), hist)
		})
	}
}

// TestResumeJoinFrame: since may come in the join frame, which a history
// frame with resume follows like any joiner's.
func TestResumeJoinFrame(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	alice := s.joinAs(t, "alice")
	alice.say("one")
	since := alice.next().ID
	alice.say("two")
	alice.next()
	c := s.dial(t, "")
	c.sendRaw(websocket.TextMessage, []byte(`{"type":"join","username":"carol","since":"`+since+`"}`))
	diff(t, "carol's welcome",
		[]frame{join("carol"), users("alice", "carol"), resumed(true, msg("alice", "two"))},
		c.nextN(3))
	alice.say("three")
	diff(t, "then live", msg("alice", "three"), c.next())

	// Resume works with the history off, too.
	s = startServer(t, chat.Options{HistorySize: -1})
	alice = s.dial(t, "username=alice")
	alice.nextN(2)
	alice.say("one")
	since = alice.next().ID
	alice.say("two")
	alice.next()
	_, hist := s.rejoin(t, "carol", since)
	diff(t, "resumed with the history off", resumed(true, msg("alice", "two")), hist)
	_, hist = s.rejoin(t, "dave", "x")
	diff(t, "not resumed with the history off", resumed(false), hist)
}

func (c *conn) page(before string, limit int) frame {
	c.t.Helper()
	req := map[string]any{"type": "history", "before": before}
	if limit != 0 {
		req["limit"] = limit
	}
	c.send(req)
	return c.next()
}

func page(before string, msgs ...frame) frame {
	f := history(msgs...)
	f.Before = before
	return f
}

// TestHistoryPages: a member asks for the messages before an ID and gets
// the public ones and its own private ones, oldest first, from memory or
// from the Store; an empty page at the beginning of the room.
func TestHistoryPages(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, opts chat.Options) {
		s := startServer(t, opts)
		alice := s.joinAs(t, "alice")
		bob := s.joinAs(t, "bob")
		carol := s.joinAs(t, "carol")
		alice.nextN(2)
		bob.next()
		var ids []string
		for i := range 10 {
			alice.say(fmt.Sprint("p", i))
			ids = append(ids, alice.next().ID)
			bob.next()
			carol.next()
			if i == 4 {
				alice.send(map[string]string{"type": "message", "body": "a2b", "to": "bob"})
				alice.next()
				bob.next()
				bob.send(map[string]string{"type": "message", "body": "b2c", "to": "carol"})
				bob.next()
				carol.next()
			}
		}
		p := func(i int) frame { return msg("alice", fmt.Sprint("p", i)) }
		a2b := private("alice", "bob", "a2b")
		last := fmt.Sprint(mustUint(t, ids[9]) + 1000)
		diff(t, "the end", page(ids[9], p(6), p(7), p(8)), alice.page(ids[9], 3))
		diff(t, "beyond the end", page(last, p(7), p(8), p(9)), alice.page(last, 3))
		diff(t, "the middle", page(ids[5], p(3), p(4), a2b), alice.page(ids[5], 3))
		diff(t, "the start", page(ids[1], p(0)), alice.page(ids[1], 5))
		diff(t, "before the start", page(ids[0]), alice.page(ids[0], 5))
		diff(t, "zero", page("0"), alice.page("0", 5))
		diff(t, "default limit", page(last, p(0), p(1), p(2), p(3), p(4), a2b, p(5), p(6), p(7), p(8), p(9)), alice.page(last, 0))
		diff(t, "carol's middle", page(ids[5], p(3), p(4), private("bob", "carol", "b2c")), carol.page(ids[5], 3))

		postN(t, s.hub, 0, 120)
		got := alice.nextN(120)
		end := fmt.Sprint(mustUint(t, got[119].ID) + 1)
		hist := alice.page(end, 500)
		if n := len(*hist.Messages); n != 100 {
			t.Errorf("a page asked for 500: %d messages, want 100", n)
		}
		diff(t, "the capped page", messageIDs(got[20:]), messageIDs(*hist.Messages))
		if n := len(*alice.page(end, 0).Messages); n != 50 {
			t.Errorf("a page of the default size: %d messages, want 50", n)
		}
	}
	t.Run("memory", func(t *testing.T) { t.Parallel(); run(t, chat.Options{}) })
	t.Run("store", func(t *testing.T) {
		t.Parallel()
		// Memory holds 3 messages of each kind: pages come from the store.
		st := newTestStore()
		run(t, chat.Options{Store: st, ResumeLimit: 3, HistorySize: 2})
		st.mu.Lock()
		defer st.mu.Unlock()
		if st.befores == 0 {
			t.Error("the store was never read")
		}
	})
}

// TestHistoryPageStoreLag: a page includes the messages accepted but not
// yet stored, and without a Store reaches as far back as memory does.
func TestHistoryPageStoreLag(t *testing.T) {
	t.Parallel()
	// Memory holds the last 3 public messages.
	st := newTestStore()
	s := startServer(t, chat.Options{Store: st, ResumeLimit: 3, HistorySize: 1})
	alice := s.joinAs(t, "alice")
	for i := range 5 {
		alice.say(fmt.Sprint("m", i))
		alice.next()
	}
	waitStored(t, st, "", 5)
	entered, release := st.holdAppends()
	defer release()
	alice.say("n0")
	alice.next()
	<-entered
	alice.say("n1")
	alice.next()
	alice.say("n2")
	end := fmt.Sprint(mustUint(t, alice.next().ID) + 1)
	diff(t, "page across what is stored and what is not",
		page(end, msg("alice", "m3"), msg("alice", "m4"), msg("alice", "n0"), msg("alice", "n1"), msg("alice", "n2")),
		alice.page(end, 5))

	s = startServer(t, chat.Options{ResumeLimit: 2, HistorySize: 1})
	alice = s.joinAs(t, "alice")
	for i := range 4 {
		alice.say(fmt.Sprint("m", i))
		end = alice.next().ID
	}
	diff(t, "a page from memory only", page(end, msg("alice", "m2")), alice.page(end, 4))
}

// TestHistoryPageErrors: an invalid page request gets an error frame and
// the connection stays open.
func TestHistoryPageErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	alice := s.joinAs(t, "alice")
	for _, tc := range []struct{ req, want string }{
		{`{"type":"history"}`, `history needs "before"`},
		{`{"type":"history","limit":5}`, `history needs "before"`},
		{`{"type":"history","before":"abc"}`, `history needs "before"`},
		{`{"type":"history","before":"-1"}`, `history needs "before"`},
		{`{"type":"history","before":""}`, `history needs "before"`},
		{`{"type":"history","before":{}}`, `history needs "before"`},
		{`{"type":"history","before":"5","limit":-1}`, "invalid limit"},
		{`{"type":"history","before":"5","limit":0}`, "invalid limit"},
		{`{"type":"history","before":"5","limit":1.5}`, "invalid limit"},
		{`{"type":"history","before":"5","limit":"5"}`, "invalid limit"},
		{`{"type":"history","before":"5","limit":1e2}`, "invalid limit"},
	} {
		alice.sendRaw(websocket.TextMessage, []byte(tc.req))
		if got := alice.next(); got.Type != "error" || !strings.Contains(got.Error, tc.want) {
			t.Errorf("%s: got %+v, want an error containing %q", tc.req, got, tc.want)
		}
	}
	alice.say("still here")
	diff(t, "after the errors", msg("alice", "still here"), alice.next())
	// A number for before is taken as well as a string.
	alice.sendRaw(websocket.TextMessage, []byte(`{"type":"history","before":100,"limit":1}`))
	diff(t, "before as a number", page("100", msg("alice", "still here")), alice.next())
}
