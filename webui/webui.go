// Package webui serves a browser client for the chat rooms of package
// [github.com/hubchat/chat]: one page that asks for a username, joins the
// room, and shows the messages, the members and the connection status,
// reconnecting with back-off when the connection drops.
//
// The page loses no message it could have shown. It reconnects with
// ?since= the last message it showed (one per server, for pages that
// switch between servers) and shows what it missed under a line "3 missed
// messages"; when the room cannot reach back that far ("resume":false: a
// server restarted without its Store, or too many missed) it keeps what it
// showed and goes on under a line "Some messages were missed". Scrolling
// to the top of the log loads the page of messages before the oldest one
// shown, until "Beginning of the conversation". See "Resume and older
// pages" in the package doc of [github.com/hubchat/chat].
//
// While the user types a message, the page sends typing frames (at most
// one every 2 s; none for a /msg), and it shows who else is typing under
// the log: "alice is typing…", "alice and bob are typing…" or "Several
// people are typing…", each until that member's message arrives or 4 s
// pass without a new notice. Messages from elsewhere (another server of a
// bridged room, or a private message from another server, written
// "/msg bob@8082 hi" in the multiport example) are tagged with their
// origin, e.g. "@8082". See "Typing" and "Several servers, one room" in
// the package doc of [github.com/hubchat/chat].
//
// Mount [Handler] beside the room's [github.com/hubchat/chat.Server],
// which the page expects at "ws" relative to itself:
//
//	mux.Handle("/ws", chat.NewServer(hub))
//	mux.Handle("/", webui.Handler()) // the page at /, the chat at /ws
//
// or, under a prefix, http.StripPrefix("/lobby", webui.Handler()) at
// "/lobby/" with the chat.Server at "/lobby/ws".
//
// The client is four files, embedded in the package: index.html, chat.js
// (no dependencies, no build step), chat.css, which lays the page out for
// desktops and phones alike, and theme.js. chat.js mounts a chat panel on
// every element with a data-hubchat-ws attribute (the WebSocket URL,
// absolute or relative to the page; data-hubchat-title names the room) and
// exposes window.HubChat for pages that drive panels themselves.
// [PageHandler] serves such a page of your own with the client's files.
//
// The log shows the day ("Today", "Yesterday", or the date, in the
// browser's time zone) above the first message of each day, and "No
// messages yet — say hello" in an empty room, once its history has come.
//
// The page has a light and a dark theme, and follows the system's
// (prefers-color-scheme) unless the user chooses one with the Theme
// control; the choice is remembered in localStorage. theme.js, loaded as a
// plain script in the head (<script src="theme.js"></script>, before
// chat.css), applies it before the page is first painted, so that a dark
// page never flashes light, and mounts the control on every element with
// a data-hubchat-theme attribute. Text in both themes reaches the WCAG AA
// contrast of 4.5:1 against its background, and controls' boundaries 3:1.
//
// Text from the network is only ever inserted as text, never as HTML, and
// every response carries a Content-Security-Policy that allows the page's
// own scripts and styles and nothing inline, so that a message cannot run
// script even through a bug of the page.
//
// With file sharing on (chat.Options.Files, chat.Hub.FilesHandler), the
// composer has an attach button; a file may also be pasted or dropped. It
// is uploaded at once, with its progress shown, and goes with the next
// message. Images (PNG, JPEG, GIF, WebP) show as previews, other files as
// download links with their name and size. The policy lets the page load
// images from, and upload to, its own host on any port, so that a page
// may share files with chat servers on other ports, as the multiport
// example's does.
//
// Members with a public profile (chat.Identity's Display and Avatar, which
// the server's chat.Options.Authenticate sets) are shown by their display
// name followed by their username, which is what identifies them, with
// their avatar if it is an https URL (else their initials). A page whose
// main element has the attribute data-hubchat-auth is for signed-in users:
// its panel connects without asking for a username, since the server
// takes it from the request (a cookie).
package webui

import (
	"embed"
	"errors"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed index.html chat.js chat.css theme.js
var client embed.FS

// FS returns the client's files at the root of a file system: index.html,
// chat.js, chat.css and theme.js.
func FS() fs.FS { return client }

// contentSecurityPolicy returns the policy of a response to r: only the
// page's own scripts and styles, so that even a rendering bug cannot run
// script from a chat message; WebSockets to any host (a page may talk to
// chat servers on other ports); images over https, for the members'
// avatars (chat.Identity.Avatar, which the server's Authenticate sets,
// never a client); and images and uploads (requests) to the page's own
// host on any port, for the shared files of chat servers on other ports
// (chat.Hub.FilesHandler).
func contentSecurityPolicy(r *http.Request) string {
	host := ""
	if h := hostOnly(r.Host); h != "" {
		host = " " + h + ":*"
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; " +
		"img-src 'self' data: https:" + host + "; connect-src 'self' ws: wss:" + host + "; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// hostOnly returns the host name of hostport, the request's Host, if it is
// a name or IPv4 address a policy can name (letters, digits, '-' and
// '.'), else "".
func hostOnly(hostport string) string {
	host := hostport
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	if host == "" || len(host) > 253 {
		return ""
	}
	for i := range len(host) {
		switch c := host[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.':
		default:
			return "" // an IPv6 literal, or not a host name
		}
	}
	return host
}

// Handler returns a handler that serves the client, index.html at "/" and
// chat.js, chat.css and theme.js beside it, to GET and HEAD requests;
// other methods get 405 and unknown paths 404. The page connects to the
// chat endpoint "ws" relative to its own URL. It is PageHandler(nil).
func Handler() http.Handler { return PageHandler(nil) }

// PageHandler is [Handler] for a page of your own: it serves the files of
// page and, where page has no file of that name, the client's, so that
// page supplies index.html (and any script and style of its own) and
// shares chat.js, chat.css and theme.js. A nil page serves the client
// alone. Every response carries the strict Content-Security-Policy of the
// package doc: a page's scripts and styles must be files, not inline.
func PageHandler(page fs.FS) http.Handler {
	var files fs.FS = client
	if page != nil {
		files = overlay{page, client}
	}
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy(r))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}

// overlay is a file system made of layers: a name is looked up in each in
// turn, and the first that has it wins.
type overlay []fs.FS

func (o overlay) Open(name string) (fs.File, error) {
	for _, layer := range o {
		f, err := layer.Open(name)
		if !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}
