package redisbroker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubchat/chat"
	"github.com/hubchat/chat/storetest"
)

// countingStore counts how many times each message ID is appended.
type countingStore struct {
	chat.Store
	mu    sync.Mutex
	count map[string]int
}

func (s *countingStore) Append(ctx context.Context, room string, msgs []chat.Message) error {
	if err := s.Store.Append(ctx, room, msgs); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		s.count[m.ID]++
	}
	return nil
}

func (s *countingStore) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.count))
	for id, n := range s.count {
		out[id] = n
	}
	return out
}

// TestClusterStore: two hubs sharing a Broker and a Store store every
// message once, with the ids Redis assigned: a member's message (public or
// private) by the hub its sender is on; a system message by every hub,
// which the Store keeps once.
func TestClusterStore(t *testing.T) {
	s := startRedis(t)
	st := &countingStore{Store: storetest.NewMemory(), count: make(map[string]int)}
	opts := chat.Options{Store: st}
	a, b := startInstanceWith(t, s, quietOptions(t), opts), startInstanceWith(t, s, quietOptions(t), opts)

	alice, _, _ := join(t, a, "alice")
	bob, _, _ := join(t, b, "bob")
	alice.expect(joinFrame("bob"))

	const each = 20
	var wg sync.WaitGroup
	for _, cl := range []*client{alice, bob} {
		wg.Go(func() {
			for i := range each {
				if err := cl.ws.WriteJSON(map[string]string{"type": "message", "body": fmt.Sprint(cl.name, i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	var stream []frame
	for range 2 * each {
		stream = append(stream, alice.next())
	}
	alice.say("psst", "bob")
	stream = append(stream, alice.next())
	if err := a.hub.Post(context.Background(), "from a"); err != nil {
		t.Fatal(err)
	}
	stream = append(stream, alice.next())
	if err := b.hub.Post(context.Background(), "from b"); err != nil {
		t.Fatal(err)
	}
	stream = append(stream, alice.next())
	for range len(stream) {
		bob.next()
	}

	for _, in := range []*instance{a, b} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := in.hub.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		cancel()
	}
	var want, got []string
	for _, f := range stream {
		want = append(want, f.ID)
	}
	msgs, err := st.After(context.Background(), "lobby", "alice", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		got = append(got, m.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored ids (-delivered +stored):\n%s", diff)
	}
	counts := st.counts()
	for _, f := range stream {
		wantN := 1
		if f.System {
			wantN = 2
		}
		if n := counts[f.ID]; n != wantN {
			t.Errorf("message %s (%q) appended %d times, want %d", f.ID, f.Body, n, wantN)
		}
	}
}

// TestClusterResume: a client that reconnects to another hub of the room
// resumes from the ids Redis assigned: what it missed, then the live
// stream.
func TestClusterResume(t *testing.T) {
	s := startRedis(t)
	a, b := startInstance(t, s, quietOptions(t)), startInstance(t, s, quietOptions(t))
	alice, _, _ := join(t, a, "alice")
	carol, _, _ := join(t, b, "carol")
	alice.expect(joinFrame("carol"))
	alice.say("m0", "")
	alice.next()
	since := carol.expect(msgFrame("alice", "m0"))[0].ID
	carol.ws.Close()
	alice.expect(leaveFrame("carol"))
	alice.say("m1", "")
	alice.say("m2", "")
	alice.expect(msgFrame("alice", "m1"), msgFrame("alice", "m2"))

	carol = dialQuery(t, a, "carol", "&since="+since)
	carol.expect(joinFrame("carol"))
	if f := carol.next(); f.Type != "users" {
		t.Fatalf("second frame %+v, want users", f)
	}
	hist := carol.next()
	if hist.Resume == nil || !*hist.Resume {
		t.Fatalf("history %+v, want resume:true", hist)
	}
	var bodies []string
	for _, m := range hist.Messages {
		bodies = append(bodies, m.Body)
	}
	if diff := cmp.Diff([]string{"m1", "m2"}, bodies); diff != "" {
		t.Errorf("resumed messages (-want +got):\n%s", diff)
	}
	alice.expect(joinFrame("carol"))
	alice.say("m3", "")
	carol.expect(msgFrame("alice", "m3"))
}
