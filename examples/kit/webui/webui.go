// Package webui serves the browser client shared by the example programs.
//
// chat.js and chat.css hold everything the pages have in common: joining
// with a username, the message log, avatars, the users list, the connection
// status and reconnecting with back-off. Each program supplies only its own
// page (an fs.FS with index.html and any page script) to [Handler].
//
// chat.js mounts a chat panel on every element with a data-hubchat-ws
// attribute (the WebSocket URL, relative URLs allowed), and exposes
// window.HubChat for pages that drive the panel themselves.
package webui

import (
	"embed"
	"errors"
	"io/fs"
	"net/http"
)

//go:embed chat.js chat.css
var shared embed.FS

// Shared returns the shared assets, chat.js and chat.css, at the root of the
// file system.
func Shared() fs.FS { return shared }

// contentSecurityPolicy allows only the page's own scripts and styles, so
// that even a rendering bug cannot run script from a chat message, and
// WebSockets to any host (the multiport page talks to other ports).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

// Handler returns a handler for GET and HEAD requests that serves the files
// of page (index.html at "/") and, where page has no such file, the shared
// assets. Every response carries a strict Content-Security-Policy.
func Handler(page fs.FS) http.Handler {
	files := http.FileServerFS(overlay{page, shared})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
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
