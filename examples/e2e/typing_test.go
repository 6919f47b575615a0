package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/hubchat/chat/examples/internal/chattest"
)

// typingText is an expression for the panel's "… is typing" line.
var typingText = textOf(".chat-foot .typing")

// waitTyping waits until u's typing line reads want.
func (u *user) waitTyping(want string) {
	u.t.Helper()
	u.waitFor("the typing line "+js(want), typingText+" === "+js(want))
}

// TestTyping: typing shows in the others' panels ("alice is typing…",
// "alice and bob are typing…", "Several people are typing…"), never in
// the typist's own, and goes after 4 s without news, or at once when the
// typist's message arrives.
func TestTyping(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../static")
	_, url := startStatic(t, bin, "127.0.0.1:0")

	var users []*user
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		u := newUser(t, browser, name, 1100, 720, false)
		u.open(url)
		u.join(name)
		users = append(users, u)
	}
	alice, bob, carol, dave := users[0], users[1], users[2], users[3]
	alice.waitLog("dave joined")

	// Three type: the fourth sees "Several people"; one of them sees the
	// other two, not itself.
	alice.typeInto("Message", "Hel")
	carol.waitTyping("alice is typing…")
	bob.typeInto("Message", "Hi a")
	carol.waitTyping("alice and bob are typing…")
	dave.typeInto("Message", "Hey")
	carol.waitTyping("Several people are typing…")
	alice.waitFor("bob and dave typing, in either order", `["bob and dave are typing…", "dave and bob are typing…"].includes(`+typingText+`)`)

	// Nobody types any more: the line empties 4 s after the last notice.
	shown := time.Now()
	carol.waitTyping("")
	if d := time.Since(shown); d < 3*time.Second {
		t.Errorf("the typing line emptied %v after the notices, want about 4 s", d)
	}

	// Alice types again, then sends: her message ends it at once.
	alice.press("lo")
	bob.waitTyping("alice is typing…")
	alice.press("\r")
	bob.waitLog("Hello")
	if got := eval[string](bob, typingText); got != "" {
		t.Errorf("bob's typing line %q once alice's message is there, want it empty", got)
	}
	if got := eval[string](alice, typingText); strings.Contains(got, "alice") {
		t.Errorf("alice sees herself typing: %q", got)
	}

	// A /msg is nobody else's business: no notice. Dave records every
	// text of his typing line; alice's message, sent once she has carol's,
	// comes after any notice carol might have caused.
	eval[bool](dave, `(() => {
		const line = document.querySelector(".chat-foot .typing");
		window.typingSeen = [];
		new MutationObserver(() => window.typingSeen.push(line.textContent)).observe(line, { childList: true, characterData: true, subtree: true });
		return true;
	})()`)
	carol.typeInto("Message", "/msg alice secret\r")
	alice.waitLog("secret")
	alice.say("done")
	dave.waitLog("done")
	for _, line := range eval[[]string](dave, `window.typingSeen`) {
		if strings.Contains(line, "carol") {
			t.Errorf("dave's typing line showed %q while carol wrote a /msg", line)
		}
	}
}
