package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hubchat/chat/examples/internal/chattest"
)

var ignoreStamps = cmpopts.IgnoreFields(chattest.Frame{}, "ID", "TS")

func diffFrame(t *testing.T, what string, want, got chattest.Frame) {
	t.Helper()
	if d := cmp.Diff(want, got, ignoreStamps); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

// next reads c's next frame, failing the test if there is none.
func next(t *testing.T, c *chattest.Conn) chattest.Frame {
	t.Helper()
	f, err := c.Read()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return f
}

// join joins url as name and reads its welcome, up to the history.
func join(t *testing.T, url, page, name string) *chattest.Conn {
	t.Helper()
	c := chattest.Join(t, url, page, name)
	c.ReadUntil("history")
	return c
}

func private(c *chattest.Conn, to, body string) {
	c.Send(map[string]string{"type": "message", "to": to, "body": body})
}

// marker has from say a message, and checks that it is the next frame of
// each of cs: nothing else came before it.
func marker(t *testing.T, from string, fromConn *chattest.Conn, cs ...*chattest.Conn) {
	t.Helper()
	fromConn.Say("marker")
	for _, c := range append(cs, fromConn) {
		diffFrame(t, "the frame after a quiet time", chattest.Frame{Type: "message", Username: from, Body: "marker"}, next(t, c))
	}
}

func TestSplitAddress(t *testing.T) {
	for _, tc := range []struct {
		in   string
		name string
		port int
		ok   bool
	}{
		{"bob@8082", "bob", 8082, true},
		{"a@b@1", "a@b", 1, true},
		{"bob", "", 0, false},
		{"@8082", "", 0, false},
		{"bob@", "", 0, false},
		{"bob@0", "", 0, false},
		{"bob@65536", "", 0, false},
		{"bob@123456", "", 0, false},
		{"bob@80x", "", 0, false},
		{"bob@+80", "", 0, false},
	} {
		name, port, ok := splitAddress(tc.in)
		if name != tc.name || port != tc.port || ok != tc.ok {
			t.Errorf("splitAddress(%q) = %q, %d, %v", tc.in, name, port, ok)
		}
	}
}

// TestCrossServer: /msg bob@PORT reaches bob on the server of PORT, from
// alice@PORT of the sender's server, and alice gets her copy; an unknown
// port or user is an error frame, and nothing is delivered to anyone;
// names that are addresses are refused.
func TestCrossServer(t *testing.T) {
	app, page := startApp(t, portRange{})
	s1, err := app.start(0)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := app.start(0)
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := fmt.Sprint(s1.Port), fmt.Sprint(s2.Port)
	alice := join(t, s1.URL, page, "alice")
	carol := join(t, s1.URL, page, "carol")
	next(t, alice) // carol's join
	bob := join(t, s2.URL, page, "Bob")
	dave := join(t, s2.URL, page, "dave")
	next(t, bob) // dave's join

	private(alice, "bob@"+p2, "hi bob")
	diffFrame(t, "bob's message", chattest.Frame{Type: "message", Username: "alice@" + p1, Origin: p1, To: "Bob", Body: "hi bob"}, next(t, bob))
	diffFrame(t, "alice's copy", chattest.Frame{Type: "message", Username: "alice", To: "Bob@" + p2, Body: "hi bob"}, next(t, alice))

	// Bob answers the address.
	private(bob, "alice@"+p1, "hi alice")
	diffFrame(t, "alice's answer", chattest.Frame{Type: "message", Username: "Bob@" + p2, Origin: p2, To: "alice", Body: "hi alice"}, next(t, alice))
	diffFrame(t, "bob's copy", chattest.Frame{Type: "message", Username: "Bob", To: "alice@" + p1, Body: "hi alice"}, next(t, bob))

	// To the own port: a private message of the room.
	private(alice, "carol@"+p1, "psst")
	diffFrame(t, "carol's", chattest.Frame{Type: "message", Username: "alice", To: "carol", Body: "psst"}, next(t, carol))
	next(t, alice)

	// Bad addresses: an error frame for the sender, nothing for anyone.
	for _, tc := range []struct{ to, err string }{
		{"bob@1", "no chat server on port 1 here: write /msg name@PORT with one of the ports " + p1 + ", " + p2},
		{"erin@" + p2, `no user "erin" on the chat server on port ` + p2},
		{strings.Repeat("z", 40) + "@" + p2, `no user "` + strings.Repeat("z", 32) + `…" on the chat server on port ` + p2},
		{"erin@" + p1, `user "erin" is not here`},
	} {
		private(alice, tc.to, "lost")
		diffFrame(t, "to "+tc.to, chattest.Frame{Type: "error", Error: tc.err}, next(t, alice))
	}
	marker(t, "alice", alice, carol)
	marker(t, "Bob", bob, dave)

	// Names that are addresses are refused at the join.
	c, _, err := chattest.Dial(t, s2.URL+"?username=alice@"+p1, page)
	if err != nil {
		t.Fatal(err)
	}
	if f := next(t, c); f.Type != "error" || !strings.Contains(f.Error, "addresses of users of other servers") {
		t.Errorf("joining as alice@%s: %+v", p1, f)
	}
	if code := c.CloseCode(); code != 1008 {
		t.Errorf("close code %d, want 1008", code)
	}
}

// TestBridge: the servers of the bridge share one room: members, messages
// tagged with their server, typing; a server outside it is a room of its
// own, which /msg still reaches.
func TestBridge(t *testing.T) {
	p1, p2 := chattest.FreePort(t), chattest.FreePort(t)
	app, page := startAppWith(t, roomsConfig{Bridge: []int{p1, p2}})
	s1, err := app.start(p1)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := app.start(p2)
	if err != nil {
		t.Fatal(err)
	}
	s3, err := app.start(0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(s1.Name, "bridged)") || !strings.HasSuffix(s2.Name, "bridged)") || strings.Contains(s3.Name, "bridged") {
		t.Errorf("server names %q, %q, %q", s1.Name, s2.Name, s3.Name)
	}
	alice := join(t, s1.URL, page, "alice")
	bob, _, err := chattest.Dial(t, s2.URL+"?username=bob", page)
	if err != nil {
		t.Fatal(err)
	}
	next(t, bob)
	if f := next(t, bob); f.Type != "users" || !cmp.Equal(f.Users, []string{"alice", "bob"}) {
		t.Errorf("bob's users: %+v", f)
	}
	next(t, bob) // the history
	diffFrame(t, "alice sees bob join", chattest.Frame{Type: "join", Username: "bob"}, next(t, alice))
	// One room: the name is taken across the bridge.
	dup, _, err := chattest.Dial(t, s2.URL+"?username=Alice", page)
	if err != nil {
		t.Fatal(err)
	}
	if f := next(t, dup); f.Type != "error" || !strings.Contains(f.Error, "taken") {
		t.Errorf("Alice on the other side of the bridge: %+v", f)
	}
	p1s, p2s := fmt.Sprint(p1), fmt.Sprint(p2)
	alice.Say("over the bridge")
	diffFrame(t, "bob sees alice's message", chattest.Frame{Type: "message", Username: "alice", Origin: p1s, Body: "over the bridge"}, next(t, bob))
	diffFrame(t, "alice's own", chattest.Frame{Type: "message", Username: "alice", Body: "over the bridge"}, next(t, alice))
	alice.Send(map[string]string{"type": "typing"})
	diffFrame(t, "bob sees alice typing", chattest.Frame{Type: "typing", Username: "alice"}, next(t, bob))
	next(t, alice)
	private(bob, "alice@"+p1s, "psst")
	diffFrame(t, "a private across the bridge", chattest.Frame{Type: "message", Username: "bob", Origin: p2s, To: "alice", Body: "psst"}, next(t, alice))
	next(t, bob)

	// The third server is a room of its own, reached by /msg.
	carol := join(t, s3.URL, page, "carol")
	carol.Say("alone")
	next(t, carol)
	private(carol, "bob@"+p2s, "hello bridge")
	diffFrame(t, "bob hears from the third server", chattest.Frame{Type: "message", Username: fmt.Sprintf("carol@%d", s3.Port), Origin: fmt.Sprint(s3.Port), To: "bob", Body: "hello bridge"}, next(t, bob))
	next(t, carol)

	// Each hub of the bridge has its own metrics, labelled with its port:
	// the room's two members on both.
	chattest.WaitMetrics(t, page+"/metrics", map[string]string{
		fmt.Sprintf(`hubchat_members{room="port %d"}`, p1): "2",
		fmt.Sprintf(`hubchat_members{room="port %d"}`, p2): "2",
	})

	alice.Say("marker")
	diffFrame(t, "bob's next frame", chattest.Frame{Type: "message", Username: "alice", Origin: p1s, Body: "marker"}, next(t, bob))
	marker(t, "carol", carol)
}
