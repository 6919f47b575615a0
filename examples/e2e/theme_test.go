package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/hubchat/chat/examples/internal/chattest"
)

// The pages' themes (webui's theme.js and chat.css): light, dark, or the
// system's, chosen with the Theme control and remembered; and the WCAG AA
// contrast of what they show, read off the computed colours in Chromium.

// emulateColorScheme makes the page's prefers-color-scheme "light" or
// "dark", as the operating system's setting would.
func (u *user) emulateColorScheme(scheme string) {
	u.t.Helper()
	u.do(func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return chromedp.Void{}, err
	})
}

// onNewDocument runs the script src at the start of every document the
// tab loads from now on, before the page's own scripts.
func (u *user) onNewDocument(src string) {
	u.t.Helper()
	u.do(func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src})
		return chromedp.Void{}, err
	})
}

// chooseTheme picks option ("System", "Light" or "Dark") in the select
// labelled Theme with the keyboard (Home, then down), and waits until the
// page shows it.
func (u *user) chooseTheme(option string) {
	u.t.Helper()
	i := slices.Index([]string{"System", "Light", "Dark"}, option)
	if i < 0 {
		u.t.Fatalf("no theme %q", option)
	}
	u.focusInput("Theme")
	u.press(kb.Home + strings.Repeat(kb.ArrowDown, i))
	u.waitFor("the theme "+option, fmt.Sprintf(`(() => {
		const s = document.querySelector(".theme select");
		return s.selectedOptions[0]?.text === %s && (document.documentElement.dataset.theme ?? "system") === %s;
	})()`, js(option), js(strings.ToLower(option))))
}

// pageScheme returns how the page looks: "dark" or "light", from the
// luminance of the body's computed background.
func (u *user) pageScheme() string {
	u.t.Helper()
	bg := eval[[]float64](u, colorJS+`rgba(getComputedStyle(document.body).backgroundColor)`)
	if luminance(rgba{bg[0], bg[1], bg[2], 1}) < 0.2 {
		return "dark"
	}
	return "light"
}

// TestThemes: the page follows the system's colour scheme until the user
// chooses Light or Dark; the choice is remembered across reloads and
// applies before the first paint.
func TestThemes(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../static")
	_, url := startStatic(t, bin, "127.0.0.1:0", "-db", ":memory:")

	alice := newUser(t, browser, "alice", 1100, 720, false)
	alice.emulateColorScheme("light")
	alice.open(url)
	alice.join("alice")
	if got := eval[string](alice, `document.querySelector(".theme select").labels[0].textContent + ": " +
		[...document.querySelector(".theme select").options].map((o) => o.text).join(", ")`); got != "Theme: System, Light, Dark" {
		t.Errorf("the theme control reads %q", got)
	}
	scheme := func(want string) {
		t.Helper()
		if got := alice.pageScheme(); got != want {
			t.Errorf("the page is %s, want %s (theme %q)", got, want,
				eval[string](alice, `document.documentElement.dataset.theme ?? "system"`))
		}
	}

	// System: the page follows the emulated setting, both ways.
	scheme("light")
	alice.emulateColorScheme("dark")
	scheme("dark")
	alice.emulateColorScheme("light")
	scheme("light")

	// Dark, chosen: whatever the system says, and after a reload, whose
	// first frame is dark already.
	alice.chooseTheme("Dark")
	scheme("dark")
	alice.onNewDocument(`requestAnimationFrame(() => {
		window.firstFrame = getComputedStyle(document.documentElement).colorScheme + " " +
			(document.documentElement.dataset.theme ?? "system");
	});`)
	alice.open(url)
	alice.waitConnected("alice")
	alice.waitFor("the first frame", `window.firstFrame !== undefined`)
	if got := eval[string](alice, `window.firstFrame`); got != "dark dark" {
		t.Errorf("the first frame after a reload had color-scheme and theme %q, want dark dark", got)
	}
	if got := eval[string](alice, `document.querySelector(".theme select").selectedOptions[0].text`); got != "Dark" {
		t.Errorf("after a reload the theme control shows %q, want Dark", got)
	}
	scheme("dark")

	// Light, chosen, on a dark system.
	alice.emulateColorScheme("dark")
	alice.chooseTheme("Light")
	scheme("light")
	alice.open(url)
	alice.waitConnected("alice")
	if got := eval[string](alice, `window.firstFrame`); got != "light light" {
		t.Errorf("the first frame after a reload had color-scheme and theme %q, want light light", got)
	}
	scheme("light")

	// Back to System: nothing is stored, the system decides.
	alice.chooseTheme("System")
	scheme("dark")
	if got := eval[string](alice, `localStorage.getItem("hubchat.theme") ?? "none"`); got != "none" {
		t.Errorf("with System chosen, hubchat.theme is %q in localStorage, want none", got)
	}
	alice.open(url)
	alice.waitConnected("alice")
	scheme("dark")
	alice.emulateColorScheme("light")
	scheme("light")
}

