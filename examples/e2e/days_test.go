package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/hubchat/chat"
	"github.com/hubchat/chat/examples/internal/chattest"
)

// The log's day lines ("Today", "Yesterday", the date) and the empty
// room's line ("No messages yet — say hello").

// emulateLocale sets the page's time zone and locale, e.g. "UTC" and
// "en-US", so that the test knows what day a time is and how it reads.
func (u *user) emulateLocale(zone, locale string) {
	u.t.Helper()
	u.do(func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, t, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: locale})
		return chromedp.Void{}, err
	})
}

// dayItems returns the log as logItems does, with each day line as
// "{YYYY-MM-DD label}".
func (u *user) dayItems() []string {
	u.t.Helper()
	return eval[[]string](u, `[...(document.querySelector("[role=log]")?.children ?? [])].flatMap((li) =>
		li.classList.contains("day") ? ["{" + li.querySelector("time").getAttribute("datetime") + " " + li.textContent + "}"] :
		li.classList.contains("notice") ? ["[" + li.textContent + "]"] :
		li.classList.contains("msg") ? [li.querySelector(".body").textContent] : [])`)
}

// TestDays: a line with the day comes before the first message of each
// day, and nowhere else, however the messages come: in the history, in
// pages of older ones at the top, resumed after a reconnect, live.
func TestDays(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../static")
	db := filepath.Join(t.TempDir(), "chat.db")

	// A room with 30 messages of three days ago and 30 of yesterday, in
	// UTC, which is the browser's time zone below.
	now := time.Now().UTC()
	midday := func(daysAgo, sec int) time.Time {
		d := now.AddDate(0, 0, -daysAgo)
		return time.Date(d.Year(), d.Month(), d.Day(), 12, 0, sec, 0, time.UTC)
	}
	var msgs []chat.Message
	var older, yesterday []string
	for i := 1; i <= 30; i++ {
		older = append(older, fmt.Sprintf("three days ago %02d", i))
		msgs = append(msgs, chat.Message{ID: strconv.Itoa(i), Username: "bob", Body: older[i-1], Time: midday(3, i)})
	}
	for i := 1; i <= 30; i++ {
		yesterday = append(yesterday, fmt.Sprintf("yesterday %02d", i))
		msgs = append(msgs, chat.Message{ID: strconv.Itoa(30 + i), Username: "bob", Body: yesterday[i-1], Time: midday(1, i)})
	}
	chattest.Prefill(t, db, "lobby", msgs)
	d3 := now.AddDate(0, 0, -3)
	layout := "Monday, January 2"
	if d3.Year() != now.Year() {
		layout += ", 2006"
	}
	day3 := "{" + d3.Format("2006-01-02") + " " + d3.Format(layout) + "}"
	day1 := "{" + now.AddDate(0, 0, -1).Format("2006-01-02") + " Yesterday}"
	today := "{" + now.Format("2006-01-02") + " Today}"

	static, url := startStatic(t, bin, "127.0.0.1:0", "-db", db)
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	alice := newUser(t, browser, "alice", 1100, 720, false)
	alice.emulateLocale("UTC", "en-US")
	alice.open(url)
	alice.join("alice")
	alice.waitLog(yesterday[29])

	// The history: the last 50.
	want := append(append(append([]string{day3}, older[10:]...), day1), yesterday...)
	if diff := cmp.Diff(want, alice.dayItems()); diff != "" {
		t.Errorf("alice's log after joining (-want +got):\n%s", diff)
	}

	// Older pages: the day line moves up above the first message of its day.
	const beginning = `document.querySelector("[role=log] > li:first-child.beginning") !== null`
	for i := 0; !eval[bool](alice, beginning); i++ {
		if i == 5 {
			t.Fatalf("no beginning of the conversation after %d scrolls to the top; log: %q", i, alice.dayItems())
		}
		top := eval[string](alice, `document.querySelector("[role=log] .msg .body").textContent`)
		eval[int](alice, `document.querySelector("[role=log]").scrollTop = 0`)
		alice.waitFor("older messages or the beginning", fmt.Sprintf(`document.querySelector("[role=log] .msg .body").textContent !== %s || %s`, js(top), beginning))
	}
	want = append(append(append([]string{"[Beginning of the conversation]", day3}, older...), day1), yesterday...)
	if diff := cmp.Diff(want, alice.dayItems()); diff != "" {
		t.Errorf("alice's log scrolled to the beginning (-want +got):\n%s", diff)
	}

	// Today's first messages are resumed ones, sent while alice's server
	// was down.
	if err := static.Stop(); err != nil {
		t.Errorf("static after SIGTERM: %v, want exit status 0", err)
	}
	alice.waitFor("the status to say Disconnected", textOf("[role=status]")+`.includes("Disconnected")`)
	other, otherURL := startStatic(t, bin, "127.0.0.1:0", "-db", db)
	bob := chattest.Join(t, chattest.WSURL(otherURL)+"ws", "", "bob")
	bob.SayEchoed("today 1", "today 2")
	if err := other.Stop(); err != nil {
		t.Errorf("static after SIGTERM: %v, want exit status 0", err)
	}
	startStatic(t, bin, addr, "-db", db)
	alice.reconnectNow()
	alice.waitConnected("alice")
	alice.waitLog("2 missed messages")
	bob = chattest.Join(t, chattest.WSURL(url)+"ws", "", "bob")
	bob.SayEchoed("today 3") // live: the same day, no line
	alice.waitLog("today 3")
	want = append(want, "[2 missed messages]", today, "today 1", "today 2", "today 3")
	if diff := cmp.Diff(want, alice.dayItems()); diff != "" {
		t.Errorf("alice's log after resuming (-want +got):\n%s", diff)
	}
	alice.say("Morning, bob!")
	eval[int](alice, `document.querySelector("[role=log]").scrollTop = 1e6`)
	alice.emulateColorScheme("dark")
	alice.screenshot("dark")
}

