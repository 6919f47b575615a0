//go:build !nohubchat

package main

import (
	"net/http"

	chat "github.com/hubchat/chat"
)

func init() {
	servers["hubchat"] = func(mux *http.ServeMux) error {
		// Benchmarks flood the room from few connections, so rate limiting
		// and history (which would add per-joiner work) are off, and the
		// queue is generous so that no client is dropped as too slow.
		hub := chat.NewHub(chat.Options{
			RateLimit:   -1,
			HistorySize: -1,
			SendQueue:   envInt(hubchatSendQueueEnv, 4096),
		})
		mux.Handle("/ws", chat.NewServer(hub))
		return nil
	}
}
