package sqlitestore_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubchat/chat/sqlitestore"
)

// crashEnv names the file that a child process of TestCrash appends to.
const crashEnv = "HUBCHAT_SQLITESTORE_CRASH"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		os.Exit(crashChild(path))
	}
	os.Exit(m.Run())
}

// crashBatch is the size of batch i in TestCrash: 1 to 17 messages.
func crashBatch(i int) int { return 1 + i*7%17 }

// crashChild appends batches to path until it is killed, and after each
// Append returns writes "committed <last ID>" to stdout.
func crashChild(path string) int {
	st, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	next := 1
	for i := range 100_000 { // bounded, should the parent never kill it
		n := crashBatch(i)
		if err := st.Append(context.Background(), "r", span(next, next+n-1)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		next += n
		fmt.Printf("committed %d\n", next-1)
	}
	return 0
}

// TestCrash kills a process that is appending (SIGKILL, no chance to
// close the file) and finds every message it reported committed, and no
// batch in part.
func TestCrash(t *testing.T) {
	path := t.TempDir() + "/chat.db"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() }) // should it hang
	defer timer.Stop()
	lines := bufio.NewScanner(out)
	committed, reports := 0, 0
	for reports < 300 && lines.Scan() {
		committed, reports = parseCommitted(t, lines.Text()), reports+1
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() { // what it reported before it died
		committed, reports = parseCommitted(t, lines.Text()), reports+1
	}
	err = cmd.Wait()
	if reports == 0 {
		t.Fatalf("the child reported no commit (exit: %v)", err)
	}
	if ws, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); ok && !ws.Signaled() {
		t.Fatalf("the child was not killed: %v", err)
	}
	t.Logf("killed after %d reported commits, through ID %d", reports, committed)

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var integrity string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity_check: %q, %v", integrity, err)
	}
	db.Close()

	st := openPath(t, path, sqlitestore.Options{})
	got := all(t, st, "r")
	if len(got) < committed {
		t.Fatalf("reopened file holds %d messages, the child reported %d committed", len(got), committed)
	}
	// Whole batches only: the file ends on a batch boundary.
	end, i := 0, 0
	for end < len(got) {
		end += crashBatch(i)
		i++
	}
	if end != len(got) {
		t.Errorf("reopened file holds %d messages, not a whole number of batches", len(got))
	}
	if diff := cmp.Diff(span(1, len(got)), got); diff != "" {
		t.Errorf("reopened file (-want +got):\n%s", diff)
	}
}

func parseCommitted(t *testing.T, line string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(line, "committed "))
	if err != nil {
		t.Fatalf("child wrote %q", line)
	}
	return n
}
