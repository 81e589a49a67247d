package stave_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	stave "github.com/stave-broker/stave/clients/go"
)

// testServer is a `stave server` run by the tests: one node on a free loopback port, its data
// in a temporary directory.
type testServer struct {
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
	log  *os.File
}

// The shared server of the suite (see TestMain), and a client of it.
var (
	shared       *testServer
	sharedClient *stave.Client
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	bin, err := staveBin()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	shared, err = startServer(bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer shared.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sharedClient, err = stave.Dial(ctx, shared.addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "the test server did not answer: %v (its log: %s)\n", err, shared.log.Name())
		return 1
	}
	defer sharedClient.Close()
	return m.Run()
}

// staveBin is $STAVE_BIN, else the release binary of the repository.
func staveBin() (string, error) {
	bin := os.Getenv("STAVE_BIN")
	if bin == "" {
		repo, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			return "", err
		}
		bin = filepath.Join(repo, "target", "release", "stave")
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("the stave binary is missing at %s: build it (cargo build --release) or set STAVE_BIN", bin)
	}
	return bin, nil
}

// startServer starts a node on a free port with a fresh data directory and waits until it
// answers.
func startServer(bin string) (*testServer, error) {
	dir, err := os.MkdirTemp("", "stave-go-test-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &testServer{bin: bin, dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	if err := s.start(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the node (again, after kill: same port, same data) and waits until it answers.
func (s *testServer) start() error {
	log, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.log = log
	cmd := exec.Command(s.bin, "server", "--listen", s.addr, "--data-dir", filepath.Join(s.dir, "data"))
	cmd.Stdout, cmd.Stderr = log, log
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.cmd = cmd
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := stave.Dial(ctx, s.addr)
	if err != nil {
		return fmt.Errorf("the server at %s did not answer (log: %s): %w", s.addr, log.Name(), err)
	}
	return client.Close()
}

// kill sends SIGKILL to the node and waits for it to end.
func (s *testServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
	_ = s.log.Close()
}

// stop kills the node and removes its data.
func (s *testServer) stop() {
	s.kill()
	_ = os.RemoveAll(s.dir)
}
