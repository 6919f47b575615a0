package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/hubchat/chat/examples/internal/chattest"
	"github.com/hubchat/chat/examples/internal/multiportapp"
	"github.com/hubchat/chat/examples/kit/run"
)

// serveMultiport runs the multiport app as the program does, on free ports
// of 127.0.0.1: the main server, two chat servers, and one allowed port for
// the UI. It returns the main URL and the app.
func serveMultiport(t *testing.T, allow int) (string, *multiportapp.App) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(preferredPort(8080)))
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	app := multiportapp.New(multiportapp.Config{
		Host:    "127.0.0.1",
		Origins: multiportapp.Origins(run.Port(ln.Addr()), "127.0.0.1"),
		Allow:   multiportapp.PortRange{First: allow, Last: allow},
	})
	main := run.Serve(ln, app.Handler(), run.Config{})
	t.Cleanup(func() {
		ctx := context.Background()
		if err := app.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := main.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	for _, port := range []int{preferredPort(8081), preferredPort(8082)} {
		_, err := app.Start(port)
		if errors.Is(err, multiportapp.ErrPortInUse) {
			_, err = app.Start(0)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return run.URL("http", "127.0.0.1", ln.Addr(), "/"), app
}

func TestMultiport(t *testing.T) {
	browser := newBrowser(t)
	allowed := preferredPort(8083)
	if allowed == 0 || !portFree(allowed) {
		allowed = chattest.FreePort(t)
	}
	url, app := serveMultiport(t, allowed)
	s := app.Servers()
	server1, server2 := s[0].Name, s[1].Name

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

	// Back on server 1, the name is remembered: no prompt.
	alice.click(server1)
	alice.waitConnected("alice")
	alice.waitLog("still on one")

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
	if n := len(app.Servers()); n != 3 {
		t.Errorf("%d chat servers, want 3", n)
	}

	// HTML in a body is text, on the phone too.
	alice.say(injection)
	alice.checkInjection()
	bob.checkInjection()
	bob.noHorizontalScroll()
	alice.screenshot("multiport")

	// A port the main server may not start a server on, where a chat server
	// already runs (as with "multiport custom PORT"): the page connects to
	// it directly, adds a button once joined and remembers it.
	other := multiportapp.New(multiportapp.Config{
		Host:    "127.0.0.1",
		Origins: multiportapp.Origins(run.Port(mustAddr(t, url)), "127.0.0.1"),
	})
	t.Cleanup(func() { other.Shutdown(context.Background()) })
	custom, err := other.Start(0)
	if err != nil {
		t.Fatal(err)
	}
	customButton := fmt.Sprintf("Port %d", custom.Port)
	bob.typeInto("Port", strconv.Itoa(custom.Port)+"\r")
	bob.join("bob")
	bob.waitFor("the button "+customButton, fmt.Sprintf(`[...document.querySelectorAll(".server-list button")].some((b) => b.textContent === %s)`, js(customButton)))
	bob.open(url) // reload: the button is remembered, the last server reopened
	bob.waitConnected("bob")
	bob.waitFor("the room title "+customButton, textOf(".chat-head h2")+" === "+js(customButton))

	// A port with nothing there: a visible error, no button.
	dead := chattest.FreePort(t)
	alice.typeInto("Port", strconv.Itoa(dead)+"\r")
	alice.typeInto("Username", "alice\r")
	alice.waitFor("an error for the dead port", textOf("#port-error")+`.includes("Cannot connect to port `+strconv.Itoa(dead)+`")`)
	if n := eval[int](alice, `document.querySelectorAll(".server-list button:not(.link)").length`); n != 3 {
		t.Errorf("%d server buttons after a failed port, want 3", n)
	}
}

// preferredPort returns port when updating the screenshots, so that they
// show the program's default ports, and 0 (any free port) otherwise.
func preferredPort(port int) int {
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		return port
	}
	return 0
}

// portFree reports whether a port of 127.0.0.1 is free.
func portFree(port int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// mustAddr returns the TCP address of an http:// URL.
func mustAddr(t *testing.T, url string) net.Addr {
	t.Helper()
	addr, err := net.ResolveTCPAddr("tcp", strings.Trim(strings.TrimPrefix(url, "http://"), "/"))
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
