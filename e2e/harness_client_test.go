package e2e

// The harness's client side: requests to a gateway (each carrying the planted secrets), its
// answers read whole and checked against the contract (the not-ready 503, the chat reply, the
// event stream), /ready awaited, and the load the fault and soak tests drive.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// reply is a fully read HTTP response.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string {
	return fmt.Sprintf("%d %s", r.status, r.body)
}

// request sends one request; header holds key, value pairs.
func (g *hfgateProc) request(ctx context.Context, method, path, body string, header ...string) (reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, rd)
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	withPlantedSecrets(req)
	resp, err := g.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("read body: %w", err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// mustRequest is request, failing the test on a transport error.
func (g *hfgateProc) mustRequest(ctx context.Context, method, path, body string, header ...string) reply {
	g.t.Helper()
	r, err := g.request(ctx, method, path, body, header...)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// readyBody is the JSON of GET /ready.
type readyBody struct {
	State      string   `json:"state"`
	RetryAfter int      `json:"retry_after"`
	Missing    []string `json:"missing"`
	Supervisor *struct {
		State    string          `json:"state"`
		PID      int             `json:"pid"`
		Restarts int             `json:"restarts"`
		LastExit json.RawMessage `json:"last_exit"`
	} `json:"supervisor"`
}

// ready fetches and decodes /ready, noting the child's PID for clean-up.
func (g *hfgateProc) ready(ctx context.Context) (reply, readyBody, error) {
	r, err := g.request(ctx, http.MethodGet, "/ready", "")
	if err != nil {
		return r, readyBody{}, err
	}
	var rb readyBody
	if err := json.Unmarshal(r.body, &rb); err != nil {
		return r, rb, fmt.Errorf("decode /ready %s: %w", r, err)
	}
	if rb.Supervisor != nil && rb.Supervisor.PID > 0 {
		g.mu.Lock()
		g.childPID = append(g.childPID, rb.Supervisor.PID)
		g.mu.Unlock()
	}
	return r, rb, nil
}

// awaitReady polls /ready until it answers 200 and returns its body and the
// time it was first seen ready.
func (g *hfgateProc) awaitReady(ctx context.Context, interval time.Duration) (readyBody, time.Time) {
	g.t.Helper()
	var (
		last  string
		rb    readyBody
		since time.Time
	)
	err := poll(ctx, interval, func() bool {
		r, b, err := g.ready(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		last = r.String()
		if r.status != http.StatusOK {
			return false
		}
		rb, since = b, time.Now()
		return true
	})
	if err != nil {
		g.t.Fatalf("await /ready 200: %v (last answer: %s)", err, last)
	}
	return rb, since
}

// awaitPort waits until the gateway's port accepts connections.
func (g *hfgateProc) awaitPort(ctx context.Context) time.Time {
	g.t.Helper()
	var at time.Time
	var d net.Dialer
	err := poll(ctx, 2*time.Millisecond, func() bool {
		c, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", g.port))
		if err != nil {
			return false
		}
		at = time.Now()
		c.Close()
		return true
	})
	if err != nil {
		g.t.Fatalf("await port %d: %v", g.port, err)
	}
	return at
}

// botReply is what the example bot answers to message.
func botReply(message string) string {
	words := strings.Fields(message)
	if len(words) == 0 {
		words = []string{"nothing"}
	}
	return "You said: " + strings.Join(words, " ") + ". Thanks for chatting!"
}

// randomHex returns n random bytes in hex, for values no other run shares.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// errorBody is the gateway's JSON error shape.
type errorBody struct {
	Error      string   `json:"error"`
	State      string   `json:"state"`
	RetryAfter int      `json:"retry_after"`
	RequestID  string   `json:"request_id"`
	Missing    []string `json:"missing"`
	Hint       string   `json:"hint"`
}

// checkNotReady checks the contract's not-ready answer and returns its body.
func checkNotReady(t *testing.T, r reply, states ...string) errorBody {
	t.Helper()
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("got status %d, want 503 (body %s)", r.status, r.body)
	}
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 30 {
		t.Errorf("got Retry-After %q, want an integer in 1..30", r.header.Get("Retry-After"))
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("got Cache-Control %q, want no-store", got)
	}
	var eb errorBody
	if err := json.Unmarshal(r.body, &eb); err != nil {
		t.Fatalf("decode 503 body %s: %v", r.body, err)
	}
	if eb.Error == "" {
		t.Errorf("got empty error in %s, want a message", r.body)
	}
	if !slices.Contains(states, eb.State) {
		t.Errorf("got state %q, want one of %q", eb.State, states)
	}
	if eb.RetryAfter != ra {
		t.Errorf("got retry_after %d, want %d (the Retry-After header)", eb.RetryAfter, ra)
	}
	if eb.RequestID == "" || eb.RequestID != r.header.Get("X-Request-ID") {
		t.Errorf("got request_id %q, X-Request-ID %q, want both equal and non-empty", eb.RequestID, r.header.Get("X-Request-ID"))
	}
	return eb
}

// chatReply is the example backend's POST /chat answer.
type chatReply struct {
	Reply string `json:"reply"`
	Model string `json:"model"`
}

// checkChat checks a POST /chat answer: 200 with the bot's reply want.
func checkChat(t *testing.T, r reply, want string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("POST /chat: got %s, want 200", r)
	}
	var cr chatReply
	if err := json.Unmarshal(r.body, &cr); err != nil {
		t.Fatalf("decode /chat body %s: %v", r.body, err)
	}
	if cr.Reply != want || cr.Model != "echo-bot-1" {
		t.Errorf("got reply %q model %q, want %q and echo-bot-1", cr.Reply, cr.Model, want)
	}
}

// sseEvent is one server-sent event and when the client finished reading it.
type sseEvent struct {
	event string
	data  string
	at    time.Time
}

// nextEvent reads one event (up to its blank line).
func nextEvent(br *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	seen := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" && !seen {
				return ev, io.EOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return ev, err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if seen {
				ev.at = time.Now()
				return ev, nil
			}
		case strings.HasPrefix(line, "event:"):
			ev.event, seen = strings.TrimSpace(strings.TrimPrefix(line, "event:")), true
		case strings.HasPrefix(line, "data:"):
			ev.data, seen = strings.TrimSpace(strings.TrimPrefix(line, "data:")), true
		}
	}
}