// TestContrast: every kind of line and control of the page reaches the
// WCAG AA contrast in the light and the dark theme, chosen or the
// system's.
func TestContrast(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../static")
	dir := writeFiles(t, map[string][]byte{"notes.txt": []byte("Buy milk.\n")})
	static, url := startStatic(t, bin, "127.0.0.1:0", "-db", ":memory:", "-files", t.TempDir(), "-admin", "127.0.0.1:0")
	api := adminURL(t, static)
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")

	bob := chattest.Join(t, chattest.WSURL(url)+"ws", "", "bob")
	bob.SayEchoed("Hello from bob")
	alice := newUser(t, browser, "alice", 1100, 720, false)
	alice.open(url)
	alice.join("alice")
	alice.waitLog("Beginning of the conversation")
	alice.say("mine")
	alice.attach(filepath.Join(dir, "notes.txt"))
	alice.typeInto("Message", "a file\r")
	alice.fileLink("notes.txt")
	bob.Send(map[string]string{"type": "typing"})
	alice.waitFor("bob typing", textOf(".chat-foot > .typing")+`.includes("bob")`)
	alice.typeInto("Message", "/msg bob a secret\r")
	alice.waitLog("→ bob (private)")
	bob.Send(map[string]string{"type": "message", "to": "alice", "body": "a secret back"})
	alice.waitLog("a secret back")
	alice.typeInto("Message", "/msg nobody hi\r")
	alice.waitFor("an error line", `document.querySelector("[role=log] .line.error") !== null`)
	resp, err := http.PostForm(api+"/send", map[string][]string{"user": {"alice"}, "body": {"Please keep it friendly."}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	alice.waitLog("Please keep it friendly.")

	// The server goes away: the page says so and offers to reconnect now.
	if err := static.Stop(); err != nil {
		t.Errorf("static after SIGTERM: %v, want exit status 0", err)
	}
	alice.waitFor("the Reconnect now button", `[...document.querySelectorAll("button.link")].some((b) => b.offsetParent !== null)`)
	alice.checkContrast(pick(pageKinds, "status", "link"))

	// It comes back without its messages: "Some messages were missed".
	startStatic(t, bin, addr, "-db", ":memory:")
	alice.reconnectNow()
	alice.waitConnected("alice")
	alice.waitLog("Some messages were missed")
	alice.checkContrast(append(logKinds, slices.DeleteFunc(slices.Clone(pageKinds), func(k kind) bool { return k.name == "link" })...))
}

// adminURL returns the moderation API's URL that static printed.
func adminURL(t *testing.T, p *chattest.Program) string {
	t.Helper()
	for {
		line := p.Line() // "moderation: curl -d user=NAME http://127.0.0.1:PORT/kick"
		if rest, ok := strings.CutPrefix(line, "moderation: curl -d user=NAME "); ok {
			u, err := url.Parse(rest)
			if err != nil {
				t.Fatal(err)
			}
			return u.Scheme + "://" + u.Host
		}
	}
}

// A kind of text or control of the page, as CSS finds it.
type kind struct {
	name   string
	css    string
	pseudo string // "::placeholder", "::after"; "" for the element
	// control: its boundary (border or fill) must reach 3:1 against what
	// is around it.
	control bool
}

// logKinds are the lines of the log and what is around them.
var logKinds = []kind{
	{name: "message", css: "[role=log] .msg.theirs .body"},
	{name: "author", css: "[role=log] .msg.theirs .author"},
	{name: "timestamp", css: "[role=log] .msg.theirs time"},
	{name: "own message", css: "[role=log] .msg.mine .body"},
	{name: "own author", css: "[role=log] .msg.mine .author"},
	{name: "own timestamp", css: "[role=log] .msg.mine time"},
	{name: "private, to", css: "[role=log] .msg.private .to"},
	{name: "avatar initials", css: "[role=log] .avatar"},
	{name: "system line", css: "[role=log] .line.system:not(.announce)"},
	{name: "announcement", css: "[role=log] .line.announce > span"},
	{name: "announcement time", css: "[role=log] .line.announce time"},
	{name: "error", css: "[role=log] .line.error"},
	{name: "notice", css: "[role=log] .line.notice:not(.beginning)"},
	{name: "beginning", css: "[role=log] .line.notice.beginning"},
	{name: "day", css: "[role=log] .line.day time"},
	{name: "file link", css: "[role=log] a.file .file-name"},
	{name: "file size", css: "[role=log] a.file .file-size"},
}

// pageKinds are the panel's other parts and the page's.
var pageKinds = []kind{
	{name: "heading", css: ".app-head h1"},
	{name: "room title", css: ".chat-head h2"},
	{name: "status", css: ".status-text"},
	{name: "link", css: "button.link"},
	{name: "users heading", css: ".users h3"},
	{name: "user", css: ".user .name"},
	{name: "you", css: ".user .you"},
	{name: "typing", css: ".chat-foot > .typing"},
	{name: "input", css: ".composer input", control: true},
	{name: "input placeholder", css: ".composer input", pseudo: "::placeholder"},
	{name: "button", css: ".composer button", control: true},
	{name: "theme label", css: ".theme label"},
	{name: "theme select", css: ".theme select", control: true},
}

// multiportKinds are the parts of the multiport page around the panel.
var multiportKinds = []kind{
	{name: "subtitle", css: ".app-head p"},
	{name: "server", css: `.server-list button[aria-pressed=false]`, control: true},
	{name: "selected server", css: `.server-list button[aria-pressed=true]`, control: true},
	{name: "unread count", css: ".server-list button[data-unread]", pseudo: "::after"},
	{name: "forget link", css: ".server-list button.link"},
	{name: "port label", css: ".custom-port label"},
	{name: "port input", css: "#port", control: true},
	{name: "connect button", css: ".custom-port button", control: true},
	{name: "port error", css: "#port-error"},
}

// pick returns the kinds of kinds with the given names.
func pick(kinds []kind, names ...string) []kind {
	var out []kind
	for _, k := range kinds {
		if slices.Contains(names, k.name) {
			out = append(out, k)
		}
	}
	if len(out) != len(names) {
		panic(fmt.Sprintf("pick %q: found %d", names, len(out)))
	}
	return out
}

// placeholderKinds is the empty room's line.
var placeholderKinds = []kind{{name: "empty room", css: "[role=log] .line.placeholder"}}

// colorJS defines rgba(color), which turns any CSS colour into sRGB
// [r, g, b, a] (0-255, a 0-1) by painting it.
const colorJS = `var rgba = rgba || (() => {
	const cx = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
	return (c) => {
		cx.clearRect(0, 0, 1, 1);
		cx.fillStyle = "#000";
		cx.fillStyle = c;
		cx.fillRect(0, 0, 1, 1);
		const d = cx.getImageData(0, 0, 1, 1).data;
		return [d[0], d[1], d[2], d[3] / 255];
	};
})();
`

// sampleJS reads, for each kind of the JSON array kinds, the visible
// elements it finds (at most 3): their text colour (its alpha times the
// opacity of the element and its ancestors), the background colours from
// it outwards up to the first opaque one, the font's size and weight and,
// for controls, the border's colour and the backgrounds around it.
const sampleJS = colorJS + `((kinds) => {
	const backgrounds = (e, pseudo) => {
		const out = [];
		if (pseudo) {
			const c = rgba(getComputedStyle(e, pseudo).backgroundColor);
			if (c[3] > 0) out.push(c);
			if (c[3] >= 1) return out;
		}
		for (let n = e; n; n = n.parentElement) {
			const c = rgba(getComputedStyle(n).backgroundColor);
			if (c[3] > 0) out.push(c);
			if (c[3] >= 1) break;
		}
		return out;
	};
	const opacity = (e) => {
		let o = 1;
		for (let n = e; n; n = n.parentElement) o *= Number(getComputedStyle(n).opacity);
		return o;
	};
	const out = {};
	for (const k of kinds) {
		const els = [...document.querySelectorAll(k.css)].filter((e) => e.getClientRects().length > 0 &&
			getComputedStyle(e).visibility === "visible").slice(0, 3);
		out[k.name] = els.map((e) => {
			const cs = getComputedStyle(e, k.pseudo || null);
			const fg = rgba(cs.color);
			fg[3] *= opacity(e);
			const s = { text: (k.pseudo === "::placeholder" ? e.placeholder : k.pseudo ? cs.content : e.textContent).trim().slice(0, 40),
				fg, bg: backgrounds(e, k.pseudo), size: parseFloat(cs.fontSize), weight: Number(cs.fontWeight) };
			if (k.control) {
				const ecs = getComputedStyle(e);
				s.border = parseFloat(ecs.borderTopWidth) > 0 ? rgba(ecs.borderTopColor) : [0, 0, 0, 0];
				s.fill = rgba(ecs.backgroundColor);
				s.around = backgrounds(e.parentElement, null);
			}
			return s;
		});
	}
	return out;
})`

// sample is what sampleJS reads of one element.
type sample struct {
	Text   string
	FG     rgba
	BG     []rgba
	Size   float64
	Weight float64
	Border rgba
	Fill   rgba
	Around []rgba
}

// rgba is a colour in sRGB, 0-255, with its alpha, 0-1.
type rgba [4]float64

func (c *rgba) UnmarshalJSON(b []byte) error {
	var v []float64
	if err := json.Unmarshal(b, &v); err != nil || len(v) != 4 {
		return fmt.Errorf("colour %s: want [r, g, b, a]", b)
	}
	copy(c[:], v)
	return nil
}

// over composites c over the opaque colour bg.
func over(c, bg rgba) rgba {
	a := c[3]
	return rgba{c[0]*a + bg[0]*(1-a), c[1]*a + bg[1]*(1-a), c[2]*a + bg[2]*(1-a), 1}
}

// flatten returns the opaque colour that the backgrounds bgs, innermost
// first and ending with an opaque one, make together; ok is false if none
// of them is opaque.
func flatten(bgs []rgba) (c rgba, ok bool) {
	if len(bgs) == 0 || bgs[len(bgs)-1][3] < 1 {
		return rgba{}, false
	}
	c = bgs[len(bgs)-1]
	for i := len(bgs) - 2; i >= 0; i-- {
		c = over(bgs[i], c)
	}
	return c, true
}

// luminance is the relative luminance of WCAG 2.
func luminance(c rgba) float64 {
	lin := func(v float64) float64 {
		v /= 255
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c[0]) + 0.7152*lin(c[1]) + 0.0722*lin(c[2])
}

// contrast is the WCAG 2 contrast ratio of two opaque colours.
func contrast(a, b rgba) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// themeModes are the ways a page can look: a theme chosen against the
// system's scheme, and the system's.
var themeModes = []struct {
	choice, system, want string
}{
	{"Light", "dark", "light"},
	{"Dark", "light", "dark"},
	{"System", "light", "light"},
	{"System", "dark", "dark"},
}

// checkContrast checks, in each of themeModes, that the page shows every
// kind of kinds and that each reaches the WCAG AA contrast: 4.5:1 for
// text, 3:1 for large text (24 px, or 18.66 px bold) and for a control's
// boundary. It leaves the page's theme as the system's, light.
func (u *user) checkContrast(kinds []kind) {
	u.t.Helper()
	arg, err := json.Marshal(func() []map[string]any {
		var out []map[string]any
		for _, k := range kinds {
			out = append(out, map[string]any{"name": k.name, "css": k.css, "pseudo": k.pseudo, "control": k.control})
		}
		return out
	}())
	if err != nil {
		u.t.Fatal(err)
	}
	for _, m := range themeModes {
		u.emulateColorScheme(m.system)
		u.chooseTheme(m.choice)
		mode := fmt.Sprintf("%s theme, system %s", m.choice, m.system)
		if got := u.pageScheme(); got != m.want {
			u.t.Errorf("%s: %s: the page is %s, want %s", u.name, mode, got, m.want)
		}
		samples := eval[map[string][]sample](u, sampleJS+"("+string(arg)+")")
		lowest, what := math.Inf(1), ""
		for _, k := range kinds {
			if len(samples[k.name]) == 0 {
				u.t.Errorf("%s: %s: no %s (%s%s) shown", u.name, mode, k.name, k.css, k.pseudo)
			}
			for _, s := range samples[k.name] {
				if r := u.checkSample(mode, k, s); r < lowest {
					lowest, what = r, k.name
				}
			}
		}
		u.t.Logf("%s: %s: %d kinds, the lowest text contrast %.2f:1 (%s)", u.name, mode, len(kinds), lowest, what)
	}
	u.emulateColorScheme("light")
	u.chooseTheme("System")
}

// checkSample checks the contrast of one element of kind k and returns
// that of its text.
func (u *user) checkSample(mode string, k kind, s sample) float64 {
	u.t.Helper()
	bg, ok := flatten(s.BG)
	if !ok {
		u.t.Errorf("%s: %s: %s %q: no opaque background behind it", u.name, mode, k.name, s.Text)
		return 0
	}
	min := 4.5
	if s.Size >= 24 || s.Size >= 18.66 && s.Weight >= 700 {
		min = 3
	}
	r := contrast(over(s.FG, bg), bg)
	if r < min {
		u.t.Errorf("%s: %s: %s %q: contrast %.2f:1, want %.1f:1 (colour %v on %v)", u.name, mode, k.name, s.Text, r, min, s.FG, bg)
	}
	if !k.control {
		return r
	}
	around, ok := flatten(s.Around)
	if !ok {
		u.t.Errorf("%s: %s: %s %q: no opaque background around it", u.name, mode, k.name, s.Text)
		return r
	}
	fill := over(s.Fill, around)
	edge := max(contrast(over(s.Border, fill), around), contrast(fill, around))
	if edge < 3 {
		u.t.Errorf("%s: %s: %s %q: its boundary has a contrast of %.2f:1 against what is around it, want 3:1 (border %v, fill %v, around %v)",
			u.name, mode, k.name, s.Text, edge, s.Border, s.Fill, around)
	}
	return r
}
