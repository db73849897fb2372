package gateway

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hfgate/hfgate/gateway/health"
)

// FuzzForwardedHeaders: whatever X-Forwarded-* and Host a client sends, the upstream request
// goes to the configured upstream with its own Host; X-Forwarded-Proto is http or https; one
// X-Forwarded-For and one X-Real-IP are sent, every entry of the former a canonical IP address
// (so nothing a client wrote passes on as text), and its rightmost entry is X-Real-IP, which is
// the client a plain right-to-left walk (the oracle below) resolves: the peer itself when it is
// untrusted, and a trusted address only when the walk found nothing else. A newline in xff
// splits it into several header lines.
//
//	go test -run '^$' -fuzz '^FuzzForwardedHeaders$' -fuzztime 10s ./gateway
func FuzzForwardedHeaders(f *testing.F) {
	f.Add("203.0.113.7", "https", "owner-space.hf.space", "space.example", "1.2.3.4", true)
	f.Add("", "", "", "", "", false)
	f.Add("1.1.1.1, 2.2.2.2", "javascript", "evil.example\r\nX-Injected: 1", "169.254.169.254:80", "10.0.0.1", false)
	f.Add("x", "HTTPS", "a", "evil.example@other", "", true)
	f.Add("1.1.1.1, 10.0.0.2\n[::ffff:10.0.0.3]:80, ,garbage\r\nX: y, 10.9.9.9", "http", "", "", "", true)
	f.Add("[2001:db8::1]:443,\t2001:DB8::7 , fe80::1%eth0", "", "", "", "", true)
	target, _ := url.Parse("http://127.0.0.1:8000/base")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, xff, xfp, xfh, host, realIP string, trustedPeer bool) {
		var out *http.Request
		p := newProxy(proxyConfig{
			Target:    target,
			Readiness: health.NewTracker(health.TrackerOptions{Logger: slog.New(slog.DiscardHandler), Now: time.Now}),
			Logger:    slog.New(slog.DiscardHandler),
			Answers:   &answers{},
		})
		p.rp.Transport = roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			out = r
			return &http.Response{StatusCode: 204, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		in := httptest.NewRequest(http.MethodGet, "/x", nil)
		in.RemoteAddr = "203.0.113.9:5555"
		peer := "203.0.113.9"
		if trustedPeer {
			in.RemoteAddr, peer = "10.1.2.3:5555", "10.1.2.3"
		}
		in.Host = host
		for k, v := range map[string]string{"X-Forwarded-Proto": xfp, "X-Forwarded-Host": xfh, "X-Real-Ip": realIP} {
			if v != "" {
				in.Header[k] = []string{v}
			}
		}
		if xff != "" {
			in.Header["X-Forwarded-For"] = strings.Split(xff, "\n")
		}
		p.rp.ServeHTTP(httptest.NewRecorder(), entered(in, trusted))
		if out == nil {
			t.Fatal("nothing reached the upstream")
		}
		if out.URL.Scheme != "http" || out.URL.Host != "127.0.0.1:8000" || out.Host != "" && out.Host != "127.0.0.1:8000" {
			t.Fatalf("request went to %s://%s with Host %q, want the upstream only", out.URL.Scheme, out.URL.Host, out.Host)
		}
		if !strings.HasPrefix(out.URL.Path, "/base/") {
			t.Errorf("path %q, want under the upstream's /base", out.URL.Path)
		}
		gotFor, gotProto, gotHost := out.Header.Values("X-Forwarded-For"), out.Header.Values("X-Forwarded-Proto"), out.Header.Values("X-Forwarded-Host")
		gotReal := out.Header.Values("X-Real-Ip")
		if len(gotProto) != 1 || (gotProto[0] != "http" && gotProto[0] != "https") {
			t.Errorf("X-Forwarded-Proto %q, want one of http, https", gotProto)
		}
		if len(gotFor) != 1 || len(gotHost) != 1 || len(gotReal) != 1 {
			t.Fatalf("X-Forwarded-For %q, X-Forwarded-Host %q, X-Real-IP %q: want one value each", gotFor, gotHost, gotReal)
		}
		entries := strings.Split(gotFor[0], ", ")
		for _, e := range entries {
			if a, err := netip.ParseAddr(e); err != nil || a.String() != e || a.Is4In6() {
				t.Fatalf("X-Forwarded-For %q: entry %q is not a canonical, unmapped IP address", gotFor[0], e)
			}
		}
		if rightmost := entries[len(entries)-1]; rightmost != gotReal[0] {
			t.Errorf("X-Forwarded-For %q ends with %q, want X-Real-IP %q", gotFor[0], rightmost, gotReal[0])
		}
		if want := oracleClient(peer, in.Header["X-Forwarded-For"], trustedPeer, trusted); gotReal[0] != want {
			t.Errorf("client %q, want %q (peer %s, X-Forwarded-For %q)", gotReal[0], want, peer, in.Header["X-Forwarded-For"])
		}
		if !trustedPeer {
			if gotFor[0] != peer || gotProto[0] != "http" || gotHost[0] != host {
				t.Errorf("untrusted peer: got For %q Proto %q Host %q, want %q, http, %q (the client's own)", gotFor[0], gotProto[0], gotHost[0], peer, host)
			}
		}
	})
}

// oracleClient is the client walk done plainly, for FuzzForwardedHeaders: every element of
// every line, right to left, read with net.SplitHostPort and netip.ParseAddr.
func oracleClient(peer string, xff []string, trustedPeer bool, trusted []netip.Prefix) string {
	if !trustedPeer {
		return peer
	}
	var elems []string
	for _, line := range xff {
		for _, e := range strings.Split(line, ",") {
			if e = strings.Trim(e, " \t"); e != "" {
				elems = append(elems, e)
			}
		}
	}
	client := peer
	for i := len(elems) - 1; i >= 0; i-- {
		e := elems[i]
		bracketed := strings.HasPrefix(e, "[")
		if h, port, err := net.SplitHostPort(e); err == nil {
			if _, err := strconv.ParseUint(port, 10, 16); err != nil {
				break
			}
			e = h // SplitHostPort also removes the brackets
		} else if bracketed && strings.HasSuffix(e, "]") {
			e = e[1 : len(e)-1]
		}
		a, err := netip.ParseAddr(e)
		if err != nil || a.Zone() != "" || bracketed && !a.Is6() || strings.Contains(e, "[") {
			break
		}
		client = a.Unmap().String()
		if !trustedOracle(a.Unmap(), trusted) {
			break
		}
	}
	return client
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// trustedOracle is the oracle's own trust check: a plain loop over the prefixes.
func trustedOracle(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
