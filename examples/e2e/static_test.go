package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubchat/chat/examples/internal/chattest"
)

// startStatic starts the static program, built into bin, on addr
// ("127.0.0.1:0" for any port) with the further flags args, and returns it
// and its page URL.
func startStatic(t *testing.T, bin, addr string, args ...string) (*chattest.Program, string) {
	t.Helper()
	p := chattest.Start(t, bin, append([]string{"-addr", addr}, args...)...)
	// "static chat: open http://127.0.0.1:PORT/ (WebSocket ws://127.0.0.1:PORT/ws)"
	line := p.Line()
	fields := strings.Fields(line)
	if len(fields) < 4 || !strings.HasPrefix(fields[3], "http://127.0.0.1:") {
		t.Fatalf("static printed %q, want its URL", line)
	}
	return p, fields[3]
}

func TestStatic(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../static")
	static, url := startStatic(t, bin, "127.0.0.1:0")

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

	// A server shutdown (SIGTERM: 1001) shows as disconnected; the page
	// reconnects by itself once a server is back on the address.
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	if err := static.Stop(); err != nil {
		t.Errorf("static after SIGTERM: %v, want exit status 0", err)
	}
	bob.waitFor("the status to say Disconnected", textOf("[role=status]")+`.includes("Disconnected")`)
	bob.waitLog("going away")
	startStatic(t, bin, addr)
	bob.waitConnected("bob")
	bob.say("back again")
}