// placeholderWatch records in window.placeholderSeen whether the empty
// room's line was ever in the page.
const placeholderWatch = `new MutationObserver(() => {
	if (document.querySelector(".placeholder")) window.placeholderSeen = true;
}).observe(document, { childList: true, subtree: true });`

// TestEmptyRoom: a room without messages says so once its history has
// come, until the first message; a room with messages never says so, not
// even while its history is on its way.
func TestEmptyRoom(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../static")
	_, url := startStatic(t, bin, "127.0.0.1:0", "-db", ":memory:")
	const placeholder = `(document.querySelector("[role=log] .placeholder")?.textContent ?? "")`

	alice := newUser(t, browser, "alice", 1100, 720, false)
	alice.open(url)
	alice.focusInput("Username") // the prompt: nothing loaded, nothing said
	if got := eval[string](alice, placeholder); got != "" {
		t.Errorf("before joining, the log says %q", got)
	}
	alice.join("alice")
	alice.waitFor("the empty room's line", placeholder+` === "No messages yet — say hello"`)
	if n := eval[int](alice, `document.querySelectorAll("[role=log] .placeholder").length`); n != 1 {
		t.Errorf("%d empty room lines, want 1", n)
	}
	alice.checkContrast(placeholderKinds)

	bob := chattest.Join(t, chattest.WSURL(url)+"ws", "", "bob")
	alice.waitLog("bob joined")
	if got := eval[string](alice, placeholder); got == "" {
		t.Error("a join took the empty room's line away: it is for messages")
	}
	bob.SayEchoed("hi all")
	alice.waitLog("hi all")
	if got := eval[string](alice, placeholder); got != "" {
		t.Errorf("after the first message, the log still says %q", got)
	}

	// carol comes to a room with a message: the line never shows.
	carol := newUser(t, browser, "carol", 1100, 720, false)
	carol.onNewDocument(placeholderWatch)
	carol.open(url)
	carol.join("carol")
	carol.waitLog("hi all")
	bob.SayEchoed("hello again")
	carol.waitLog("hello again")
	if eval[bool](carol, `window.placeholderSeen === true`) {
		t.Error("carol's page said the room was empty, which it never was")
	}
}
