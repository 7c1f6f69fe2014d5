// Command loadgen prepares and drives load against bench/server, for the
// cases wrk cannot run: a full authorization-code login is three dependent
// requests (GET /authorize, POST /consent with the browser cookie, POST
// /token with the code), which a wrk script cannot chain.
//
//	loadgen prep -base http://127.0.0.1:8080
//	loadgen run -base http://127.0.0.1:8080 -case login -c 32 -d 10s -pid PID
//	loadgen fill -base http://127.0.0.1:8080 -n 1000000 -pid PID
//
// prep registers a client_credentials client and obtains an access token,
// and prints them, with the request bodies of the token and registration
// cases, as shell assignments (BENCH_BASIC, BENCH_TOKEN, BENCH_CC_FORM,
// BENCH_REGISTER_JSON) for the wrk cases.
//
// run keeps -c connections busy for -d after a -warmup, each worker on its
// own keep-alive connection with a hand-written HTTP/1.1 client (no
// redirects followed, no cookie jar, no per-request goroutines), so that the
// generator is as lean as it can be: on two cores it competes with the
// server for CPU. Cases: login; login-floor, the same three exchanges
// answered by handlers that do no OAuth work (what HTTP alone costs a
// login); and hello (GET /hello, to compare the
// generator with wrk on the same case). It prints one line:
//
//	LOAD ops=N seconds=S p50_us=X p99_us=Y errors=E cpu_ticks=T
//
// where cpu_ticks is the server process's utime+stime (from
// /proc/PID/stat, in clock ticks) spent during the measured window.
//
// fill issues exactly -n client_credentials tokens and prints the server's
// VmRSS (fill.go).
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/benchapp"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen prep|run|fill [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "prep":
		err = prep(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	case "fill":
		err = fill(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// conn is one keep-alive HTTP/1.1 connection.
type conn struct {
	addr string
	host string
	c    net.Conn
	br   *bufio.Reader
	buf  []byte
}

func newConn(base string) (*conn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	return &conn{addr: u.Host, host: u.Host}, nil
}

// response is what the cases need of an answer.
type response struct {
	status    int
	location  string
	setCookie string
	body      []byte
}

// do sends one request and reads the whole response, reconnecting once if
// the kept-alive connection was closed.
func (c *conn) do(method, target string, header []string, body string) (*response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.try(method, target, header, body)
		if err == nil || attempt > 0 {
			return resp, err
		}
		c.close()
	}
}

func (c *conn) try(method, target string, header []string, body string) (*response, error) {
	if c.c == nil {
		nc, err := net.Dial("tcp", c.addr)
		if err != nil {
			return nil, err
		}
		c.c, c.br = nc, bufio.NewReaderSize(nc, 16<<10)
	}
	b := c.buf[:0]
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\n"...)
	for _, h := range header {
		b = append(b, h...)
		b = append(b, "\r\n"...)
	}
	if body != "" || method == http.MethodPost {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	c.buf = b
	if _, err := c.c.Write(b); err != nil {
		return nil, err
	}
	hr, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, err
	}
	r := &response{status: hr.StatusCode, location: hr.Header.Get("Location"), setCookie: hr.Header.Get("Set-Cookie")}
	r.body, err = io.ReadAll(hr.Body)
	hr.Body.Close()
	if err != nil {
		return nil, err
	}
	if hr.Close {
		c.close()
	}
	return r, nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// expect checks a response's status.
func expect(r *response, status int) error {
	if r.status != status {
		return fmt.Errorf("status %d, want %d: %.200s", r.status, status, r.body)
	}
	return nil
}

const (
	formType = "Content-Type: application/x-www-form-urlencoded"
	jsonType = "Content-Type: application/json"
)

// register registers a client and returns its id and secret.
func register(c *conn, body string) (id, secret string, err error) {
	r, err := c.do(http.MethodPost, "/register", []string{jsonType}, body)
	if err != nil {
		return "", "", err
	}
	if err := expect(r, http.StatusCreated); err != nil {
		return "", "", err
	}
	var out struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	err = json.Unmarshal(r.body, &out)
	return out.ClientID, out.ClientSecret, err
}

// registerAt registers a client with body on a connection of its own.
func registerAt(base, body string) (id, secret string, err error) {
	c, err := newConn(base)
	if err != nil {
		return "", "", err
	}
	defer c.close()
	return register(c, body)
}

// basicCredentials is the client_secret_basic value of id and secret,
// form-encoded before base64 (RFC 6749 §2.3.1).
func basicCredentials(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

func prep(args []string) error {
	fs := flag.NewFlagSet("prep", flag.ExitOnError)
	base := fs.String("base", "http://127.0.0.1:8080", "base `URL` of bench/server")
	_ = fs.Parse(args)
	c, err := newConn(*base)
	if err != nil {
		return err
	}
	defer c.close()
	id, secret, err := register(c, benchapp.ConfidentialClientJSON)
	if err != nil {
		return err
	}
	basic := basicCredentials(id, secret)
	r, err := c.do(http.MethodPost, "/token", []string{formType, "Authorization: Basic " + basic}, benchapp.ClientCredentialsForm)
	if err != nil {
		return err
	}
	if err := expect(r, http.StatusOK); err != nil {
		return err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(r.body, &tok); err != nil {
		return err
	}
	// Base64 and base64url values need no shell quoting; the bodies have no
	// single quote.
	fmt.Printf("BENCH_BASIC=%s\nBENCH_TOKEN=%s\nBENCH_CC_FORM='%s'\nBENCH_REGISTER_JSON='%s'\n",
		basic, tok.AccessToken, benchapp.ClientCredentialsForm, benchapp.ConfidentialClientJSON)
	return nil
}

// loginCase is one full authorization-code login of a public client, in a
// new browser: GET /authorize → 302 to the consent page with request_id and
// a browser cookie; POST that query to /consent with the cookie → 303 to
// the redirect URI with a code; POST /token → 200 with the tokens.
type loginCase struct {
	authorize string // target of GET /authorize
	consent   string // path of the consent page
	token     string // path of the token endpoint
	exchange  func(code string) string
}

func (l *loginCase) op(c *conn) error {
	r, err := c.do(http.MethodGet, l.authorize, nil, "")
	if err != nil {
		return err
	}
	if err := expect(r, http.StatusFound); err != nil {
		return err
	}
	_, query, ok := strings.Cut(r.location, "?")
	cookie, _, _ := strings.Cut(r.setCookie, ";")
	if !ok || cookie == "" {
		return fmt.Errorf("authorize: no consent redirect or cookie (%q, %q)", r.location, r.setCookie)
	}
	r, err = c.do(http.MethodPost, l.consent, []string{formType, "Cookie: " + cookie}, query)
	if err != nil {
		return err
	}
	if err := expect(r, http.StatusSeeOther); err != nil {
		return err
	}
	back, err := url.Parse(r.location)
	if err != nil {
		return err
	}
	code := back.Query().Get("code")
	if code == "" {
		return fmt.Errorf("consent: no code in %q", r.location)
	}
	r, err = c.do(http.MethodPost, l.token, []string{formType}, l.exchange(code))
	if err != nil {
		return err
	}
	if err := expect(r, http.StatusOK); err != nil {
		return err
	}
	if !bytes.HasPrefix(r.body, []byte(`{"access_token":"`)) {
		return fmt.Errorf("token: unexpected body %.200s", r.body)
	}
	return nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	base := fs.String("base", "http://127.0.0.1:8080", "base `URL` of bench/server")
	name := fs.String("case", "login", "`case`: login, login-floor (the same exchanges without OAuth work) or hello")
	conns := fs.Int("c", 32, "concurrent keep-alive connections")
	dur := fs.Duration("d", 10*time.Second, "measured duration")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured warm-up before")
	pid := fs.Int("pid", 0, "server process id whose CPU time to report (0: none)")
	_ = fs.Parse(args)

	var op func(*conn) error
	switch *name {
	case "hello":
		op = func(c *conn) error {
			r, err := c.do(http.MethodGet, "/hello", nil, "")
			if err == nil {
				err = expect(r, http.StatusOK)
			}
			return err
		}
	case "login", "login-floor":
		client, _, err := registerAt(*base, benchapp.PublicClientJSON)
		if err != nil {
			return err
		}
		app := &benchapp.App{Base: *base, Resource: *base + "/mcp"}
		l := &loginCase{
			authorize: "/authorize?" + app.AuthorizeQuery(client),
			consent:   "/consent",
			token:     "/token",
			exchange:  func(code string) string { return app.ExchangeForm(client, code) },
		}
		if *name == "login-floor" {
			// The same three requests to handlers that answer like the
			// server but do no OAuth work (benchapp's floor): what
			// net/http and the kernel cost for a login's exchanges.
			l.authorize = "/floor" + l.authorize
			l.consent, l.token = "/floor/consent", "/floor/token"
		}
		op = l.op
	default:
		return fmt.Errorf("unknown case %q", *name)
	}

	// Workers run until stop; while measuring is set they record latencies.
	var (
		stop, measuring atomic.Bool
		errCount        atomic.Int64
		firstErr        atomic.Pointer[error]
		wg              sync.WaitGroup
	)
	lat := make([][]time.Duration, *conns)
	for i := range *conns {
		c, err := newConn(*base)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.close()
			for !stop.Load() {
				t0 := time.Now()
				err := op(c)
				d := time.Since(t0)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					c.close()
					continue
				}
				lat[i] = append(lat[i], d)
			}
		}()
	}
	time.Sleep(*warmup)
	cpu0, err := cpuTicks(*pid)
	if err != nil {
		stop.Store(true)
		wg.Wait()
		return err
	}
	for i := range lat {
		lat[i] = lat[i][:0]
	}
	start := time.Now()
	measuring.Store(true)
	time.Sleep(*dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	cpu1, err := cpuTicks(*pid)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		return err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Nanoseconds()) / 1e3
	}
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "loadgen: first error:", *e)
	}
	fmt.Printf("LOAD ops=%d seconds=%.3f p50_us=%.0f p99_us=%.0f errors=%d cpu_ticks=%d\n",
		len(all), elapsed.Seconds(), pct(0.50), pct(0.99), errCount.Load(), cpu1-cpu0)
	return nil
}

// cpuTicks returns utime+stime of a process, in clock ticks (proc(5)).
func cpuTicks(pid int) (int64, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat times")
	}
	return ut + st, nil
}
