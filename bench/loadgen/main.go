// Command loadgen prepares and drives load against bench/server, for the
// cases wrk cannot run: a full authorization-code login is three dependent
// requests (GET /authorize, POST /consent with the browser cookie, POST
// /token with the code), which a wrk script cannot chain.
//
//	loadgen prep -base http://127.0.0.1:8080
//	loadgen run -base http://127.0.0.1:8080 -case login -c 32 -d 10s -pid PID
//
// prep registers a client_credentials client and obtains an access token,
// and prints them, with the request bodies of the token and registration
// cases, as shell assignments (BENCH_BASIC, BENCH_TOKEN, BENCH_CC_FORM,
// BENCH_REGISTER_JSON) for the wrk cases.
//
// run keeps -c connections busy for -d after a -warmup: -c workers share
// one net/http client whose transport keeps -c keep-alive connections, one
// in use per worker (no redirects followed, no cookie jar: the login case
// carries the browser cookie itself). On two cores the generator competes
// with the server for CPU. Cases: login, and hello (GET /hello, to compare
// the generator with wrk on the same case). It prints one line:
//
//	LOAD ops=N seconds=S p50_us=X p99_us=Y errors=E cpu_ticks=T
//
// where cpu_ticks is the server process's utime+stime (from
// /proc/PID/stat, in clock ticks) spent during the measured window.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpoauth/mcpoauth/bench/benchapp"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen prep|run [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "prep":
		err = prep(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// client sends the requests of the cases to bench/server.
type client struct {
	base string
	hc   *http.Client
}

// newClient returns a client for base whose transport keeps up to conns
// keep-alive connections, one per worker. It follows no redirect (the login
// case reads each Location itself) and has no cookie jar (the login case
// carries the browser cookie itself, one new browser per login).
func newClient(base string, conns int) (*client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("base %q: want http://HOST:PORT", base)
	}
	tr := &http.Transport{
		// Loopback, with no proxy from the environment.
		Proxy:               nil,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		// No Accept-Encoding, as wrk sends none: no gzip reader on
		// the response.
		DisableCompression: true,
	}
	return &client{
		base: strings.TrimSuffix(base, "/"),
		hc: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// close closes the idle connections.
func (c *client) close() { c.hc.CloseIdleConnections() }

// response is what the cases need of an answer.
type response struct {
	status    int
	location  string
	setCookie string
	body      []byte
}

// noUserAgent, as a request's User-Agent, keeps net/http from sending its
// own: the requests stay those wrk sends, so that the hello case compares
// the two generators on the same bytes.
var noUserAgent = []string{""}

// do sends one request and reads the whole response, so that its
// connection goes back to the pool. header becomes the request's.
func (c *client) do(method, target string, header http.Header, body string) (*response, error) {
	req, err := http.NewRequest(method, c.base+target, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if header != nil {
		req.Header = header
	}
	req.Header["User-Agent"] = noUserAgent
	hr, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	r := &response{status: hr.StatusCode, location: hr.Header.Get("Location"), setCookie: hr.Header.Get("Set-Cookie")}
	r.body, err = io.ReadAll(hr.Body)
	hr.Body.Close()
	if err != nil {
		return nil, err
	}
	return r, nil
}

// expect checks a response's status.
func expect(r *response, status int) error {
	if r.status != status {
		return fmt.Errorf("status %d, want %d: %.200s", r.status, status, r.body)
	}
	return nil
}

const (
	formType = "application/x-www-form-urlencoded"
	jsonType = "application/json"
)

// contentType is the header of a request with a body of type t.
func contentType(t string) http.Header { return http.Header{"Content-Type": {t}} }

// register registers a client and returns its id and secret.
func register(c *client, body string) (id, secret string, err error) {
	r, err := c.do(http.MethodPost, "/register", contentType(jsonType), body)
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

func prep(args []string) error {
	fs := flag.NewFlagSet("prep", flag.ExitOnError)
	base := fs.String("base", "http://127.0.0.1:8080", "base `URL` of bench/server")
	_ = fs.Parse(args)
	c, err := newClient(*base, 1)
	if err != nil {
		return err
	}
	defer c.close()
	id, secret, err := register(c, benchapp.ConfidentialClientJSON)
	if err != nil {
		return err
	}
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
	h := contentType(formType)
	h.Set("Authorization", "Basic "+basic)
	r, err := c.do(http.MethodPost, "/token", h, benchapp.ClientCredentialsForm)
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
	exchange  func(code string) string
}

func (l *loginCase) op(c *client) error {
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
	h := contentType(formType)
	h.Set("Cookie", cookie)
	r, err = c.do(http.MethodPost, "/consent", h, query)
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
	r, err = c.do(http.MethodPost, "/token", contentType(formType), l.exchange(code))
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
	name := fs.String("case", "login", "`case`: login or hello")
	conns := fs.Int("c", 32, "concurrent keep-alive connections")
	dur := fs.Duration("d", 10*time.Second, "measured duration")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured warm-up before")
	pid := fs.Int("pid", 0, "server process id whose CPU time to report (0: none)")
	_ = fs.Parse(args)

	if *conns < 1 {
		return fmt.Errorf("-c %d: want at least 1", *conns)
	}
	c, err := newClient(*base, *conns)
	if err != nil {
		return err
	}
	defer c.close()
	var op func(*client) error
	switch *name {
	case "hello":
		op = func(c *client) error {
			r, err := c.do(http.MethodGet, "/hello", nil, "")
			if err == nil {
				err = expect(r, http.StatusOK)
			}
			return err
		}
	case "login":
		clientID, _, err := register(c, benchapp.PublicClientJSON)
		if err != nil {
			return err
		}
		app := &benchapp.App{Base: *base, Resource: *base + "/mcp"}
		l := &loginCase{
			authorize: "/authorize?" + app.AuthorizeQuery(clientID),
			exchange:  func(code string) string { return app.ExchangeForm(clientID, code) },
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
		wg.Add(1)
		go func() {
			defer wg.Done()
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
