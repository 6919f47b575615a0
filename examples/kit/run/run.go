// Package run holds the process plumbing shared by the example programs:
// serving HTTP on a listener with timeouts, checking the Host header,
// printing the real URL, and shutting down gracefully on SIGINT or
// SIGTERM.
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
	"slices"
	"strconv"
	"strings"
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

// Config holds the timeouts of an example's [http.Server], which bound
// every plain HTTP request and keep-alive connection. They do not bound
// WebSocket connections: the chat server clears the connection's deadlines
// at the upgrade and sets its own. A zero field means its default.
type Config struct {
	// ReadHeaderTimeout bounds reading a request's header. Zero means 5 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included, so a
	// body trickled in a byte at a time is cut. Zero means 10 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response, from the end of the
	// request's header. Zero means 30 s.
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request. Zero means 30 s.
	IdleTimeout time.Duration
}

// Defaults of Config.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
)

// HTTPServer returns the http.Server of every example program: h with the
// timeouts of cfg.
func HTTPServer(h http.Handler, cfg Config) *http.Server {
	or := func(d, def time.Duration) time.Duration {
		if d <= 0 {
			return def
		}
		return d
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       or(cfg.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      or(cfg.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       or(cfg.IdleTimeout, DefaultIdleTimeout),
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

// Serve starts serving h on ln in a new goroutine, with the
// [HTTPServer] of cfg. The hubs are the chat hubs whose servers h mounts;
// Shutdown shuts them down first.
func Serve(ln net.Listener, h http.Handler, cfg Config, hubs ...*chat.Hub) *Server {
	s := &Server{
		hs:   HTTPServer(h, cfg),
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

// HostNames returns the host names a browser may use for a server
// listening on each of hosts: a loopback host ("localhost", 127.0.0.1,
// ::1) stands for all three, and an empty or unspecified host (0.0.0.0,
// ::, all interfaces) for those and the machine's host name. IPv6
// addresses come without brackets.
func HostNames(hosts ...string) []string {
	var out []string
	add := func(h string) {
		for _, x := range out {
			if strings.EqualFold(x, h) {
				return
			}
		}
		out = append(out, h)
	}
	loopback := func() { add("localhost"); add("127.0.0.1"); add("::1") }
	for _, h := range hosts {
		ip := net.ParseIP(h)
		switch {
		case h == "" || ip != nil && ip.IsUnspecified():
			loopback()
			if name, err := os.Hostname(); err == nil {
				add(name)
			}
		case strings.EqualFold(h, "localhost") || ip != nil && ip.IsLoopback():
			loopback()
		default:
			add(h)
		}
	}
	return out
}

// hostOf returns the host name of a Host header (host[:port]), without
// port or brackets.
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// AllowHosts returns a handler that passes requests whose Host header
// names one of names (case-insensitively, whatever the port) to h and
// refuses the others with 403. Checking the name defeats DNS rebinding,
// where a hostile page's own name is re-pointed at 127.0.0.1 and the page
// is then same-origin with the server. Empty names allow any host.
func AllowHosts(names []string, h http.Handler) http.Handler {
	if len(names) == 0 {
		return h
	}
	names = slices.Clone(names)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := hostOf(r.Host)
		for _, n := range names {
			if strings.EqualFold(n, host) {
				h.ServeHTTP(w, r)
				return
			}
		}
		http.Error(w, fmt.Sprintf("host %q not allowed", r.Host), http.StatusForbidden)
	})
}

// HostPatterns returns patterns for chat.Options.AllowedHosts that allow
// each of names with any port or none, as AllowHosts does.
func HostPatterns(names ...string) []string {
	var out []string
	for _, n := range names {
		if strings.Contains(n, ":") {
			n = "[" + n + "]" // IPv6
		}
		n = Quote(n)
		out = append(out, n, n+":*")
	}
	return out
}

// Quote escapes a literal host or host:port for chat.Options.OriginPatterns
// and AllowedHosts, which are path.Match patterns: "[::1]:8080" must not be
// a character class.
func Quote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
