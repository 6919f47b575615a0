// Command example serves one chat room shared through Redis: run it twice,
// on two ports, and the browser windows connected to either form one chat.
//
//	redis-server --port 6379 --save '' --appendonly no   # or any Redis ≥ 6.2
//	go run ./example -addr localhost:8080 -redis localhost:6379
//	go run ./example -addr localhost:8081 -redis localhost:6379
//
// (from the redisbroker directory). Open http://localhost:8080/ and
// http://localhost:8081/ in different windows. GET / serves the client and
// /ws is the chat endpoint (?username=name), as in examples/static.
// SIGINT or SIGTERM closes every client with 1001 (going away), releases
// this instance's members and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/redisbroker"
	"github.com/hubchat/chat/webui"
	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err == nil {
		err = serve(ctx, cfg, os.Stdout, nil)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// config is the command line, parsed.
type config struct {
	addr, redis, room string
}

func parseFlags(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(out)
	var cfg config
	fs.StringVar(&cfg.addr, "addr", "localhost:8080", "`host:port` to listen on (port 0 picks a free port)")
	fs.StringVar(&cfg.redis, "redis", "localhost:6379", "`host:port` of the Redis server")
	fs.StringVar(&cfg.room, "room", "lobby", "room `name`; instances with the same name share the room")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return cfg, nil
}

// serve runs the instance until ctx is done, then shuts it down. If ready
// is not nil, it receives the listener's address once serving.
func serve(ctx context.Context, cfg config, stdout io.Writer, ready chan<- net.Addr) error {
	rdb := redis.NewClient(&redis.Options{Addr: cfg.redis})
	defer rdb.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("redis at %s: %w", cfg.redis, err)
	}
	broker := redisbroker.New(rdb, redisbroker.Options{})
	defer broker.Close()

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	// The same page and /ws endpoint as examples/static, on a shared room.
	hub := chat.NewHub(chat.Options{Name: cfg.room, Broker: broker, Logger: slog.Default()})
	mux := http.NewServeMux()
	mux.Handle("/ws", chat.NewServer(hub))
	mux.Handle("/", webui.Handler())
	hs := &http.Server{ // the examples' timeouts (examples/internal/webserver)
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       30 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	host, _, _ := net.SplitHostPort(cfg.addr)
	if host == "" {
		host = "localhost"
	}
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Fprintf(stdout, "redis chat %q via %s: open http://%s/\n", cfg.room, cfg.redis, net.JoinHostPort(host, fmt.Sprint(port)))
	if ready != nil {
		ready <- ln.Addr()
	}

	select {
	case <-ctx.Done():
		err = nil
	case err = <-served:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The hub first: it closes the WebSockets, which http.Server.Shutdown
	// does not track, and releases this instance's members in Redis.
	return errors.Join(err, hub.Shutdown(sctx), hs.Shutdown(sctx))
}
