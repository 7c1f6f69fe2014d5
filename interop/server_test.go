package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/interop/output"
)

const (
	// buildTimeout bounds `go build` of the example server.
	buildTimeout = 3 * time.Minute
	// startTimeout bounds the wait for the server's "listening" line.
	startTimeout = 30 * time.Second
	// stopTimeout bounds the graceful stop before the server is killed.
	stopTimeout = 10 * time.Second
)

var (
	buildMu  sync.Mutex
	builds   = map[string]*build{}
	buildDir string
)

// build is one `go build` of a command of the module.
type build struct {
	once   sync.Once
	bin    string
	err    error
	output []byte
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds the module's command pkg ("example/server") once per test
// binary and returns its path.
func binary(t *testing.T, pkg string) string {
	t.Helper()
	buildMu.Lock()
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "mcpoauth-interop-")
		if err != nil {
			buildMu.Unlock()
			t.Fatal(err)
		}
		buildDir = dir
	}
	b := builds[pkg]
	if b == nil {
		b = &build{bin: filepath.Join(buildDir, strings.ReplaceAll(pkg, "/", "-"))}
		builds[pkg] = b
	}
	buildMu.Unlock()
	b.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			b.err = fmt.Errorf("go is not in PATH: %w", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		// The module path works from any directory of the module.
		cmd := exec.CommandContext(ctx, goBin, "build", "-o", b.bin, "github.com/mcpoauth/mcpoauth/"+pkg)
		b.output, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, b.err, b.output)
	}
	return b.bin
}

// exampleServer is the example server running as its own process.
type exampleServer struct {
	issuer, mcpURL string
	logs           *output.Buffer
}

// issuerLine is what the server prints on stdout once it is listening.
var issuerLine = regexp.MustCompile(`^mcpoauth example server: issuer (\S+), MCP endpoint (\S+)$`)

// startServer starts the example server on a free loopback port with issuer
// http://127.0.0.1:PORT and the given extra flags, waits until it listens,
// and stops it when the test ends. Its logs are printed if the test fails.
func startServer(t *testing.T, args ...string) *exampleServer {
	t.Helper()
	return startServerAt(t, "", args...)
}

// startServerAt is startServer with an issuer path ("/tenant1": issuer
// http://127.0.0.1:PORT/tenant1), under which the server serves everything
// but the well-known documents.
func startServerAt(t *testing.T, issuerPath string, args ...string) *exampleServer {
	t.Helper()
	bin := binary(t, "example/server")
	var lastErr error
	// A free port can be taken between the probe and the server's listen:
	// try again with another.
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s, err := tryStartServer(t, bin, port, issuerPath, args)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("start the example server: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tryStartServer starts the example server on port; the error says why it
// did not start (the port may have been taken since it was chosen).
func tryStartServer(t *testing.T, bin string, port int, issuerPath string, args []string) (*exampleServer, error) {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	issuer := "http://" + addr + issuerPath
	logs := &output.Buffer{}
	cmd := exec.Command(bin, append([]string{"-addr", addr, "-issuer", issuer}, args...)...)
	cmd.Stderr = logs
	proc, err := startProcess("the example server", cmd)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	m, err := proc.waitReady(t, issuerLine, logs)
	if err != nil {
		return nil, err
	}
	if m[1] != issuer || m[2] != issuer+"/mcp" {
		proc.stop(t)
		return nil, fmt.Errorf("the server announced issuer %s and MCP endpoint %s, want %s and %s/mcp", m[1], m[2], issuer, issuer)
	}
	if d := time.Since(started); d > time.Second {
		t.Logf("the example server took %s to start", d.Round(time.Millisecond))
	}
	t.Cleanup(func() {
		proc.stop(t)
		if t.Failed() {
			t.Logf("example server logs:\n%s", logs)
		}
	})
	return &exampleServer{issuer: issuer, mcpURL: issuer + "/mcp", logs: logs}, nil
}

// writeClients writes a -clients file.
func writeClients(t *testing.T, clients []map[string]any) string {
	t.Helper()
	b, err := json.Marshal(clients)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "clients.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serviceClients writes a -clients file with the confidential client
// credentials client "interop-svc", whose secret is confidentialSecret.
func serviceClients(t *testing.T) string {
	return writeClients(t, []map[string]any{{
		"client_id": "interop-svc", "client_secret": confidentialSecret, "client_name": "interop service",
		"grant_types": []string{"client_credentials"},
	}})
}

// testContext is a context bounded by d that ends with the test.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// requireInterop skips (or, with MCPOAUTH_REQUIRE_INTEROP=1, fails) a test
// whose outside part is missing.
func requireInterop(t *testing.T, problem string) {
	t.Helper()
	msg := problem + "; MCPOAUTH_REQUIRE_INTEROP=1 makes its absence a failure"
	if os.Getenv("MCPOAUTH_REQUIRE_INTEROP") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
