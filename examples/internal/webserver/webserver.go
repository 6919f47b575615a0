// Package webserver holds what the example programs share about serving
// HTTP and is not worth a library API: an http.Server with timeouts, the
// Host allowlist that defeats DNS rebinding, and the URLs they print.
package webserver

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ShutdownTimeout bounds a graceful shutdown: the chat hubs' (each closes
// its WebSockets with 1001 and waits for them) and the HTTP servers'.
const ShutdownTimeout = 10 * time.Second

// Timeouts of the http.Server of [New]. They bound every plain HTTP
// request and keep-alive connection, not WebSocket connections: a
// chat.Server clears the connection's deadlines at the upgrade and sets
// its own (chat.Options.ReadTimeout, WriteTimeout, pings).
const (
	// ReadHeaderTimeout bounds reading a request's header.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds reading a whole request, body included, so a
	// body trickled in a byte at a time is cut.
	ReadTimeout = 10 * time.Second
	// WriteTimeout bounds writing a response, from the end of the
	// request's header.
	WriteTimeout = 30 * time.Second
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request.
	IdleTimeout = 30 * time.Second
)

// UploadTimeout bounds reading an upload (a POST to a chat hub's
// FilesHandler), in place of ReadTimeout: 10 MiB, the default cap, at 100
// KB/s.
const UploadTimeout = 2 * time.Minute

// Files returns h, a chat hub's FilesHandler, with UploadTimeout to read
// each upload's body instead of ReadTimeout.
func Files(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(UploadTimeout))
		}
		h.ServeHTTP(w, r)
	})
}

// New returns the http.Server of every example program: h with the
// timeouts above. Serve it on a listener; on shutdown, shut the chat hubs
// down first, since [http.Server.Shutdown] leaves WebSockets alone.
func New(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
	}
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
