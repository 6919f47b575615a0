//go:build !nohubchat

package main

import (
	"net/http"
	"os"

	chat "github.com/hubchat/chat"
)

func init() {
	servers["hubchat"] = func(mux *http.ServeMux) error {
		// Benchmarks flood the room from few connections, so rate limiting
		// and history (which would add per-joiner work) are off, and the
		// queue is generous so that no client is dropped as too slow.
		opts := chat.Options{
			RateLimit:   -1,
			HistorySize: -1,
			SendQueue:   envInt(hubchatSendQueueEnv, 4096),
		}
		if name := os.Getenv(hubchatStoreEnv); name != "" {
			// The huge workload restarts the server: its clients resume.
			st, err := openFileStore(name)
			if err != nil {
				return err
			}
			opts.Store = st
		}
		mux.Handle("/ws", chat.NewServer(chat.NewHub(opts)))
		return nil
	}
}
