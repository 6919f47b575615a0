package redisbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"github.com/hubchat/chat"
)

// End-to-end tests: several hubs, each behind its own HTTP server and
// Broker as if in its own process, with real WebSocket clients.

// instance is one process of a cluster.
type instance struct {
	hub    *chat.Hub
	broker *Broker
	syncs  atomic.Int32 // EventSyncs delivered to the hub
	url    string       // ws://.../ws
}

// Open wraps Broker.Open to count the syncs delivered.
func (in *instance) Open(room string, deliver func(chat.Event)) (chat.Link, error) {
	return in.broker.Open(room, func(ev chat.Event) {
		if ev.Kind == chat.EventSync {
			in.syncs.Add(1)
		}
		deliver(ev)
	})
}

// startInstance starts a hub named "lobby" on a new Broker of s.
func startInstance(t testing.TB, s *redisServer, opts Options) *instance {
	t.Helper()
	return startInstanceWith(t, s, opts, chat.Options{})
}

// startInstanceWith starts a hub named "lobby" on a new Broker of s, with
// hubOpts for the rest.
func startInstanceWith(t testing.TB, s *redisServer, opts Options, hubOpts chat.Options) *instance {
	t.Helper()
	in := &instance{broker: New(s.Client(), opts)}
	hubOpts.Name, hubOpts.RateLimit, hubOpts.Broker, hubOpts.Logger = "lobby", -1, in, opts.Logger
	in.hub = chat.NewHub(hubOpts)
	mux := http.NewServeMux()
	mux.Handle("/ws", chat.NewServer(in.hub))
	hs := httptest.NewServer(mux)
	in.url = "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := in.hub.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
		in.broker.Close()
	})
	eventually(t, "first sync", func() bool { return in.syncs.Load() > 0 })
	return in
}

// kill stops the instance's links as if the process had died: no more
// heartbeats and no clean-up. Its hub and clients linger, cut off.
func (in *instance) kill() {
	in.broker.mu.Lock()
	links := slices.Collect(func(yield func(*link) bool) {
		for l := range in.broker.links {
			if !yield(l) {
				return
			}
		}
	})
	in.broker.mu.Unlock()
	for _, l := range links {
		l.die()
	}
}

// frame is any server frame.
type frame struct {
	Type     string             `json:"type"`
	ID       string             `json:"id,omitempty"`
	Username string             `json:"username,omitempty"`
	Origin   string             `json:"origin,omitempty"`
	Display  string             `json:"display,omitempty"`
	Body     string             `json:"body,omitempty"`
	To       string             `json:"to,omitempty"`
	System   bool               `json:"system,omitempty"`
	TS       int64              `json:"ts,omitempty"`
	Users    []string           `json:"users,omitempty"`
	Profiles map[string]profile `json:"profiles,omitempty"`
	Messages []frame            `json:"messages,omitempty"`
	Resume   *bool              `json:"resume,omitempty"`
	Error    string             `json:"error,omitempty"`
}

// profile is a member's profile in a users snapshot.
type profile struct {
	Display string `json:"display,omitempty"`
}

// client is a WebSocket client whose frames arrive on a channel.
type client struct {
	t      testing.TB
	name   string
	ws     *websocket.Conn
	frames chan frame
	err    error // set before frames is closed
}

func dial(t testing.TB, in *instance, name string) *client {
	t.Helper()
	return dialQuery(t, in, name, "")
}

// dialQuery dials as name with more of the query string, e.g. "&since=17".
func dialQuery(t testing.TB, in *instance, name, query string) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(in.url+"?username="+url.QueryEscape(name)+query, nil)
	if err != nil {
		t.Fatalf("dial as %s: %v", name, err)
	}
	c := &client{t: t, name: name, ws: ws, frames: make(chan frame, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.frames)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				c.err = err
				return
			}
			var f frame
			if err := json.Unmarshal(data, &f); err != nil {
				c.err = err
				return
			}
			c.frames <- f
		}
	}()
	t.Cleanup(func() {
		ws.Close()
		<-done
	})
	return c
}

