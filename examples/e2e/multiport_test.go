package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/hubchat/chat/examples/internal/chattest"
)

// startMultiport starts the multiport program, built into bin, as a user
// would, on ports of 127.0.0.1: the main server, two chat servers, and one
// allowed port for the UI. It returns the main URL.
func startMultiport(t *testing.T, bin string, allow int) string {
	t.Helper()
	return startMultiportOn(t, bin, port(t, 8081), port(t, 8082), allow)
}

// startMultiportOn is startMultiport with the chat servers on ports p1 and
// p2, and the further flags args.
func startMultiportOn(t *testing.T, bin string, p1, p2, allow int, args ...string) string {
	t.Helper()
	p := chattest.Start(t, bin, append([]string{"-addr", "127.0.0.1:" + strconv.Itoa(port(t, 8080)), "-host", "127.0.0.1",
		"-servers", fmt.Sprintf("%d,%d", p1, p2), "-allow", strconv.Itoa(allow)}, args...)...)
	line := p.Line() // "multiport: open http://127.0.0.1:PORT/"
	url, ok := strings.CutPrefix(line, "multiport: open ")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("multiport printed %q, want its URL", line)
	}
	// It prints the URL once the main server listens, then starts the chat
	// servers: wait for the line after them.
	for !strings.HasPrefix(p.Line(), "  the UI may start chat servers") {
	}
	return url
}

// chatServer is a chat server as the main server lists it.
type chatServer struct{ Name, URL string }

// chatServers returns the chat servers the main server at url lists.
func chatServers(t *testing.T, url string) []chatServer {
	t.Helper()
	resp, err := http.Get(url + "api/servers")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var servers []chatServer
	if err := json.NewDecoder(resp.Body).Decode(&servers); err != nil {
		t.Fatalf("GET /api/servers: %s, %v", resp.Status, err)
	}
	return servers
}

// serverNames returns the names of the chat servers the main server at
// url lists.
func serverNames(t *testing.T, url string) []string {
	t.Helper()
	var names []string
	for _, s := range chatServers(t, url) {
		names = append(names, s.Name)
	}
	return names
}

