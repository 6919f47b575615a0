package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/hubchat/chat/examples/internal/chattest"
)

// lastMessage is an expression for the author, origin tag, "to" and body
// of the last message in the log, as "author|origin|to|body".
const lastMessage = `(() => {
	const ms = document.querySelectorAll("[role=log] .msg");
	const m = ms[ms.length - 1];
	if (!m) return "";
	const t = (css) => m.querySelector(css)?.textContent ?? "";
	return [t(".author"), t(".origin"), t(".to"), t(".body")].join("|");
})()`

// waitLast waits until the last message of u's log reads want (see
// lastMessage).
func (u *user) waitLast(want string) {
	u.t.Helper()
	u.waitFor("the last message "+js(want), lastMessage+" === "+js(want))
}

// waitServers waits until the page shows a button for each of servers.
func (u *user) waitServers(servers []string) {
	u.t.Helper()
	u.waitFor("the server buttons", fmt.Sprintf(`[...document.querySelectorAll(".server-list button")].map((b) => b.textContent).join() === %s`,
		js(strings.Join(servers, ","))))
}

// TestCrossServer: in multiport, "/msg bob@PORT" reaches bob on the chat
// server of PORT, shown as from alice tagged with her server's port, and
// alice sees her copy; bob answers the same way; an unknown server or
// user is an error for the sender alone.
func TestCrossServer(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../multiport")
	p1, p2 := chattest.FreePort(t), chattest.FreePort(t)
	url := startMultiportOn(t, bin, p1, p2, chattest.FreePort(t))
	servers := serverNames(t, url)
	p1s, p2s := strconv.Itoa(p1), strconv.Itoa(p2)

	alice := newUser(t, browser, "alice", 1100, 720, false)
	bob := newUser(t, browser, "bob", 1100, 720, false)
	alice.open(url)
	alice.join("alice") // on the first server
	bob.open(url)
	bob.waitServers(servers)
	bob.click(servers[1])
	bob.waitFor("the room title "+servers[1], textOf(".chat-head h2")+" === "+js(servers[1]))
	bob.join("bob")

	alice.typeInto("Message", "/msg bob@"+p2s+" hi across\r")
	alice.waitLast("alice||→ bob@" + p2s + " (private)|hi across")
	bob.waitLast("alice|@" + p1s + "|→ bob (private)|hi across")

	bob.typeInto("Message", "/msg alice@"+p1s+" hi back\r")
	alice.waitLast("bob|@" + p2s + "|→ alice (private)|hi back")
	bob.waitLast("bob||→ alice@" + p1s + " (private)|hi back")

	// Unknown server, unknown user: an error line for alice, nothing for bob.
	alice.typeInto("Message", "/msg bob@1 nobody there\r")
	alice.waitLog("no chat server on port 1 here")
	alice.typeInto("Message", "/msg zed@"+p2s+" nobody either\r")
	alice.waitLog(fmt.Sprintf(`no user "zed" on the chat server on port %d`, p2))
	bob.typeInto("Message", "marker\r")
	bob.waitLast("bob|||marker")
	if log := bob.logText(); strings.Contains(log, "nobody") {
		t.Errorf("bob's log shows a message that was refused: %q", log)
	}

	// A name that is an address is refused at the prompt.
	carol := newUser(t, browser, "carol", 1100, 720, false)
	carol.open(url)
	carol.typeInto("Username", "alice@"+p1s+"\r")
	carol.waitFor("the error at the prompt", textOf(".join [role=alert]")+`.includes("addresses of users of other servers")`)
}

// TestBridge: multiport -bridge makes two chat servers one room: members
// on either see each other, every message, tagged with the server it came
// from, and who is typing.
func TestBridge(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../multiport")
	p1, p2 := chattest.FreePort(t), chattest.FreePort(t)
	url := startMultiportOn(t, bin, p1, p2, chattest.FreePort(t), "-bridge", fmt.Sprintf("%d,%d", p1, p2))
	servers := serverNames(t, url)
	if len(servers) != 2 || !strings.Contains(servers[0], "bridged") || !strings.Contains(servers[1], "bridged") {
		t.Fatalf("chat servers %q, want two, bridged", servers)
	}
	p1s, p2s := strconv.Itoa(p1), strconv.Itoa(p2)

	alice := newUser(t, browser, "alice", 1100, 720, false)
	bob := newUser(t, browser, "bob (phone)", 375, 740, true)
	alice.open(url)
	alice.join("alice")
	bob.open(url)
	bob.waitServers(servers)
	bob.click(servers[1])
	bob.waitFor("the room title "+servers[1], textOf(".chat-head h2")+" === "+js(servers[1]))
	bob.join("bob")
	alice.waitLog("bob joined")
	bob.waitFor("alice in bob's users", `[...document.querySelectorAll(".users-list .name")].map((n) => n.textContent).join() === "alice,bob"`)

	alice.typeInto("Message", "hello over the bridge\r")
	alice.waitLast("alice|||hello over the bridge")
	bob.waitLast("alice|@" + p1s + "||hello over the bridge")

	bob.typeInto("Message", "hi from")
	alice.waitTyping("bob is typing…")
	bob.press(" the other side\r")
	alice.waitLast("bob|@" + p2s + "||hi from the other side")
	bob.waitLast("bob|||hi from the other side")
	if got := eval[string](alice, typingText); got != "" {
		t.Errorf("alice's typing line %q once bob's message is there", got)
	}
	bob.noHorizontalScroll()
}
