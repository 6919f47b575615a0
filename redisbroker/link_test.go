package redisbroker

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hubchat/chat"
)

// ids returns the ids of msgs.
func ids(msgs []chat.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func TestOrderAndExactlyOnce(t *testing.T) {
	s := startRedis(t)
	const links, perLink = 3, 40
	var (
		ls []chat.Link
		vs []*view
	)
	for range links {
		l, v := open(t, newBroker(t, s, testOptions(t)), "room")
		ls, vs = append(ls, l), append(vs, v)
	}
	var wg sync.WaitGroup
	for i, l := range ls {
		for w := range 2 { // two publishers per link, concurrently
			wg.Go(func() {
				for n := w; n < perLink; n += 2 {
					m := chat.Message{Username: fmt.Sprintf("u%d", i), Body: fmt.Sprintf("%d-%d", i, n)}
					if err := l.Publish(ctxT(t), m); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Wait()
	for _, v := range vs {
		v.wait(t, "all messages", func(v *view) bool { return len(v.msgs) >= links*perLink })
	}
	_, first, _ := vs[0].state()
	for i, v := range vs {
		_, msgs, _ := v.state()
		if diff := cmp.Diff(ids(first), ids(msgs)); diff != "" {
			t.Errorf("link %d saw other ids (-link 0 +link %d):\n%s", i, i, diff)
		}
		if diff := cmp.Diff(first, msgs); diff != "" {
			t.Errorf("link %d saw other messages:\n%s", i, diff)
		}
	}
	seen := make(map[string]bool)
	var prev int64
	for _, m := range first {
		id, err := strconv.ParseInt(m.ID, 10, 64)
		if err != nil || id <= prev {
			t.Fatalf("id %q after %d: not increasing", m.ID, prev)
		}
		prev = id
		if seen[m.Body] {
			t.Errorf("message %q delivered twice", m.Body)
		}
		seen[m.Body] = true
		if m.Time.IsZero() || time.Since(m.Time) > time.Minute {
			t.Errorf("message %q has time %v", m.Body, m.Time)
		}
	}
	if len(seen) != links*perLink {
		t.Errorf("%d distinct messages, want %d", len(seen), links*perLink)
	}
}

func TestNamesUniqueAcrossLinks(t *testing.T) {
	s := startRedis(t)
	a, va := open(t, newBroker(t, s, testOptions(t)), "room")
	b, _ := open(t, newBroker(t, s, testOptions(t)), "room")
	c, _ := open(t, newBroker(t, s, testOptions(t)), "room")

	if err := a.Join(ctxT(t), "Sam", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		l    chat.Link
		name string
	}{{b, "SAM"}, {c, "ſam"}, {a, "sam"}} {
		if err := tc.l.Join(ctxT(t), tc.name, chat.Profile{}); !errors.Is(err, chat.ErrNameTaken) {
			t.Errorf("Join(%q) = %v, want ErrNameTaken", tc.name, err)
		}
	}
	// Only the holder can release a name.
	if err := b.Leave(ctxT(t), "sam"); err != nil {
		t.Fatal(err)
	}
	if err := c.Join(ctxT(t), "ſam", chat.Profile{}); !errors.Is(err, chat.ErrNameTaken) {
		t.Errorf("Join after foreign Leave = %v, want ErrNameTaken", err)
	}
	if err := a.Leave(ctxT(t), "Sam"); err != nil {
		t.Fatal(err)
	}
	if err := c.Join(ctxT(t), "ſam", chat.Profile{}); err != nil {
		t.Fatalf("Join after Leave: %v", err)
	}
	va.wait(t, "ſam in users", func(v *view) bool { return slices.Equal(v.users, []string{"ſam"}) })

	// Many concurrent claims of one name: exactly one wins.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := range 30 {
		l := []chat.Link{a, b, c}[i%3]
		name := []string{"bob", "BOB", "Bob"}[i%3]
		wg.Go(func() {
			err := l.Join(ctxT(t), name, chat.Profile{})
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, chat.ErrNameTaken):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d concurrent joins of one name succeeded, want 1", wins)
	}
}

func TestSnapshotAndHistory(t *testing.T) {
	s := startRedis(t)
	opts := testOptions(t)
	opts.HistorySize = 5
	a, _ := open(t, newBroker(t, s, opts), "room")
	b, _ := open(t, newBroker(t, s, opts), "room")
	for _, j := range []struct {
		l    chat.Link
		name string
	}{{a, "alice"}, {b, "bob"}, {a, "carol"}, {b, "dave"}} {
		if err := j.l.Join(ctxT(t), j.name, chat.Profile{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Leave(ctxT(t), "alice"); err != nil {
		t.Fatal(err)
	}
	if err := a.Join(ctxT(t), "alice", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 8 {
		body := fmt.Sprint("public ", i)
		if err := b.Publish(ctxT(t), chat.Message{Username: "bob", Body: body}); err != nil {
			t.Fatal(err)
		}
		if i >= 3 {
			want = append(want, body)
		}
		if err := a.Publish(ctxT(t), chat.Message{Username: "alice", Body: "secret", To: "Bob"}); err != nil {
			t.Fatal(err)
		}
	}

	// A third instance arrives: its sync has every member in join order
	// and the last 5 public messages.
	c, vc := open(t, newBroker(t, s, opts), "room")
	vc.mu.Lock()
	users, hist := vc.users, vc.history
	vc.mu.Unlock()
	if diff := cmp.Diff([]string{"bob", "carol", "dave", "alice"}, users); diff != "" {
		t.Errorf("snapshot users (-want +got):\n%s", diff)
	}
	var bodies []string
	for _, m := range hist {
		bodies = append(bodies, m.Body)
	}
	if diff := cmp.Diff(want, bodies); diff != "" {
		t.Errorf("snapshot history (-want +got):\n%s", diff)
	}
	if !slices.IsSortedFunc(hist, func(x, y chat.Message) int {
		a, _ := strconv.Atoi(x.ID)
		b, _ := strconv.Atoi(y.ID)
		return a - b
	}) {
		t.Errorf("history not in id order: %v", ids(hist))
	}
	if err := c.Join(ctxT(t), "erin", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	vc.wait(t, "erin", func(v *view) bool { return slices.Contains(v.users, "erin") })
}

// TestAttachments: a message's file travels to every link, and with the
// history to a link that arrives later.
func TestAttachments(t *testing.T) {
	s := startRedis(t)
	a, _ := open(t, newBroker(t, s, testOptions(t)), "room")
	_, vb := open(t, newBroker(t, s, testOptions(t)), "room")
	if err := a.Join(ctxT(t), "alice", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	file := &chat.File{ID: "Q2ZJ7UXM4V3K5N6P2RSTAB7CDE", Name: `Zoë's "cat" 🐈.png`, Size: 1<<33 + 7, Type: "image/png"}
	if err := a.Publish(ctxT(t), chat.Message{Username: "alice", File: file}); err != nil {
		t.Fatal(err)
	}
	vb.wait(t, "the message", func(v *view) bool { return len(v.msgs) == 1 })
	_, msgs, _ := vb.state()
	if diff := cmp.Diff(file, msgs[0].File); diff != "" || msgs[0].Body != "" {
		t.Errorf("delivered file (-want +got):\n%s", diff)
	}
	_, vc := open(t, newBroker(t, s, testOptions(t)), "room")
	vc.mu.Lock()
	hist := vc.history
	vc.mu.Unlock()
	if len(hist) != 1 || !cmp.Equal(file, hist[0].File) {
		t.Errorf("snapshot history %+v, want the message with its file", hist)
	}
}

func TestPrivateMessages(t *testing.T) {
	s := startRedis(t)
	a, va := open(t, newBroker(t, s, testOptions(t)), "room")
	b, vb := open(t, newBroker(t, s, testOptions(t)), "room")
	if err := a.Join(ctxT(t), "alice", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Join(ctxT(t), "bob", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	m := chat.Message{Username: "alice", Body: "psst", To: "bob"}
	if err := a.Publish(ctxT(t), m); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctxT(t), chat.Message{Username: "alice", Body: "x", To: "nobody"}); !errors.Is(err, chat.ErrNoSuchUser) {
		t.Errorf("private message to nobody: %v, want ErrNoSuchUser", err)
	}
	for _, v := range []*view{va, vb} {
		v.wait(t, "private message", func(v *view) bool { return len(v.msgs) == 1 })
		_, msgs, _ := v.state()
		if diff := cmp.Diff(m, msgs[0], cmpopts.IgnoreFields(chat.Message{}, "ID", "Time")); diff != "" {
			t.Errorf("private message (-want +got):\n%s", diff)
		}
	}
}

func TestCloseReleasesMembers(t *testing.T) {
	s := startRedis(t)
	a, _ := open(t, newBroker(t, s, testOptions(t)), "room")
	b, vb := open(t, newBroker(t, s, testOptions(t)), "room")
	for _, n := range []string{"x", "y"} {
		if err := a.Join(ctxT(t), n, chat.Profile{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Join(ctxT(t), "z", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	vb.wait(t, "three members", func(v *view) bool { return len(v.users) == 3 })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	vb.wait(t, "x and y gone", func(v *view) bool { return slices.Equal(v.users, []string{"z"}) })
	if err := a.Join(ctxT(t), "w", chat.Profile{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Close = %v, want ErrClosed", err)
	}
}

func TestDeadInstanceExpires(t *testing.T) {
	s := startRedis(t)
	opts := testOptions(t)
	dead, _ := open(t, newBroker(t, s, opts), "room")
	live, vl := open(t, newBroker(t, s, opts), "room")
	for _, n := range []string{"ghost1", "ghost2"} {
		if err := dead.Join(ctxT(t), n, chat.Profile{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := live.Join(ctxT(t), "alive", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	vl.wait(t, "three members", func(v *view) bool { return len(v.users) == 3 })

	start := time.Now()
	dead.(*link).die()
	vl.wait(t, "ghosts swept", func(v *view) bool { return slices.Equal(v.users, []string{"alive"}) })
	if d, max := time.Since(start), opts.MemberTTL+2*opts.HeartbeatInterval+time.Second; d > max {
		t.Errorf("sweep took %v, want at most %v", d, max)
	}
	// The live member survives its own heartbeats, and the names are free.
	if err := live.Join(ctxT(t), "GHOST1", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	_, v2 := open(t, newBroker(t, s, opts), "room")
	v2.mu.Lock()
	users := v2.users
	v2.mu.Unlock()
	if diff := cmp.Diff([]string{"alive", "GHOST1"}, users); diff != "" {
		t.Errorf("users after sweep (-want +got):\n%s", diff)
	}
}

func TestRedisRestart(t *testing.T) {
	s := startRedis(t)
	opts := testOptions(t)
	a, va := open(t, newBroker(t, s, opts), "room")
	b, vb := open(t, newBroker(t, s, opts), "room")
	if err := a.Join(ctxT(t), "alice", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Join(ctxT(t), "bob", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := a.Publish(ctxT(t), chat.Message{Username: "alice", Body: fmt.Sprint("before ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []*view{va, vb} {
		v.wait(t, "messages before", func(v *view) bool { return len(v.msgs) == 5 })
	}
	_, before, _ := va.state()
	lastID, _ := strconv.Atoi(before[len(before)-1].ID)

	s.Stop()
	start := time.Now()
	if err := a.Publish(ctxT(t), chat.Message{Username: "alice", Body: "lost"}); err == nil {
		t.Error("Publish during the outage succeeded")
	}
	if err := b.Join(ctxT(t), "carol", chat.Profile{}); err == nil {
		t.Error("Join during the outage succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("calls during the outage took %v", d)
	}
	_, _, syncsA := va.state()
	_, _, syncsB := vb.state()
	s.Start()

	// Both links resynchronize, with both members re-claimed.
	for _, w := range []struct {
		v     *view
		syncs int
	}{{va, syncsA}, {vb, syncsB}} {
		w.v.wait(t, "resync with both members", func(v *view) bool {
			u := slices.Clone(v.users)
			slices.Sort(u)
			return v.syncs > w.syncs && slices.Equal(u, []string{"alice", "bob"})
		})
	}
	// The names are held again, and messages flow with larger ids.
	if err := b.Join(ctxT(t), "ALICE", chat.Profile{}); !errors.Is(err, chat.ErrNameTaken) {
		t.Errorf("Join(ALICE) after restart = %v, want ErrNameTaken", err)
	}
	if err := b.Publish(ctxT(t), chat.Message{Username: "bob", Body: "after"}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []*view{va, vb} {
		v.wait(t, "message after", func(v *view) bool {
			return len(v.msgs) > 0 && v.msgs[len(v.msgs)-1].Body == "after"
		})
	}
	_, after, _ := vb.state()
	if id, _ := strconv.Atoi(after[len(after)-1].ID); id <= lastID {
		t.Errorf("id after restart %d, want > %d", id, lastID)
	}
}

// expire ends the heartbeat of l and has a sweeper run, atomically, as if
// l had been unreachable for longer than MemberTTL; then, if also is not
// empty, another instance claims that name.
func expire(t testing.TB, s *redisServer, l chat.Link, also string) {
	t.Helper()
	ln := l.(*link)
	ctx := ctxT(t)
	pipe := s.Client().TxPipeline()
	pipe.Del(ctx, ln.base+"hb:"+ln.inst)
	heartbeatScript.Eval(ctx, pipe, ln.keys, ln.base, ln.channel, "sweeper", 60000)
	if also != "" {
		joinScript.Eval(ctx, pipe, ln.keys, ln.base, ln.channel, "other", 60000, chat.NameKey(also), also, "")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSweptWhileAliveReclaims(t *testing.T) {
	s := startRedis(t)
	a, va := open(t, newBroker(t, s, testOptions(t)), "room")
	_, vb := open(t, newBroker(t, s, testOptions(t)), "room")
	if err := a.Join(ctxT(t), "x", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	vb.wait(t, "x", func(v *view) bool { return slices.Equal(v.users, []string{"x"}) })
	_, _, syncs := va.state()

	expire(t, s, a, "")
	// b sees x leave and come back; a re-claims x without its hub
	// hearing of it.
	vb.wait(t, "x back", func(v *view) bool {
		n := len(v.events)
		return n >= 2 && v.events[n-2].Kind == chat.EventLeave && v.events[n-1].Kind == chat.EventJoin
	})
	if err := a.Publish(ctxT(t), chat.Message{Username: "x", Body: "still here"}); err != nil {
		t.Fatal(err)
	}
	va.wait(t, "message", func(v *view) bool { return len(v.msgs) == 1 })
	users, _, syncs2 := va.state()
	if diff := cmp.Diff([]string{"x"}, users); diff != "" {
		t.Errorf("a's users (-want +got):\n%s", diff)
	}
	if syncs2 != syncs {
		t.Errorf("a delivered %d syncs, want none", syncs2-syncs)
	}
	va.mu.Lock()
	defer va.mu.Unlock()
	for _, e := range va.events {
		if e.Kind == chat.EventLeave {
			t.Errorf("a delivered %+v", e)
		}
	}
}

// publishUnseen publishes a message that no subscriber receives, as if
// pub/sub had dropped it: it takes its id and enters the log and history.
func publishUnseen(t *testing.T, s *redisServer, l chat.Link, body string) {
	t.Helper()
	ln := l.(*link)
	payload := fmt.Sprintf(`{"u":"ghost","b":%q}`, body)
	err := publishScript.Run(ctxT(t), s.Client(), ln.keys, ln.base, "elsewhere", 100, "", payload, "").Err()
	if err != nil {
		t.Fatal(err)
	}
}

func bodies(msgs []chat.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Body)
	}
	return out
}

// A lost pub/sub message is recovered from the log, in order, without an
// EventSync.
func TestGapCatchUp(t *testing.T) {
	s := startRedis(t)
	a, va := open(t, newBroker(t, s, testOptions(t)), "room")
	publishUnseen(t, s, a, "lost 1")
	publishUnseen(t, s, a, "lost 2")
	if err := a.Publish(ctxT(t), chat.Message{Username: "a", Body: "seen"}); err != nil {
		t.Fatal(err)
	}
	va.wait(t, "three messages", func(v *view) bool { return len(v.msgs) == 3 })
	_, msgs, syncs := va.state()
	if diff := cmp.Diff([]string{"lost 1", "lost 2", "seen"}, bodies(msgs)); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if syncs != 1 {
		t.Errorf("%d syncs, want 1", syncs)
	}
}

// A broken subscription reconnects and catches up on what it missed,
// without an EventSync.
func TestSubscriptionBlip(t *testing.T) {
	s := startRedis(t)
	a, va := open(t, newBroker(t, s, testOptions(t)), "room")
	b, vb := open(t, newBroker(t, s, testOptions(t)), "room")
	if err := b.Join(ctxT(t), "bob", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	va.wait(t, "bob", func(v *view) bool { return len(v.users) == 1 })
	if err := s.Client().ClientKillByFilter(ctxT(t), "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	publishUnseen(t, s, a, "during")
	eventually(t, "both links reconnected", func() bool {
		return a.(*link).ready.Load() && b.(*link).ready.Load()
	})
	if err := a.Publish(ctxT(t), chat.Message{Username: "a", Body: "after"}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []*view{va, vb} {
		v.wait(t, "two messages", func(v *view) bool { return len(v.msgs) == 2 })
		users, msgs, syncs := v.state()
		if diff := cmp.Diff([]string{"during", "after"}, bodies(msgs)); diff != "" {
			t.Errorf("messages (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"bob"}, users); diff != "" {
			t.Errorf("users (-want +got):\n%s", diff)
		}
		if syncs != 1 {
			t.Errorf("%d syncs, want 1", syncs)
		}
	}
}

func TestNameLostDuringOutage(t *testing.T) {
	s := startRedis(t)
	a, va := open(t, newBroker(t, s, testOptions(t)), "room")
	if err := a.Join(ctxT(t), "x", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	va.wait(t, "x", func(v *view) bool { return len(v.users) == 1 })
	va.mu.Lock()
	n := len(va.events)
	va.mu.Unlock()

	expire(t, s, a, "X") // swept, and the name taken elsewhere
	// a delivers the room without x, so that its hub drops its member,
	// then the room with the other instance's X.
	va.wait(t, "two syncs", func(v *view) bool { return len(v.events) >= n+2 })
	va.mu.Lock()
	got := slices.Clone(va.events[n : n+2])
	va.mu.Unlock()
	want := []chat.Event{
		{Kind: chat.EventSync, Sync: &chat.Snapshot{Users: []string{}, History: []chat.Message{}}},
		{Kind: chat.EventSync, Sync: &chat.Snapshot{Users: []string{"X"}, History: []chat.Message{}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// The link no longer holds the name: leaving it is harmless.
	if err := a.Leave(ctxT(t), "x"); err != nil {
		t.Fatal(err)
	}
	if err := a.Join(ctxT(t), "x", chat.Profile{}); !errors.Is(err, chat.ErrNameTaken) {
		t.Errorf("Join(x) = %v, want ErrNameTaken", err)
	}
}

// TestProfiles: a member's public profile travels with its join, is in
// the state a new link syncs from, survives Redis losing the room (the
// link re-claims the member with it), and goes with the member.
func TestProfiles(t *testing.T) {
	s := startRedis(t)
	opts := testOptions(t)
	a, _ := open(t, newBroker(t, s, opts), "room")
	_, vb := open(t, newBroker(t, s, opts), "room")
	alice := chat.Profile{Display: `Alice "<A>"`, Avatar: "https://img.example/a.png"}
	bob := chat.Profile{Display: "Bob"}
	if err := a.Join(ctxT(t), "alice", alice); err != nil {
		t.Fatal(err)
	}
	if err := a.Join(ctxT(t), "bob", bob); err != nil {
		t.Fatal(err)
	}
	if err := a.Join(ctxT(t), "carol", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]chat.Profile{"alice": alice, "bob": bob}
	vb.wait(t, "the joins", func(v *view) bool { return len(v.users) == 3 })
	profiles := func(v *view) map[string]chat.Profile {
		v.mu.Lock()
		defer v.mu.Unlock()
		return maps.Clone(v.profs)
	}
	if diff := cmp.Diff(want, profiles(vb)); diff != "" {
		t.Errorf("profiles from the joins (-want +got):\n%s", diff)
	}
	_, vc := open(t, newBroker(t, s, opts), "room")
	if diff := cmp.Diff(want, profiles(vc)); diff != "" {
		t.Errorf("profiles from the first sync (-want +got):\n%s", diff)
	}

	// Redis loses everything; the link re-claims its members, profiles
	// included.
	s.Stop()
	s.Start()
	_, vd := open(t, newBroker(t, s, opts), "room")
	vd.wait(t, "the members re-claimed", func(v *view) bool { return len(v.users) == 3 })
	_, ve := open(t, newBroker(t, s, opts), "room")
	if diff := cmp.Diff(want, profiles(ve)); diff != "" {
		t.Errorf("profiles after Redis lost the room (-want +got):\n%s", diff)
	}

	if err := a.Leave(ctxT(t), "alice"); err != nil {
		t.Fatal(err)
	}
	vb.wait(t, "alice's leave", func(v *view) bool { return len(v.users) == 2 })
	_, vf := open(t, newBroker(t, s, opts), "room")
	if diff := cmp.Diff(map[string]chat.Profile{"bob": bob}, profiles(vf)); diff != "" {
		t.Errorf("profiles after alice left (-want +got):\n%s", diff)
	}
}