func TestMultiport(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../multiport")
	allowed := port(t, 8083)
	url := startMultiport(t, bin, allowed)
	s := serverNames(t, url)
	if len(s) != 2 {
		t.Fatalf("chat servers %q, want 2", s)
	}
	server1, server2 := s[0], s[1]

	alice := newUser(t, browser, "alice", 1100, 720, false)
	bob := newUser(t, browser, "bob (phone)", 375, 740, true) // a 375 px wide phone

	// The page opens the first server and asks for a name.
	alice.open(url)
	alice.join("alice")
	bob.open(url)
	bob.join("bob")
	for _, u := range []*user{alice, bob} {
		u.waitFor("the room title "+server1, textOf(".chat-head h2")+" === "+js(server1))
		u.waitFor("the server buttons", fmt.Sprintf(`[...document.querySelectorAll(".server-list button")].map((b) => b.textContent).join() === %s`,
			js(server1+","+server2)))
	}
	alice.waitLog("bob joined")
	alice.say("hello from one")
	bob.waitLog("hello from one")
	bob.noHorizontalScroll()

	// Switching servers changes the room: a name per server, no history
	// from the other one.
	bob.click(server2)
	bob.waitFor("the room title "+server2, textOf(".chat-head h2")+" === "+js(server2))
	bob.join("bob")
	bob.say("hello from two")
	alice.say("still on one")
	alice.click(server2)
	alice.join("alice")
	alice.waitLog("hello from two") // history of server 2
	bob.waitLog("alice joined")
	for _, u := range []*user{alice, bob} {
		if log := u.logText(); strings.Contains(log, "hello from one") || strings.Contains(log, "still on one") {
			u.t.Errorf("%s sees server 1's messages on server 2: %q", u.name, log)
		}
	}
	if got := eval[[]string](alice, `[...document.querySelectorAll(".server-list [aria-pressed=true]")].map((b) => b.textContent)`); len(got) != 1 || got[0] != server2 {
		t.Errorf("pressed server buttons = %q, want [%s]", got, server2)
	}

	// Meanwhile on server 1 carol, a Go client, says something. alice's
	// page is still there: server 1's button counts it.
	carol := chattest.Join(t, chatServers(t, url)[0].URL, strings.TrimSuffix(url, "/"), "carol")
	carol.SayEchoed("while alice was away")
	alice.waitUnread(server1, 1)

	// Back on server 1, the name is remembered: no prompt. The log is
	// server 1's again, with what came meanwhile; it is short, so the page
	// has asked for older messages too: none.
	alice.click(server1)
	alice.waitConnected("alice")
	alice.waitUnread(server1, 0)
	alice.waitLog("Beginning of the conversation")
	if got, want := alice.logItems(), []string{"[Beginning of the conversation]", "hello from one", "still on one",
		"while alice was away"}; !cmp.Equal(got, want) {
		t.Errorf("alice's log back on %s: %q, want %q", server1, got, want)
	}

	// A custom port: the main server starts a chat server there.
	port := strconv.Itoa(allowed)
	alice.typeInto("Port", port+"\r")
	server3 := fmt.Sprintf("Server 3 (%d)", allowed)
	alice.waitFor("the button "+server3, fmt.Sprintf(`[...document.querySelectorAll(".server-list button")].some((b) => b.textContent === %s)`, js(server3)))
	alice.join("alice")
	bob.typeInto("Port", port+"\r") // now it exists: bob just connects
	bob.join("bob")
	bob.say("custom works")
	alice.waitLog("custom works")
	if s := serverNames(t, url); len(s) != 3 {
		t.Errorf("chat servers %q, want 3", s)
	}

	// HTML in a body is text, on the phone too.
	alice.say(injection)
	alice.checkInjection()
	bob.checkInjection()
	bob.noHorizontalScroll()
	carol.SayEchoed("anyone on one?")
	alice.waitUnread(server1, 1)
	alice.screenshot("multiport")

	// A port the main server may not start a server on, where a chat server
	// already runs (as with "multiport custom PORT"): the page connects to
	// it directly, adds a button once joined and remembers it.
	customPort := chattest.FreePort(t)
	custom := chattest.Start(t, bin, "-addr", strings.Trim(strings.TrimPrefix(url, "http://"), "/"),
		"-host", "127.0.0.1", "custom", strconv.Itoa(customPort))
	custom.Line() // "multiport: chat server ... at ws://127.0.0.1:PORT/ws": listening
	customButton := fmt.Sprintf("Port %d", customPort)
	bob.typeInto("Port", strconv.Itoa(customPort)+"\r")
	bob.join("bob")
	bob.waitFor("the button "+customButton, fmt.Sprintf(`[...document.querySelectorAll(".server-list button")].some((b) => b.textContent === %s)`, js(customButton)))
	bob.open(url) // reload: the button is remembered, the last server reopened
	bob.waitConnected("bob")
	bob.waitFor("the room title "+customButton, textOf(".chat-head h2")+" === "+js(customButton))
	alice.typeInto("Port", strconv.Itoa(customPort)+"\r")
	alice.join("alice")
	bob.waitLog("alice joined")
	bob.say("on the custom port")
	alice.say("me too")
	bob.waitLog("me too")

	// A port with nothing there: a visible error, no button; the page goes
	// back to the server it showed.
	dead := chattest.FreePort(t)
	alice.typeInto("Port", strconv.Itoa(dead)+"\r")
	alice.typeInto("Username", "alice\r")
	alice.waitFor("an error for the dead port", textOf("#port-error")+`.includes("Cannot connect to port `+strconv.Itoa(dead)+`")`)
	if n := eval[int](alice, `document.querySelectorAll(".server-list button:not(.link)").length`); n != 4 {
		t.Errorf("%d server buttons after a failed port, want 4", n)
	}
	alice.waitFor("the room title "+customButton, textOf(".chat-head h2")+" === "+js(customButton))
	alice.waitConnected("alice")

	alice.checkContrast(append(append(multiportKinds, pageKinds...), pick(logKinds, "message", "author", "timestamp",
		"own message", "own author", "own timestamp", "avatar initials", "system line", "day", "beginning")...))
}

