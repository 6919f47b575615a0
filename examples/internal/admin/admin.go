// Package admin is a small HTTP API to moderate a chat room from a shell,
// with curl, on a port of its own that only the local machine reaches:
//
//	curl -d user=bob -d reason=flooding localhost:8081/kick
//	curl -d user=bob -d for=1h -d reason=spam localhost:8081/ban
//	curl -d user=bob localhost:8081/unban
//	curl -d user=bob -d for=10m localhost:8081/mute
//	curl -d user=bob localhost:8081/unmute
//	curl -d user=bob -d body='Please keep it friendly.' localhost:8081/send
//
// Each endpoint calls the [chat.Hub] method of its name. Requests are
// POSTs with form fields (user; reason for kick and ban; for, a Go
// duration such as 90s or 2h, for ban and mute; body for send). Answers:
// 204 when done; 400 for a missing or invalid field, with the reason;
// 404 if the member to kick or send to is absent; 405 for another method;
// 503 once the hub has shut down.
//
// Only the machine itself may moderate: a request from a peer that is not
// a loopback address gets 403, and so does any request a browser makes
// (one with an Origin or Sec-Fetch-Site header), so that no web page the
// operator visits can post to it (cross-site request forgery, or DNS
// rebinding to 127.0.0.1). Serve it on a loopback address that no
// reverse proxy forwards to.
package admin

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hubchat/chat"
)

// maxFormBytes caps a request's form.
const maxFormBytes = 8 << 10

// Handler returns the moderation API of hub.
func Handler(hub *chat.Hub) http.Handler {
	mux := http.NewServeMux()
	handle := func(path string, act func(r *http.Request, user string) error) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
				return
			}
			if err := act(r, r.PostForm.Get("user")); err != nil {
				http.Error(w, err.Error(), status(err))
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
	}
	handle("/kick", func(r *http.Request, user string) error {
		return hub.Kick(r.Context(), user, r.PostForm.Get("reason"))
	})
	handle("/ban", func(r *http.Request, user string) error {
		d, err := duration(r)
		if err != nil {
			return err
		}
		return hub.Ban(r.Context(), user, d, r.PostForm.Get("reason"))
	})
	handle("/unban", func(r *http.Request, user string) error { return hub.Unban(r.Context(), user) })
	handle("/mute", func(r *http.Request, user string) error {
		d, err := duration(r)
		if err != nil {
			return err
		}
		return hub.Mute(r.Context(), user, d)
	})
	handle("/unmute", func(r *http.Request, user string) error { return hub.Unmute(r.Context(), user) })
	handle("/send", func(r *http.Request, user string) error {
		return hub.Send(r.Context(), user, r.PostForm.Get("body"))
	})
	return localOnly(mux)
}

// errBadRequest marks the errors of fields that hub methods do not check.
var errBadRequest = errors.New("bad request")

// duration parses the form field "for".
func duration(r *http.Request) (time.Duration, error) {
	s := r.PostForm.Get("for")
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: for=%q: want a positive duration such as 90s or 2h", errBadRequest, s)
	}
	return d, nil
}

// status is the HTTP status of a hub method's error.
func status(err error) int {
	switch {
	case errors.Is(err, chat.ErrNoSuchUser):
		return http.StatusNotFound
	case errors.Is(err, chat.ErrHubClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, errBadRequest), errors.Is(err, chat.ErrInvalidName), errors.Is(err, chat.ErrInvalidBody):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError // a Broker failed, say
}

// localOnly refuses requests from other machines and from browsers.
func localOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			http.Error(w, "admin: loopback clients only", http.StatusForbidden)
			return
		}
		if r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" {
			http.Error(w, "admin: not for browsers", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
