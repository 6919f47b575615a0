package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/hubchat/chat/examples/internal/chattest"
)

func TestMain(m *testing.M) { chattest.Main(m) }

// Time limits. Every test runs under testTimeout; every wait for the page
// under waitTimeout.
const (
	testTimeout = 3 * time.Minute
	waitTimeout = 20 * time.Second
)

// chromiumPath finds the browser: $CHROMIUM, else a chromium or chrome on
// the PATH. Without one the test is skipped, or fails when CI=true.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium found (set CHROMIUM); browser tests must run in CI")
	}
	t.Skip("no Chromium found (set CHROMIUM to its path): skipping browser tests")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile, stopped at
// cleanup, and returns its context and the test's deadline context.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	profile := t.TempDir() // removed after the browser has exited (cleanups run last-in first-out)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1100, 720),
	)
	t.Cleanup(cancelAlloc)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browserCtx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return browserCtx
}

// user is one person at one browser tab, in a browser context of its own
// (separate storage, like a separate browser profile).
type user struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu       sync.Mutex
	problems []string // uncaught exceptions and JavaScript dialogs
}

// newUser opens a tab in a new browser context with a viewport of the given
// size; mobile emulates a phone.
func newUser(t *testing.T, browser context.Context, name string, width, height int64, mobile bool) *user {
	t.Helper()
	u := &user{t: t, name: name}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext(), chromedp.WithListener(u.listen))
	t.Cleanup(func() {
		cancel()
		u.mu.Lock()
		defer u.mu.Unlock()
		for _, p := range u.problems {
			t.Errorf("%s's page: %s", name, p)
		}
	})
	u.ctx = ctx
	opts := []chromedp.EmulateViewportOption{}
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	u.do(chromedp.EmulateViewport(width, height, opts...))
	return u
}

func (u *user) listen(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		p = fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, d.Text)
		if d.Exception != nil {
			p += " " + d.Exception.Description
		}
	case *page.EventJavascriptDialogOpening:
		p = fmt.Sprintf("JavaScript %s dialog opened: %q", ev.Type, ev.Message)
	default:
		return
	}
	u.mu.Lock()
	u.problems = append(u.problems, p)
	u.mu.Unlock()
}

func (u *user) do(steps ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	if err := chromedp.Do(u.ctx, steps...); err != nil {
		u.t.Fatalf("%s: %v", u.name, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](u *user, expr string) T {
	u.t.Helper()
	v, err := chromedp.Run(u.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		u.t.Fatalf("%s: evaluating %s: %v", u.name, expr, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it is truthy.
func (u *user) waitFor(what, predicate string) {
	u.t.Helper()
	_, err := chromedp.Run(u.ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingTimeout(waitTimeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		u.t.Fatalf("%s: waiting for %s: %v\nstatus: %q\nlog: %q", u.name, what, err,
			eval[string](u, textOf("[role=status]")), eval[string](u, textOf("[role=log]")))
	}
}

// js quotes a Go string as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// textOf is an expression for the text of the first element matching a CSS
// selector, or "".
func textOf(css string) string {
	return fmt.Sprintf(`(document.querySelector(%s)?.textContent ?? "")`, js(css))
}

func (u *user) open(url string) {
	u.t.Helper()
	u.do(chromedp.Navigate(url))
}

// focusInput focuses the visible input whose label reads label, and
// empties it. Finding inputs by their labels checks that they have them.
func (u *user) focusInput(label string) {
	u.t.Helper()
	u.waitFor("a visible input labelled "+label, fmt.Sprintf(`(() => {
		const l = [...document.querySelectorAll("label")].find((l) => l.textContent.trim() === %s);
		const i = l && document.getElementById(l.htmlFor);
		if (!i || i.offsetParent === null) return false;
		i.value = "";
		i.focus();
		return document.activeElement === i;
	})()`, js(label)))
}

// typeInto types text into the input labelled label, as keystrokes.
func (u *user) typeInto(label, text string) {
	u.t.Helper()
	u.focusInput(label)
	u.do(chromedp.KeyEvent(text))
}

// press presses keys on the focused element, e.g. "\r" (Enter) or "\t".
func (u *user) press(keys string) {
	u.t.Helper()
	u.do(chromedp.KeyEvent(keys))
}

// click clicks the visible button whose text is name, with the mouse.
func (u *user) click(name string) {
	u.t.Helper()
	u.do(chromedp.Click(fmt.Sprintf(`//button[normalize-space(.)=%s]`, xpathString(name))))
}

func xpathString(s string) string {
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return `'` + s + `'`
}

// join enters a username at the prompt and waits until connected.
func (u *user) join(name string) {
	u.t.Helper()
	u.typeInto("Username", name+"\r")
	u.waitConnected(name)
}

func (u *user) waitConnected(name string) {
	u.t.Helper()
	u.waitFor("the status to say Connected as "+name,
		textOf("[role=status]")+`.includes("Connected as " + `+js(name)+`)`)
}

// say sends a message with the keyboard: type, then Enter.
func (u *user) say(text string) {
	u.t.Helper()
	u.typeInto("Message", text+"\r")
	u.waitLog(text)
}

// waitLog waits until the message log contains text.
func (u *user) waitLog(text string) {
	u.t.Helper()
	u.waitFor("the log to show "+js(text), textOf("[role=log]")+".includes("+js(text)+")")
}

func (u *user) logText() string {
	u.t.Helper()
	return eval[string](u, textOf("[role=log]"))
}

// noHorizontalScroll checks that the page fits the viewport's width.
func (u *user) noHorizontalScroll() {
	u.t.Helper()
	if w := eval[[]int](u, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		u.t.Errorf("%s: page is %d px wide in a %d px viewport", u.name, w[0], w[1])
	}
}

// screenshot saves the viewport as docs/<name>.png when UPDATE_SCREENSHOTS=1.
func (u *user) screenshot(name string) {
	u.t.Helper()
	if os.Getenv("UPDATE_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(u.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		u.t.Fatal(err)
	}
	path := filepath.Join("..", "..", "docs", name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		u.t.Fatal(err)
	}
	u.t.Logf("wrote %s", path)
}

// injection is a message body that would run script if inserted as HTML.
const injection = `<img src=x onerror=alert(1)>`

// checkInjection checks that the injection body shows literally in the log
// and created no element.
func (u *user) checkInjection() {
	u.t.Helper()
	u.waitLog(injection)
	if n := eval[int](u, `document.querySelectorAll("img").length`); n != 0 {
		u.t.Errorf("%s: %d img elements in the page, want none", u.name, n)
	}
	bodies := eval[[]string](u, `[...document.querySelectorAll("[role=log] .body")].map((b) => b.textContent)`)
	found := false
	for _, b := range bodies {
		found = found || b == injection
	}
	if !found {
		u.t.Errorf("%s: no message body reads %q; bodies: %q", u.name, injection, bodies)
	}
}
