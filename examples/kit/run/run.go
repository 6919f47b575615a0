// Package run holds the process plumbing shared by the example programs:
// serving HTTP on a listener, printing the real URL, and shutting down
// gracefully on SIGINT or SIGTERM.
package run

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hubchat/chat"
)

// ShutdownTimeout bounds a graceful shutdown started by a signal.
const ShutdownTimeout = 10 * time.Second

// Main runs fn with a context that is cancelled on SIGINT or SIGTERM. If fn
// returns an error, Main prints it to stderr and exits with status 1;
// [flag.ErrHelp] (the usage was asked for and printed) exits with 0.
func Main(fn func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := fn(ctx)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// Server serves HTTP on one listener. Shutting it down first shuts down its
// hubs, which closes their WebSocket clients with 1001 (going away), since
// [http.Server.Shutdown] does not touch hijacked connections. Use [Serve];
// the zero Server is not usable. Its methods are safe for concurrent use.
type Server struct {
	hs   *http.Server
	ln   net.Listener
	hubs []*chat.Hub
	done chan struct{} // closed when Serve has returned
	err  error         // Serve's error, other than http.ErrServerClosed; set before done is closed
}

// Serve starts serving h on ln in a new goroutine. The hubs are the chat
// hubs whose servers h mounts; Shutdown shuts them down first.
func Serve(ln net.Listener, h http.Handler, hubs ...*chat.Hub) *Server {
	s := &Server{
		hs:   &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		hubs: hubs,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Port returns the TCP port the server listens on.
func (s *Server) Port() int { return Port(s.ln.Addr()) }

// Done returns a channel that is closed when the server has stopped serving,
// after Shutdown or because of an error, which Err then returns.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns the error that stopped the server, or nil. It is only
// meaningful once Done is closed.
func (s *Server) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Shutdown shuts down the hubs (each closes its clients with 1001 and waits
// for them), then the HTTP server, and waits until serving has stopped. It
// returns the first error, or ctx.Err() if ctx ends first.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, h := range s.hubs {
		if err := h.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.hs.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

// Wait blocks until ctx is done or one of the servers stops with an error,
// then calls shutdown with a context bounded by [ShutdownTimeout]. It
// returns the server's error, if any, joined with shutdown's.
func Wait(ctx context.Context, shutdown func(context.Context) error, servers ...*Server) error {
	failed := make(chan error, len(servers))
	stop := make(chan struct{})
	defer close(stop)
	for _, s := range servers {
		go func() {
			select {
			case <-s.Done():
				failed <- s.Err()
			case <-stop:
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-failed:
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	return errors.Join(err, shutdown(sctx))
}

// URL returns scheme://host:port path for a listener address. host is the
// name the user asked for (e.g. "localhost"); if it is empty the address's
// own IP is used, so the URL always carries the real port, even after
// listening on port 0.
func URL(scheme, host string, addr net.Addr, path string) string {
	if host == "" {
		if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
			host = ta.IP.String()
		} else {
			host = "localhost"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(Port(addr))) + path
}

// Port returns the port of a TCP address, or 0.
func Port(addr net.Addr) int {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.Port
	}
	return 0
}
