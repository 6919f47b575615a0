package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubchat/chat/examples/internal/chattest"
)

// TestKicked: a page whose member a moderator kicks says so and does not
// come straight back (which would undo the kick); "Reconnect now" rejoins.
func TestKicked(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../static")
	adminAddr := fmt.Sprintf("127.0.0.1:%d", chattest.FreePort(t))
	_, page := startStatic(t, bin, "127.0.0.1:0", "-db", ":memory:", "-admin", adminAddr)

	watcher := chattest.Join(t, chattest.WSURL(page)+"ws", "", "watcher")
	alice := newUser(t, browser, "alice", 1100, 720, false)
	alice.open(page)
	alice.join("alice")
	readEvent(t, watcher, "join", "alice")

	resp, err := http.PostForm("http://"+adminAddr+"/kick", url.Values{"user": {"alice"}, "reason": {"spam"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /kick: %s, want 204", resp.Status)
	}
	alice.waitLog("Removed from the room: kicked by a moderator: spam")
	readEvent(t, watcher, "leave", "alice")

	// The client's first reconnect would come after at most 0.6 s; watch
	// three times that long that it does not.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		if s := eval[string](alice, textOf("[role=status]")); strings.Contains(s, "Connected") {
			t.Fatalf("status %q after a kick: the page reconnected by itself", s)
		}
		time.Sleep(100 * time.Millisecond) // observing that nothing happens, for a bounded time
	}

	alice.click("Reconnect now")
	alice.waitConnected("alice")
	readEvent(t, watcher, "join", "alice")
}

// readEvent reads c's frames until a typ event (join or leave) for name.
func readEvent(t *testing.T, c *chattest.Conn, typ, name string) {
	t.Helper()
	for {
		if f := c.ReadUntil(typ); f.Username == name {
			return
		}
	}
}

// TestBackForwardCache: a page put in the back/forward cache leaves the
// room (its name free), and comes back when it is shown again.
func TestBackForwardCache(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../static")
	_, page := startStatic(t, bin, "127.0.0.1:0", "-db", ":memory:")

	watcher := chattest.Join(t, chattest.WSURL(page)+"ws", "", "watcher")
	alice := newUser(t, browser, "alice", 1100, 720, false)
	alice.open(page)
	alice.join("alice")
	readEvent(t, watcher, "join", "alice")

	// What the browser fires when it caches the page and restores it.
	eval[bool](alice, `dispatchEvent(new PageTransitionEvent("pagehide", {persisted: true}))`)
	readEvent(t, watcher, "leave", "alice")
	eval[bool](alice, `dispatchEvent(new PageTransitionEvent("pageshow", {persisted: true}))`)
	readEvent(t, watcher, "join", "alice")
	alice.waitConnected("alice")
}
