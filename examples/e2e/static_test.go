package e2e

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubchat/chat"
	"github.com/hubchat/chat/examples/kit/run"
	"github.com/hubchat/chat/examples/kit/staticapp"
)

// serveStatic runs the static app on addr ("127.0.0.1:0" for any port) until
// the returned stop is called or the test ends.
func serveStatic(t *testing.T, addr string) (url string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	app := staticapp.New(chat.Options{})
	srv := run.Serve(ln, app.Handler(), run.Config{}, app.Hub())
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			if err := srv.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(stop)
	return run.URL("http", "127.0.0.1", ln.Addr(), "/"), stop
}

func TestStatic(t *testing.T) {
	browser := newBrowser(t)
	url, stop := serveStatic(t, "127.0.0.1:0")

	alice := newUser(t, browser, "alice", 1100, 720, false)
	bob := newUser(t, browser, "bob", 1100, 720, false)
	alice.open(url)
	alice.join("alice")
	bob.open(url)
	bob.join("bob")
	alice.waitLog("bob joined")

	alice.say("Hello Bob!")
	bob.waitLog("Hello Bob!")

	// Keyboard only: type, Tab to the Send button, Enter.
	bob.typeInto("Message", "Hi Alice, how are you?")
	bob.press("\t")
	if got := eval[string](bob, `document.activeElement.textContent`); got != "Send" {
		t.Errorf("Tab from the message box focused %q, want the Send button", got)
	}
	bob.press("\r")
	alice.waitLog("Hi Alice, how are you?")

	// Mine on the right, theirs on the left.
	sides := eval[[]string](alice, `[...document.querySelectorAll("[role=log] .msg")].map((m) =>
		m.querySelector(".author").textContent + ":" + (m.classList.contains("mine") ? "mine" : "theirs") + ":" +
		(m.getBoundingClientRect().right > m.parentElement.getBoundingClientRect().right - 30 ? "right" : "left"))`)
	if diff := cmp.Diff([]string{"alice:mine:right", "bob:theirs:left"}, sides); diff != "" {
		t.Errorf("alice's messages (-want +got):\n%s", diff)
	}
	if got := eval[[]string](alice, `[...document.querySelectorAll(".users-list .name")].map((n) => n.textContent)`); !cmp.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("users list = %q, want join order [alice bob]", got)
	}
	if got := eval[string](alice, `document.querySelector("[role=log] .msg .avatar").textContent`); got != "AL" {
		t.Errorf("alice's avatar reads %q, want AL", got)
	}

	// A taken name is refused visibly, and another one works.
	carol := newUser(t, browser, "carol", 1100, 720, false)
	carol.open(url)
	carol.typeInto("Username", "Alice\r")
	carol.waitFor("a 'taken' error", textOf(".join [role=alert]")+`.includes("taken")`)
	carol.join("carol")
	alice.waitLog("carol joined")
	if !strings.Contains(carol.logText(), "Hello Bob!") {
		t.Errorf("carol's log lacks the history: %q", carol.logText())
	}

	// HTML in a body is text.
	carol.say(injection)
	carol.checkInjection()
	alice.checkInjection()

	// Private message with /msg.
	alice.typeInto("Message", "/msg bob psst, bob\r")
	alice.waitLog("→ bob (private)")
	bob.waitLog("psst, bob")
	if strings.Contains(carol.logText(), "psst") {
		t.Error("carol saw alice's private message to bob")
	}
	alice.screenshot("static")

	// A server shutdown (1001) shows as disconnected; the page reconnects
	// by itself once a server is back on the address.
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	stop()
	bob.waitFor("the status to say Disconnected", textOf("[role=status]")+`.includes("Disconnected")`)
	bob.waitLog("going away")
	serveStatic(t, addr)
	bob.waitConnected("bob")
	bob.say("back again")
}
