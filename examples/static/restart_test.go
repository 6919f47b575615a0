package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubchat/chat/examples/internal/chattest"
)

// startProgram starts the built program with args and "-addr 127.0.0.1:0",
// and returns it, its chat endpoint and the history line it printed.
func startProgram(t *testing.T, bin string, args ...string) (p *chattest.Program, ws, history string) {
	t.Helper()
	p = chattest.Start(t, bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	// "static chat: open http://127.0.0.1:PORT/ (WebSocket ws://127.0.0.1:PORT/ws)"
	line := p.Line()
	fields := strings.Fields(line)
	if len(fields) < 6 || !strings.HasPrefix(fields[5], "ws://127.0.0.1:") {
		t.Fatalf("static printed %q, want its URLs", line)
	}
	return p, strings.TrimSuffix(fields[5], ")"), p.Line()
}

// TestRestart: the program keeps the room's messages in its -db file, by
// default hubchat-static.db in its working directory. Killed with SIGKILL,
// with no chance to write anything more, and started again on the same
// file, it gives a new joiner the messages from before and numbers on.
func TestRestart(t *testing.T) {
	bin := chattest.Build(t, ".")

	first, ws, history := startProgram(t, bin)
	db := filepath.Join(first.Dir(), "hubchat-static.db")
	if want := "  history: " + db; history != want {
		t.Errorf("printed %q, want %q", history, want)
	}
	alice := chattest.Join(t, ws, "", "alice")
	last := alice.SayEchoed("one", "two", "three")
	chattest.WaitStored(t, db, "lobby", last)
	first.Kill()

	_, ws, _ = startProgram(t, bin, "-db", db)
	bob, _, err := chattest.Dial(t, ws+"?username=bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := chattest.Bodies(bob.ReadUntil("history").Messages); !cmp.Equal(got, []string{"one", "two", "three"}) {
		t.Errorf("bob's history after the restart = %q, want [one two three]", got)
	}
	next := bob.SayEchoed("four")
	if a, b := chattest.MessageID(t, last), chattest.MessageID(t, next); b <= a {
		t.Errorf("id after the restart %d, want more than %d", b, a)
	}
}

// TestMemoryOnly: with -db "" or -db :memory: nothing outlives the process
// and no file is written.
func TestMemoryOnly(t *testing.T) {
	bin := chattest.Build(t, ".")
	for _, db := range []string{"", ":memory:"} {
		t.Run("db="+db, func(t *testing.T) {
			first, ws, history := startProgram(t, bin, "-db", db)
			if history != "  history: in memory only" {
				t.Errorf("printed %q, want in memory only", history)
			}
			alice := chattest.Join(t, ws, "", "alice")
			alice.SayEchoed("forgotten")
			first.Kill()
			if files, err := os.ReadDir(first.Dir()); err != nil || len(files) != 0 {
				t.Errorf("files in the working directory: %v, %v; want none", files, err)
			}

			_, ws, _ = startProgram(t, bin, "-db", db)
			bob, _, err := chattest.Dial(t, ws+"?username=bob", "")
			if err != nil {
				t.Fatal(err)
			}
			bob.Say("first")
			for {
				f, err := bob.Read()
				if err != nil {
					t.Fatal(err)
				}
				if len(f.Messages) > 0 {
					t.Errorf("bob got %+v after a restart with -db %q, want no history", f, db)
				}
				if f.Type == "message" && f.Body == "first" {
					break
				}
			}
		})
	}
}
