package main

import (
	"net/http"

	"github.com/olahol/melody"
)

// The melody target is melody's broadcast chat: every message received is
// passed to Broadcast.
func init() {
	servers["melody"] = func(mux *http.ServeMux) error {
		m := melody.New()
		m.Config.MaxMessageSize = 4096 // default 512; bodies may be padded
		m.HandleMessage(func(_ *melody.Session, msg []byte) {
			m.Broadcast(msg) //nolint:errcheck // fails only after Close
		})
		mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
			m.HandleRequest(w, r) //nolint:errcheck // the upgrader has answered
		})
		return nil
	}
}