// waitUnread waits until the button of the server named name shows n
// unread messages: a badge with the number and the label "NAME, n
// unread", or, for none, no badge and the name alone.
func (u *user) waitUnread(name string, n int) {
	u.t.Helper()
	label, badge := name, ""
	if n > 0 {
		label, badge = fmt.Sprintf("%s, %d unread", name, n), strconv.Itoa(n)
	}
	u.waitFor(fmt.Sprintf("%q on the button of %s", label, name), fmt.Sprintf(`(() => {
		const b = [...document.querySelectorAll(".server-list button")].find((b) => b.textContent === %s);
		return b !== undefined && (b.getAttribute("aria-label") ?? b.textContent) === %s &&
			(b.dataset.unread ?? "") === %s && getComputedStyle(b, "::after").content === %s;
	})()`, js(name), js(label), js(badge), js(map[bool]string{true: js(badge), false: "none"}[n > 0])))
}

// TestUnread: a server's button counts the messages that come there while
// another is shown, clears when it is shown, and after a reload counts
// what came while the page was closed.
func TestUnread(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../multiport")
	url := startMultiport(t, bin, chattest.FreePort(t))
	servers := chatServers(t, url)
	one, two := servers[0], servers[1]
	origin := strings.TrimSuffix(url, "/")

	alice := newUser(t, browser, "alice", 1100, 720, false)
	alice.open(url)
	alice.join("alice")
	alice.click(two.Name)
	alice.join("alice")

	carol := chattest.Join(t, one.URL, origin, "carol")
	carol.SayEchoed("one", "two")
	carol.Send(map[string]string{"type": "message", "to": "alice", "body": "three, for alice"})
	carol.ReadUntil("message")
	alice.waitUnread(one.Name, 3)
	dave := chattest.Join(t, two.URL, origin, "dave")
	dave.SayEchoed("here on two") // on the server shown: not unread
	alice.waitLog("here on two")
	alice.waitUnread(two.Name, 0)
	alice.waitUnread(one.Name, 3)
	alice.say("mine on two")

	alice.click(one.Name)
	alice.waitUnread(one.Name, 0)
	alice.waitLog("three, for alice")
	if got, want := alice.logItems(), []string{"one", "two", "three, for alice"}; !cmp.Equal(got[len(got)-3:], want) {
		t.Errorf("alice's log on %s: %q, want it to end with %q", one.Name, got, want)
	}

	// The page closed, then opened again on server two: server one counts
	// what came meanwhile, and nothing from before.
	alice.click(two.Name)
	again := alice.tab("alice's next tab") // same storage
	alice.do(func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, page.Close, cdp.Empty{})
		return chromedp.Void{}, err
	})
	if f := carol.ReadUntil("leave"); f.Username != "alice" {
		t.Fatalf("carol saw %s leave, want alice", f.Username)
	}
	carol.SayEchoed("four", "five")
	alice = again
	alice.open(url)
	alice.waitConnected("alice")
	alice.waitFor("the room title "+two.Name, textOf(".chat-head h2")+" === "+js(two.Name))
	alice.waitUnread(one.Name, 2)
	alice.waitUnread(two.Name, 0)
	alice.click(one.Name)
	alice.waitUnread(one.Name, 0)
	alice.waitLog("five")
}

// port returns a free port of 127.0.0.1: preferred, if it is free and
// the test is updating the screenshots, so that they show the program's
// default ports.
func port(t *testing.T, preferred int) int {
	t.Helper()
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(preferred)); err == nil {
			ln.Close()
			return preferred
		}
	}
	return chattest.FreePort(t)
}