// join dials as name and checks the welcome: its own join, then the users
// and the history, which it returns.
func join(t testing.TB, in *instance, name string) (*client, []string, []frame) {
	t.Helper()
	c := dial(t, in, name)
	if f := c.next(); f.Type != "join" || f.Username != name {
		t.Fatalf("%s: first frame %+v, want its join", name, f)
	}
	u, h := c.next(), c.next()
	if u.Type != "users" || h.Type != "history" {
		t.Fatalf("%s: welcome %+v %+v, want users and history", name, u, h)
	}
	return c, u.Users, h.Messages
}

func (c *client) next() frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("%s: connection ended: %v", c.name, c.err)
		}
		return f
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s: no frame within 10s", c.name)
	}
	return frame{}
}

// expect reads len(want) frames and compares them to want, ignoring ids and
// times, which it returns.
func (c *client) expect(want ...frame) []frame {
	c.t.Helper()
	got := make([]frame, len(want))
	for i := range want {
		got[i] = c.next()
	}
	stripped := make([]frame, len(got))
	for i, f := range got {
		f.ID, f.TS = "", 0
		stripped[i] = f
	}
	if diff := cmp.Diff(want, stripped); diff != "" {
		c.t.Fatalf("%s: frames (-want +got):\n%s", c.name, diff)
	}
	return got
}

func (c *client) say(body, to string) {
	c.t.Helper()
	m := map[string]string{"type": "message", "body": body}
	if to != "" {
		m["to"] = to
	}
	if err := c.ws.WriteJSON(m); err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
}

func joinFrame(n string) frame  { return frame{Type: "join", Username: n} }
func leaveFrame(n string) frame { return frame{Type: "leave", Username: n} }
func msgFrame(from, body string) frame {
	return frame{Type: "message", Username: from, Body: body}
}

func quietOptions(t testing.TB) Options {
	o := testOptions(t)
	o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
	return o
}

