package redisbroker

import (
	"strings"
	"testing"

	"github.com/hubchat/chat"
)

// TestClusterTypingAndOrigins: typing notices cross instances; messages
// carry their sender's Origin to the other instances; a message routed
// out of the room reaches its sender alone, and one delivered from
// outside reaches its recipient on another instance.
func TestClusterTypingAndOrigins(t *testing.T) {
	s := startRedis(t)
	// Routes "...@far" out of the room: where it goes does not matter
	// here, the sender's copy does.
	route := func(_ *chat.Hub, _ chat.Identity, m *chat.Message) error {
		if strings.HasSuffix(m.To, "@far") {
			m.ToOrigin = "far"
		}
		return nil
	}
	a := startInstanceWith(t, s, quietOptions(t), chat.Options{Origin: "a", OnMessage: route})
	b := startInstanceWith(t, s, quietOptions(t), chat.Options{Origin: "b"})
	alice, _, _ := join(t, a, "alice")
	bob, _, _ := join(t, b, "bob")
	alice.expect(joinFrame("bob"))
	namesake, _, _ := join(t, b, "zed@far")
	alice.expect(joinFrame("zed@far"))
	bob.expect(joinFrame("zed@far"))

	if err := alice.ws.WriteJSON(map[string]string{"type": "typing"}); err != nil {
		t.Fatal(err)
	}
	bob.expect(frame{Type: "typing", Username: "alice"})
	alice.expect(frame{Type: "typing", Username: "alice"})
	namesake.expect(frame{Type: "typing", Username: "alice"})

	bob.say("hi", "")
	alice.expect(frame{Type: "message", Username: "bob", Origin: "b", Body: "hi"})
	bob.expect(msgFrame("bob", "hi"))
	namesake.expect(frame{Type: "message", Username: "bob", Body: "hi"})

	alice.say("out", "zed@far")
	alice.expect(frame{Type: "message", Username: "alice", To: "zed@far", Body: "out"})
	bob.say("after", "")
	namesake.expect(frame{Type: "message", Username: "bob", Body: "after"})
	alice.next()
	bob.next()

	if err := a.hub.Deliver(t.Context(), chat.Message{Username: "yan@far", Origin: "far", To: "bob", Body: "in"}); err != nil {
		t.Fatal(err)
	}
	bob.expect(frame{Type: "message", Username: "yan@far", Origin: "far", To: "bob", Body: "in"})
}
