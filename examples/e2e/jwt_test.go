package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/hubchat/chat/examples/internal/chattest"
)

// startJWT starts the jwt program, built into bin, on addr ("127.0.0.1:0"
// for any port), and returns it and its page URL.
func startJWT(t *testing.T, bin, addr string) (*chattest.Program, string) {
	t.Helper()
	p := chattest.Start(t, bin, "-addr", addr)
	// "jwt chat: open http://127.0.0.1:PORT/"
	line := p.Line()
	fields := strings.Fields(line)
	if len(fields) < 4 || !strings.HasPrefix(fields[3], "http://127.0.0.1:") {
		t.Fatalf("jwt printed %q, want its URL", line)
	}
	return p, fields[3]
}

// tab opens another tab in u's browser context: same cookies, same user.
func (u *user) tab(name string) *user {
	u.t.Helper()
	v := &user{t: u.t, name: name}
	ctx, cancel := chromedp.NewContext(u.ctx, chromedp.WithListener(v.listen))
	u.t.Cleanup(func() {
		cancel()
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, p := range v.problems {
			u.t.Errorf("%s's page: %s", name, p)
		}
	})
	v.ctx = ctx
	return v
}

// signIn fills in the login page and waits for the room to connect.
func (u *user) signIn(name, display string) {
	u.t.Helper()
	u.typeInto("Username", name)
	u.typeInto("Display name (optional, what others see)", display+"\r")
	u.waitPage("/")
	u.waitConnected(display + " (" + name + ")")
}

// waitPage waits until the tab shows the page at path, loaded: through
// navigations, during which the page cannot be asked anything.
func (u *user) waitPage(path string) {
	u.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got, err := chromedp.Run(u.ctx, chromedp.Evaluate[string](`location.pathname + " " + document.readyState`))
		if err == nil && got == path+" complete" {
			return
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("%s: waiting for the page %s: at %q, %v", u.name, path, got, err)
		}
		time.Sleep(50 * time.Millisecond) // polling, with a deadline
	}
}

// TestJWT: sign in on the login page, chat under a display name, be one
// member in two tabs, and be sent back to the login page when the token
// is no longer valid.
func TestJWT(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../jwt")
	prog, url := startJWT(t, bin, "127.0.0.1:0")

	alice := newUser(t, browser, "alice", 1100, 720, false)
	bob := newUser(t, browser, "bob", 1100, 720, false)
	alice.open(url) // signed out: the login page
	alice.waitPage("/login")
	alice.signIn("alice", "Alice <b>L.</b>")
	if got := eval[string](alice, textOf(".who")); got != "Signed in as Alice <b>L.</b> (alice)" {
		t.Errorf("header reads %q", got)
	}
	bob.open(url)
	bob.waitPage("/login")
	bob.signIn("bob", "Bob")
	alice.waitLog("Bob (bob) joined")

	// Display names first, usernames after them; markup stays text.
	names := eval[[]string](alice, `[...document.querySelectorAll(".users-list .user")].map((u) =>
		[...u.querySelectorAll(".name, .handle, .you")].map((s) => s.textContent).join(" "))`)
	if diff := cmp.Diff([]string{"Alice <b>L.</b> @alice (you)", "Bob @bob"}, names); diff != "" {
		t.Errorf("alice's users list (-want +got):\n%s", diff)
	}
	bob.say("Hello Alice")
	alice.waitLog("Hello Alice")
	if got := eval[string](alice, `[...document.querySelectorAll("[role=log] .msg .meta")].map((m) => m.textContent).join("|")`); !strings.HasPrefix(got, "Bob@bob") {
		t.Errorf("message header reads %q, want the display name, then @bob", got)
	}
	if n := eval[int](alice, `document.querySelectorAll(".app b").length`); n != 0 {
		t.Errorf("%d b elements: a display name was inserted as HTML", n)
	}

	// A second tab of alice's is the same member: bob sees no second join,
	// and both tabs get what is said.
	tab2 := alice.tab("alice's second tab")
	tab2.open(url)
	tab2.waitPage("/")
	tab2.waitConnected("Alice <b>L.</b> (alice)")
	bob.say("to every tab")
	alice.waitLog("to every tab")
	tab2.waitLog("to every tab")
	for _, u := range []*user{alice, bob} {
		if log := u.logText(); strings.Contains(log, "(alice) joined") {
			t.Errorf("%s saw the second tab join: %q", u.name, log)
		}
	}

	// A restart makes a new key: the cookie's token is no longer valid, and
	// the page goes back to the login page when it reconnects.
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	if err := prog.Stop(); err != nil {
		t.Errorf("jwt after SIGTERM: %v, want exit status 0", err)
	}
	startJWT(t, bin, addr)
	bob.waitPage("/login")
	if got := eval[string](bob, textOf("[role=status]")); !strings.Contains(got, "expired") {
		t.Errorf("the login page says %q, want why", got)
	}
	bob.signIn("bob", "Bob again")
}