func TestClusterMembersAndMessages(t *testing.T) {
	s := startRedis(t)
	a, b, c := startInstance(t, s, quietOptions(t)), startInstance(t, s, quietOptions(t)), startInstance(t, s, quietOptions(t))

	alice, users, _ := join(t, a, "alice")
	if diff := cmp.Diff([]string{"alice"}, users); diff != "" {
		t.Errorf("alice's users (-want +got):\n%s", diff)
	}
	bob, users, _ := join(t, b, "bob")
	if diff := cmp.Diff([]string{"alice", "bob"}, users); diff != "" {
		t.Errorf("bob's users (-want +got):\n%s", diff)
	}
	alice.expect(joinFrame("bob"))
	carol, users, _ := join(t, c, "carol")
	if diff := cmp.Diff([]string{"alice", "bob", "carol"}, users); diff != "" {
		t.Errorf("carol's users (-want +got):\n%s", diff)
	}
	alice.expect(joinFrame("carol"))
	bob.expect(joinFrame("carol"))
	clients := []*client{alice, bob, carol}

	// Everyone sends concurrently; everyone receives every message once,
	// with the same ids in the same order.
	const each = 30
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Go(func() {
			for i := range each {
				if err := cl.ws.WriteJSON(map[string]string{"type": "message", "body": fmt.Sprint(cl.name, i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	streams := make([][]frame, len(clients))
	for i, cl := range clients {
		for range len(clients) * each {
			streams[i] = append(streams[i], cl.next())
		}
	}
	for i := range streams {
		if diff := cmp.Diff(streams[0], streams[i]); diff != "" {
			t.Errorf("%s's stream differs from alice's (-alice +%s):\n%s", clients[i].name, clients[i].name, diff)
		}
	}
	count := make(map[string]int)
	for _, f := range streams[0] {
		count[f.Body]++
	}
	for _, cl := range clients {
		for i := range each {
			if n := count[fmt.Sprint(cl.name, i)]; n != 1 {
				t.Errorf("%s%d delivered %d times", cl.name, i, n)
			}
		}
	}

	// A private message crosses instances: only its two ends see it.
	alice.say("psst", "bob")
	want := frame{Type: "message", Username: "alice", Body: "psst", To: "bob"}
	alice.expect(want)
	bob.expect(want)
	carol.say("public", "")
	var public []frame
	for _, cl := range clients {
		public = cl.expect(msgFrame("carol", "public")) // carol never saw psst
	}

	// A name taken on another instance is refused, case-insensitively.
	dup := dial(t, c, "ALICE")
	if f := dup.next(); f.Type != "error" || !strings.Contains(f.Error, "taken") {
		t.Errorf("duplicate name: got %+v, want an error about a taken name", f)
	}

	// A leave reaches everyone.
	bob.ws.Close()
	alice.expect(leaveFrame("bob"))
	carol.expect(leaveFrame("bob"))

	// A joiner on a new instance gets the members and the history from
	// Redis.
	d := startInstance(t, s, quietOptions(t))
	_, users, hist := join(t, d, "dave")
	if diff := cmp.Diff([]string{"alice", "carol", "dave"}, users); diff != "" {
		t.Errorf("dave's users (-want +got):\n%s", diff)
	}
	wantHist := append(streams[0][len(streams[0])-49:], public[0])
	if diff := cmp.Diff(wantHist, hist); diff != "" {
		t.Errorf("dave's history (-want +got):\n%s", diff)
	}
	alice.expect(joinFrame("dave"))
	carol.expect(joinFrame("dave"))
}

func TestClusterDeadInstance(t *testing.T) {
	s := startRedis(t)
	a, b := startInstance(t, s, quietOptions(t)), startInstance(t, s, quietOptions(t))
	alice, _, _ := join(t, a, "alice")
	join(t, b, "bob")
	alice.expect(joinFrame("bob"))

	b.kill() // bob's process dies without a word
	alice.expect(leaveFrame("bob"))
	join(t, a, "BOB") // the name is free again
	alice.expect(joinFrame("BOB"))
}

func TestClusterRedisRestart(t *testing.T) {
	s := startRedis(t)
	a, b := startInstance(t, s, quietOptions(t)), startInstance(t, s, quietOptions(t))
	alice, _, _ := join(t, a, "alice")
	bob, _, _ := join(t, b, "bob")
	alice.expect(joinFrame("bob"))
	alice.say("before", "")
	before := alice.expect(msgFrame("alice", "before"))
	bob.expect(msgFrame("alice", "before"))

	s.Stop()
	start := time.Now()
	alice.say("during", "")
	if f := alice.next(); f.Type != "error" || !strings.Contains(f.Error, "unavailable") {
		t.Errorf("message during the outage: got %+v, want an error frame", f)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("error frame took %v", d)
	}
	syncsA, syncsB := a.syncs.Load(), b.syncs.Load()
	s.Start()
	eventually(t, "both instances resynchronized", func() bool {
		return a.syncs.Load() > syncsA && b.syncs.Load() > syncsB
	})

	// Each instance re-claimed its members. Clients may see the members
	// of the other instance leave and come back, depending on which
	// instance re-claimed first, but end up with the same members, and
	// messages flow again with larger ids.
	bob.say("after", "")
	for _, cl := range []*client{alice, bob} {
		members := map[string]bool{"alice": true, "bob": true}
		for {
			f := cl.next()
			switch {
			case f.Type == "join":
				members[f.Username] = true
			case f.Type == "leave" && f.Username == cl.name:
				t.Errorf("%s saw itself leave", cl.name)
			case f.Type == "leave":
				delete(members, f.Username)
			case f.Type == "message" && f.Body == "after":
				if len(f.ID) < len(before[0].ID) || len(f.ID) == len(before[0].ID) && f.ID <= before[0].ID {
					t.Errorf("id after restart %s, before %s", f.ID, before[0].ID)
				}
			default:
				t.Fatalf("%s: unexpected frame %+v", cl.name, f)
			}
			if f.Body == "after" {
				break
			}
		}
		if diff := cmp.Diff(map[string]bool{"alice": true, "bob": true}, members); diff != "" {
			t.Errorf("%s's members after the restart (-want +got):\n%s", cl.name, diff)
		}
	}
	_, users, _ := join(t, b, "carol")
	slices.Sort(users) // the instances re-claimed in either order
	if diff := cmp.Diff([]string{"alice", "bob", "carol"}, users); diff != "" {
		t.Errorf("users after restart (-want +got):\n%s", diff)
	}
	dup := dial(t, b, "Alice")
	if f := dup.next(); f.Type != "error" || !strings.Contains(f.Error, "taken") {
		t.Errorf("duplicate of a re-claimed name: got %+v", f)
	}
}

// links returns the instance's open links.
func (in *instance) links() []*link {
	in.broker.mu.Lock()
	defer in.broker.mu.Unlock()
	var ls []*link
	for l := range in.broker.links {
		ls = append(ls, l)
	}
	return ls
}

func TestClusterNameLostDuringOutage(t *testing.T) {
	s := startRedis(t)
	a, b := startInstance(t, s, quietOptions(t)), startInstance(t, s, quietOptions(t))
	alice, _, _ := join(t, a, "alice")
	bob, _, _ := join(t, b, "bob")
	alice.expect(joinFrame("bob"))

	// a is swept as if cut off for longer than MemberTTL, and another
	// instance takes the name meanwhile: a's alice must go, with 1013.
	expire(t, s, a.links()[0], "ALICE")
	bob.expect(leaveFrame("alice"), joinFrame("ALICE"))
	alice.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for f := range alice.frames {
		if f.Type != "leave" && f.Type != "join" {
			t.Errorf("alice got %+v", f)
		}
	}
	var ce *websocket.CloseError
	if !errors.As(alice.err, &ce) || ce.Code != websocket.CloseTryAgainLater {
		t.Errorf("alice's connection ended with %v, want close 1013", alice.err)
	}
	// Everyone agrees on the members.
	_, users, _ := join(t, a, "carol")
	if diff := cmp.Diff([]string{"bob", "ALICE", "carol"}, users); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
}

// TestIdentityAcrossInstances: with Authenticate, display names travel
// between processes in join events and snapshots; a member's second
// connection to its process shares the member, and one to another
// process is refused as taken.
func TestIdentityAcrossInstances(t *testing.T) {
	s := startRedis(t)
	auth := chat.Options{Authenticate: func(r *http.Request) (chat.Identity, error) {
		name := r.URL.Query().Get("username")
		return chat.Identity{Name: name, Display: strings.ToUpper(name)}, nil
	}}
	in1 := startInstanceWith(t, s, testOptions(t), auth)
	in2 := startInstanceWith(t, s, testOptions(t), auth)
	alice1, _, _ := join(t, in1, "alice")
	bob := dial(t, in2, "bob")
	bob.expect(
		frame{Type: "join", Username: "bob", Display: "BOB"},
		frame{Type: "users", Users: []string{"alice", "bob"},
			Profiles: map[string]profile{"alice": {"ALICE"}, "bob": {"BOB"}}},
		frame{Type: "history", Messages: []frame{}},
	)
	alice1.expect(frame{Type: "join", Username: "bob", Display: "BOB"})

	alice2 := dial(t, in1, "alice")
	alice2.expect(
		frame{Type: "join", Username: "alice", Display: "ALICE"},
		frame{Type: "users", Users: []string{"alice", "bob"},
			Profiles: map[string]profile{"alice": {"ALICE"}, "bob": {"BOB"}}},
		frame{Type: "history", Messages: []frame{}},
	)
	other := dial(t, in2, "alice")
	other.expect(frame{Type: "error", Error: `username "alice" is taken`})

	bob.say("psst", "alice")
	want := frame{Type: "message", Username: "bob", Body: "psst", To: "alice"}
	alice1.expect(want)
	alice2.expect(want)
	bob.expect(want)

	alice1.ws.Close()
	bob.say("still there?", "")
	bob.expect(frame{Type: "message", Username: "bob", Body: "still there?"})
	alice2.expect(frame{Type: "message", Username: "bob", Body: "still there?"})
	alice2.ws.Close()
	bob.expect(frame{Type: "leave", Username: "alice"})
}