// eventToken decodes the token a chat stream event carries.
func eventToken(t *testing.T, ev sseEvent) string {
	t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(ev.data), &tok); err != nil {
		t.Fatalf("decode event data %q: %v", ev.data, err)
	}
	return tok.Token
}

// openStream starts GET /chat/stream and returns the response and a reader.
func (g *hfgateProc) openStream(ctx context.Context, message string) (*http.Response, *bufio.Reader) {
	g.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+"/chat/stream?message="+url.QueryEscape(message), nil)
	if err != nil {
		g.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	withPlantedSecrets(req)
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("GET /chat/stream: %v", err)
	}
	g.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		g.t.Fatalf("GET /chat/stream: got %d %s, want 200", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		g.t.Errorf("got Content-Type %q, want text/event-stream", ct)
	}
	return resp, bufio.NewReader(resp.Body)
}

// outcomes counts what clients got, by kind, and keeps a few examples of the unexpected.
type outcomes struct {
	mu       sync.Mutex
	counts   map[string]int
	examples []string
}

func newOutcomes() *outcomes { return &outcomes{counts: map[string]int{}} }

// add counts one outcome of kind, keeping example (when not empty) among the first ten.
func (o *outcomes) add(kind, example string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counts[kind]++
	if example != "" && len(o.examples) < 10 {
		o.examples = append(o.examples, kind+": "+example)
	}
}

func (o *outcomes) get(kind string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[kind]
}

func (o *outcomes) total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.counts {
		n += c
	}
	return n
}

func (o *outcomes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	keys := make([]string, 0, len(o.counts))
	for k := range o.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, o.counts[k])
	}
	return strings.TrimSpace(b.String())
}

// loadClient is an HTTP client for load: no proxy, enough idle connections for the workers.
func loadClient(keepAlive bool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: 128, MaxIdleConnsPerHost: 128, DisableKeepAlives: !keepAlive,
	}}
}

// chatOnce sends one POST /chat from a browser origin and classifies the answer: "answered"
// (200 with the bot's reply), "not_ready" (503 with Retry-After, the JSON shape and CORS
// headers), "hang" (no answer by the client deadline), or a kind naming what went wrong.
func chatOnce(ctx context.Context, client *http.Client, base, origin string, n int, deadline time.Duration) (kind, detail string) {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	msg := fmt.Sprintf("load %d", n)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/chat", strings.NewReader(`{"message":"`+msg+`"}`))
	if err != nil {
		return "error", err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	withPlantedSecrets(req)
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "hang", err.Error()
		}
		return "transport_error", err.Error()
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "hang", err.Error()
		}
		return "body_error", err.Error()
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
		return "no_cors", fmt.Sprintf("%d ACAO %q", resp.StatusCode, got)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		var cr chatReply
		if json.Unmarshal(body, &cr) != nil || cr.Reply != botReply(msg) {
			return "wrong_answer", string(body)
		}
		return "answered", ""
	case http.StatusServiceUnavailable:
		var eb errorBody
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || ra < 1 || json.Unmarshal(body, &eb) != nil || eb.Error == "" || eb.RetryAfter != ra {
			return "bad_503", fmt.Sprintf("Retry-After %q body %s", resp.Header.Get("Retry-After"), body)
		}
		return "not_ready", ""
	default:
		return "status_" + strconv.Itoa(resp.StatusCode), string(body)
	}
}

// streamOnce reads one GET /chat/stream to its end: "done" (the done event came),
// "ended_cleanly" (a clean end before it, as at the drain deadline), "refused" (never
// accepted), "not_ready" (a 503 while draining), or what went wrong.
func streamOnce(ctx context.Context, client *http.Client, base string, words int) string {
	msg := strings.TrimSpace(strings.Repeat("w ", words))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/chat/stream?message="+strings.ReplaceAll(msg, " ", "+"), nil)
	withPlantedSecrets(req)
	resp, err := client.Do(req)
	if err != nil {
		return "not_accepted" // see the JSON clients, and the access-log check
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
		return "not_ready"
	}
	if resp.StatusCode != http.StatusOK {
		return "status_" + strconv.Itoa(resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "stream_broken"
	}
	br := bufio.NewReader(bytes.NewReader(body))
	for {
		ev, err := nextEvent(br)
		if err == io.EOF {
			return "ended_cleanly"
		}
		if err != nil {
			return "partial_event"
		}
		if ev.event == "done" {
			return "done"
		}
	}
}
