package main

import (
	_ "embed"
	"net/http"
)

// The page is a stand-in until the shared browser client of the examples
// (examples/internal/webui, via staticapp) moves to an importable path.
//
//go:embed page.html
var page []byte

func pageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(page)
	})
}
