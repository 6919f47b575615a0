package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubchat/chat/examples/internal/chattest"
)

// The web client resumes after a reconnect from the last message it showed
// (?since=) and loads older pages when its log is scrolled to the top; see
// the package doc of github.com/hubchat/chat, "Resume and older pages".

// logItems returns the message log as the user reads it: each message's
// body, and each notice line ("3 missed messages", "Some messages were
// missed", "Beginning of the conversation") in brackets. Other system
// lines (joins, leaves, disconnects) and day lines are left out. It reads
// the first log of the page, the one shown.
func (u *user) logItems() []string {
	u.t.Helper()
	return eval[[]string](u, `[...(document.querySelector("[role=log]")?.children ?? [])].flatMap((li) =>
		li.classList.contains("notice") ? ["[" + li.textContent + "]"] :
		li.classList.contains("msg") ? [li.querySelector(".body").textContent] : [])`)
}

// reconnectNow makes the page notice that the network is back, as the
// browser does with an "online" event: a page waiting to reconnect does so
// at once instead of at the end of its back-off.
func (u *user) reconnectNow() {
	u.t.Helper()
	eval[bool](u, `window.dispatchEvent(new Event("online"))`)
}

// TestResume: a page whose server restarts (with its SQLite database)
// while others post reconnects with ?since= and shows exactly the messages
// it missed, once each, in order, under "3 missed messages".
func TestResume(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../static")
	db := filepath.Join(t.TempDir(), "chat.db")
	static, url := startStatic(t, bin, "127.0.0.1:0", "-db", db)
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")

	alice := newUser(t, browser, "alice", 1100, 720, false)
	alice.open(url)
	alice.join("alice")
	bob := chattest.Join(t, chattest.WSURL(url)+"ws", "", "bob")
	bob.Say("before 1")
	alice.waitLog("before 1")
	alice.say("before 2")
	bob.Say("before 3")
	alice.waitLog("before 3")

	// The server goes down; alice's page waits to reconnect. Meanwhile bob
	// posts to the same room (the same database) on another address.
	if err := static.Stop(); err != nil {
		t.Errorf("static after SIGTERM: %v, want exit status 0", err)
	}
	alice.waitFor("the status to say Disconnected", textOf("[role=status]")+`.includes("Disconnected")`)
	other, otherURL := startStatic(t, bin, "127.0.0.1:0", "-db", db)
	bob = chattest.Join(t, chattest.WSURL(otherURL)+"ws", "", "bob")
	for _, body := range []string{"missed 1", "missed 2", "missed 3"} {
		bob.Say(body)
		if f := bob.ReadUntil("message"); f.Body != body {
			t.Fatalf("bob's echo: %q, want %q", f.Body, body)
		}
	}
	if err := other.Stop(); err != nil { // every message stored
		t.Errorf("static after SIGTERM: %v, want exit status 0", err)
	}

	// The server is back on alice's address: her page resumes.
	startStatic(t, bin, addr, "-db", db)
	alice.reconnectNow()
	alice.waitConnected("alice")
	alice.waitLog("3 missed messages")
	bob = chattest.Join(t, chattest.WSURL(url)+"ws", "", "bob")
	bob.Say("after")
	alice.waitLog("after")
	// The log is short: the page has asked for older messages too.
	alice.waitLog("Beginning of the conversation")
	want := []string{"[Beginning of the conversation]", "before 1", "before 2", "before 3",
		"[3 missed messages]", "missed 1", "missed 2", "missed 3", "after"}
	if diff := cmp.Diff(want, alice.logItems()); diff != "" {
		t.Errorf("alice's log after resuming (-want +got):\n%s", diff)
	}
}

// TestResumeLost: a page whose server comes back without its messages
// (no database) cannot resume; it keeps what it showed, says "Some
// messages were missed", and goes on with the room as it is now.
func TestResumeLost(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../static")
	static, url := startStatic(t, bin, "127.0.0.1:0", "-db", ":memory:")
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")

	alice := newUser(t, browser, "alice", 1100, 720, false)
	alice.open(url)
	alice.join("alice")
	bob := chattest.Join(t, chattest.WSURL(url)+"ws", "", "bob")
	bob.Say("old 1")
	bob.Say("old 2")
	alice.waitLog("old 2")

	if err := static.Stop(); err != nil {
		t.Errorf("static after SIGTERM: %v, want exit status 0", err)
	}
	alice.waitFor("the status to say Disconnected", textOf("[role=status]")+`.includes("Disconnected")`)
	startStatic(t, bin, addr, "-db", ":memory:")
	// Whether bob's message comes before alice is back (in her history)
	// or after (live), it has the ID 1, as "old 1" had: it shows all the
	// same.
	bob = chattest.Join(t, chattest.WSURL(url)+"ws", "", "bob")
	bob.Say("new 1")
	alice.reconnectNow()
	alice.waitConnected("alice")
	alice.waitLog("new 1")
	want := []string{"old 1", "old 2", "[Some messages were missed]", "new 1"}
	if diff := cmp.Diff(want, alice.logItems()); diff != "" {
		t.Errorf("alice's log after a lost resume (-want +got):\n%s", diff)
	}
}

// TestOlderPages: scrolling the log to the top loads the page before the
// oldest message shown, until the beginning of the conversation, each
// message once and in order, without moving what the user was reading.
func TestOlderPages(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../static")
	_, url := startStatic(t, bin, "127.0.0.1:0", "-rate", "0")

	const n = 120 // the history is the last 50; pages are 50
	bob := chattest.Join(t, chattest.WSURL(url)+"ws", "", "bob")
	var want []string
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf("m%03d", i)
		want = append(want, body)
		bob.Say(body)
	}
	for f := bob.ReadUntil("message"); f.Body != want[n-1]; f = bob.ReadUntil("message") {
	}

	alice := newUser(t, browser, "alice", 1100, 720, false)
	alice.open(url)
	alice.join("alice")
	alice.waitLog(want[n-1])
	if got := alice.logItems(); !cmp.Equal(got, want[n-50:]) {
		t.Fatalf("alice's log after joining: %q, want the history %q", got, want[n-50:])
	}

	const topBody = `document.querySelector("[role=log] .msg .body").textContent`
	const beginning = `document.querySelector("[role=log] > li:first-child.beginning") !== null`
	for i := 0; ; i++ {
		if i == 5 {
			t.Fatalf("no beginning of the conversation after %d scrolls to the top; log: %q", i, alice.logItems())
		}
		top := eval[string](alice, topBody)
		y := eval[float64](alice, `(() => {
			document.querySelector("[role=log]").scrollTop = 0;
			return document.querySelector("[role=log] .msg").getBoundingClientRect().top;
		})()`)
		alice.waitFor("older messages or the beginning", fmt.Sprintf(`%s !== %s || %s`, topBody, js(top), beginning))
		if eval[bool](alice, beginning) {
			break
		}
		// What was at the top stays where it was.
		if y2 := eval[float64](alice, fmt.Sprintf(`[...document.querySelectorAll("[role=log] .msg")].find((m) =>
			m.querySelector(".body").textContent === %s).getBoundingClientRect().top`, js(top))); y2 < y-1 || y2 > y+1 {
			t.Errorf("the message %s moved from y=%.0f to y=%.0f when older ones came in", top, y, y2)
		}
	}
	want = append([]string{"[Beginning of the conversation]"}, want...)
	if diff := cmp.Diff(want, alice.logItems()); diff != "" {
		t.Errorf("alice's log scrolled to the beginning (-want +got):\n%s", diff)
	}
}
