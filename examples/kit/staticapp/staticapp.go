// Package staticapp builds the HTTP handler of the static example: one chat
// room at /ws and the browser client at /. It lives outside the program so
// that tests, including the browser tests in examples/e2e, can run it
// in-process on any port.
package staticapp

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/examples/kit/webui"
)

//go:embed page
var page embed.FS

// App is the static example: one [chat.Hub] behind one [chat.Server]. Use
// [New]; the zero App is not usable.
type App struct {
	hub     *chat.Hub
	handler http.Handler
}

// New returns the app, with its hub configured by opts.
func New(opts chat.Options) *App {
	hub := chat.NewHub(opts)
	sub, err := fs.Sub(page, "page")
	if err != nil {
		panic(err) // the embedded directory is always there
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", chat.NewServer(hub))
	mux.Handle("/", webui.Handler(sub))
	return &App{hub: hub, handler: mux}
}

// Handler returns the app's handler: the client at GET /, the chat
// endpoint at /ws (?username=).
func (a *App) Handler() http.Handler { return a.handler }

// Hub returns the app's chat hub. Shut it down before the http.Server that
// serves Handler, so that clients get a 1001 close.
func (a *App) Hub() *chat.Hub { return a.hub }
