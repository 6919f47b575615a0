// Package pgtest runs a throw-away PostgreSQL cluster for tests, and hands
// each test an empty schema of its own on it.
//
// The cluster comes from Debian's postgresql package (the binaries in
// /usr/lib/postgresql/*/bin): initdb into a temporary directory, the
// server on a free port of 127.0.0.1 with its unix socket in that
// directory, stopped and removed when the tests end. initdb and postgres
// refuse to run as root; as root, they run as the postgres user. Set
// PGSTORE_TEST_DSN to use an existing server instead.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable that points the tests at an
// existing server, e.g. "postgres://user:pw@127.0.0.1:5432/db".
const EnvDSN = "PGSTORE_TEST_DSN"

var (
	once    sync.Once
	cluster *server // nil with an existing server
	baseDSN string
	initErr error
	skip    bool // initErr means PostgreSQL is missing, not broken
	schemas atomic.Int64
)

// Main runs the tests of m, then stops the cluster if one was started.
func Main(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		if err := cluster.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// DSN returns the connection string of a new, empty schema, which is
// first on the search_path of every connection made with it and is
// dropped at the end of the test. The first call starts the cluster.
// Without PostgreSQL the test is skipped, or fails if the environment has
// CI=true.
func DSN(t testing.TB) string {
	t.Helper()
	once.Do(start)
	if initErr != nil {
		if skip && os.Getenv("CI") != "true" {
			t.Skipf("%v; install PostgreSQL (apt-get install postgresql) or set %s", initErr, EnvDSN)
		}
		t.Fatal(initErr)
	}
	schema := fmt.Sprintf("pgtest_%d_%d", os.Getpid(), schemas.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec1(ctx, baseDSN, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exec1(ctx, baseDSN, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return withParam(baseDSN, "search_path", schema)
}

// withParam adds a run-time parameter to a URL or keyword/value
// connection string.
func withParam(dsn, key, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + key + "=" + value
	}
	return dsn + " " + key + "=" + value
}

func exec1(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func start() {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		baseDSN = dsn
		return
	}
	bin, err := binDir()
	if err != nil {
		initErr, skip = err, true
		return
	}
	cluster, initErr = startServer(bin)
	if initErr == nil {
		baseDSN = cluster.dsn()
	}
}

// binDir returns the bin directory of the newest PostgreSQL installed.
func binDir() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			found = []string{p}
		}
	}
	if len(found) == 0 {
		return "", errors.New("PostgreSQL not found: no /usr/lib/postgresql/*/bin/initdb")
	}
	version := func(p string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return n
	}
	slices.SortFunc(found, func(a, b string) int { return version(a) - version(b) })
	return filepath.Dir(found[len(found)-1]), nil
}

// server is a postgres process in a temporary directory.
type server struct {
	dir  string // holds data/, the socket and the log
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // of Wait, once done
}

func (s *server) dsn() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", s.port)
}

// startServer runs initdb and starts postgres on a free port, up to three
// times if another process takes the port first.
func startServer(bin string) (*server, error) {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and no postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	command := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential: cred,
			// The server dies with the test binary, even if it is killed.
			Pdeathsig: syscall.SIGKILL,
		}
		return cmd
	}
	data := filepath.Join(dir, "data")
	initdb := command("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s := &server{dir: dir, port: port, done: make(chan struct{})}
		logf, err := os.Create(filepath.Join(dir, "log"))
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.cmd = command("postgres", "-D", data, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories="+dir,
			"-c", "max_connections=200")
		s.cmd.Stdout, s.cmd.Stderr = logf, logf
		err = s.cmd.Start()
		logf.Close()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		go func() {
			s.err = s.cmd.Wait()
			close(s.done)
		}()
		if err := s.wait(30 * time.Second); err != nil {
			s.halt()
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			if attempt < 2 && bytes.Contains(log, []byte("could not bind")) {
				continue
			}
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres: %v\n%s", err, log)
		}
		return s, nil
	}
}

// wait waits until the server accepts connections.
func (s *server) wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := exec1(ctx, s.dsn(), "SELECT 1")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %v: %v", timeout, err)
		}
		select {
		case <-s.done:
			return fmt.Errorf("exited at start: %v", s.err)
		case <-tick.C:
		}
	}
}

// stop halts the server and removes its directory.
func (s *server) stop() error {
	s.halt()
	return os.RemoveAll(s.dir)
}

// halt shuts the server down (fast shutdown: SIGINT) and waits for it to
// exit.
func (s *server) halt() {
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
