package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubchat/chat/examples/internal/chattest"
)

// startProgram starts the built program with the chat server of -servers
// and allowing -allow, on 127.0.0.1, with the rooms in the file db. It
// returns the program, its main URL and the history line it printed.
func startProgram(t *testing.T, bin, db string, servers, allow int) (p *chattest.Program, main, history string) {
	t.Helper()
	p = chattest.Start(t, bin, "-addr", "127.0.0.1:0", "-host", "127.0.0.1", "-db", db,
		"-servers", strconv.Itoa(servers), "-allow", strconv.Itoa(allow))
	line := p.Line()
	main, ok := strings.CutPrefix(line, "multiport: open ")
	if !ok {
		t.Fatalf("multiport printed %q, want its URL", line)
	}
	p.Line() // "  Server 1 (PORT): ws://..."
	p.Line() // "  the UI may start chat servers on ports ..."
	return p, main, p.Line()
}

// startServer asks the main server at main to start a chat server on port.
func startServer(t *testing.T, main string, port int) {
	t.Helper()
	resp, err := http.Post(main+"api/servers", "application/json", strings.NewReader(fmt.Sprintf(`{"port":%d}`, port)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/servers port %d: %s", port, resp.Status)
	}
}

// TestRestart: each chat server's room persists under its port. The
// first run starts port a at once and port b through the API; killed
// with SIGKILL and run again with the roles swapped (b at once, a through
// the API, so that their names and start order differ), each port still
// has its own history, and only its own.
func TestRestart(t *testing.T) {
	bin := chattest.Build(t, ".")
	db := filepath.Join(t.TempDir(), "rooms.db")
	a, b := chattest.FreePort(t), chattest.FreePort(t)
	ws := func(port int) string { return fmt.Sprintf("ws://127.0.0.1:%d/ws", port) }

	first, main, history := startProgram(t, bin, db, a, b)
	if want := "  history: " + db; history != want {
		t.Errorf("printed %q, want %q", history, want)
	}
	startServer(t, main, b)
	origin := strings.TrimSuffix(main, "/")
	lastA := chattest.Join(t, ws(a), origin, "alice").SayEchoed("on a", "again on a")
	lastB := chattest.Join(t, ws(b), origin, "bob").SayEchoed("on b")
	chattest.WaitStored(t, db, fmt.Sprintf("port %d", a), lastA)
	chattest.WaitStored(t, db, fmt.Sprintf("port %d", b), lastB)
	first.Kill()

	_, main, _ = startProgram(t, bin, db, b, a)
	startServer(t, main, a)
	origin = strings.TrimSuffix(main, "/")
	for port, want := range map[int][]string{a: {"on a", "again on a"}, b: {"on b"}} {
		c, _, err := chattest.Dial(t, ws(port)+"?username=carol", origin)
		if err != nil {
			t.Fatal(err)
		}
		if got := chattest.Bodies(c.ReadUntil("history").Messages); !cmp.Equal(got, want) {
			t.Errorf("history of port %d after the restart = %q, want %q", port, got, want)
		}
	}
}
