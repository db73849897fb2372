package clientip

import (
	"net/netip"
	"strings"
	"testing"
)

// testTrusted is the default TRUSTED_PROXIES' shape: loopback and private ranges.
var testTrusted = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("fc00::/7"),
}

func TestResolveClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		peer        string
		xff         []string
		trusted     []netip.Prefix // nil: testTrusted
		wantClient  string         // "" for an invalid address
		wantChain   string
		peerTrusted bool
	}{
		// The direct peer.
		{name: "untrusted peer, no header", peer: "203.0.113.9:5555", wantClient: "203.0.113.9", wantChain: "203.0.113.9"},
		{name: "untrusted peer: its header is ignored", peer: "203.0.113.9:5555", xff: []string{"198.51.100.1"},
			wantClient: "203.0.113.9", wantChain: "203.0.113.9"},
		{name: "untrusted peer spoofing a trusted hop", peer: "203.0.113.9:5555", xff: []string{"10.0.0.1"},
			wantClient: "203.0.113.9", wantChain: "203.0.113.9"},
		{name: "trusted peer, no header", peer: "127.0.0.1:5555", wantClient: "127.0.0.1", wantChain: "127.0.0.1", peerTrusted: true},
		{name: "trusted peer, empty header line", peer: "127.0.0.1:5555", xff: []string{""},
			wantClient: "127.0.0.1", wantChain: "127.0.0.1", peerTrusted: true},
		{name: "nobody trusted", peer: "10.1.2.3:5555", xff: []string{"203.0.113.7"}, trusted: []netip.Prefix{},
			wantClient: "10.1.2.3", wantChain: "10.1.2.3"},
		{name: "unreadable peer", peer: "@pipe", xff: []string{"203.0.113.7"}, wantClient: "", wantChain: ""},

		// One and several hops.
		{name: "HF edge: one hop", peer: "10.1.2.3:5555", xff: []string{"203.0.113.7"},
			wantClient: "203.0.113.7", wantChain: "203.0.113.7", peerTrusted: true},
		{name: "two trusted hops dropped", peer: "127.0.0.1:5555", xff: []string{"203.0.113.7, 10.0.0.2, 10.0.0.3"},
			wantClient: "203.0.113.7", wantChain: "203.0.113.7", peerTrusted: true},
		{name: "spoofed leftmost entries kept left of the client", peer: "10.1.2.3:5555", xff: []string{"1.1.1.1, 10.9.9.9, 203.0.113.7"},
			wantClient: "203.0.113.7", wantChain: "1.1.1.1, 10.9.9.9, 203.0.113.7", peerTrusted: true},
		{name: "spoofed trusted entry left of the client does not win", peer: "10.1.2.3:5555", xff: []string{"127.0.0.1, 203.0.113.7, 10.0.0.2"},
			wantClient: "203.0.113.7", wantChain: "127.0.0.1, 203.0.113.7", peerTrusted: true},
		{name: "all trusted: the leftmost", peer: "127.0.0.1:5555", xff: []string{"10.0.0.1, 10.0.0.2"},
			wantClient: "10.0.0.1", wantChain: "10.0.0.1", peerTrusted: true},

		// Garbage.
		{name: "garbage rightmost: the peer", peer: "10.1.2.3:5555", xff: []string{"203.0.113.7, unknown"},
			wantClient: "10.1.2.3", wantChain: "10.1.2.3", peerTrusted: true},
		{name: "garbage after a trusted hop: that hop", peer: "10.1.2.3:5555", xff: []string{"203.0.113.7, <script>, 10.0.0.2"},
			wantClient: "10.0.0.2", wantChain: "10.0.0.2", peerTrusted: true},
		{name: "garbage left of the client ends the chain", peer: "10.1.2.3:5555", xff: []string{"1.1.1.1, x, 2.2.2.2, 203.0.113.7"},
			wantClient: "203.0.113.7", wantChain: "2.2.2.2, 203.0.113.7", peerTrusted: true},
		{name: "host name is garbage", peer: "10.1.2.3:5555", xff: []string{"evil.example"},
			wantClient: "10.1.2.3", wantChain: "10.1.2.3", peerTrusted: true},
		{name: "empty elements ignored", peer: "10.1.2.3:5555", xff: []string{",203.0.113.7,, ,"},
			wantClient: "203.0.113.7", wantChain: "203.0.113.7", peerTrusted: true},

		// Spelling.
		{name: "no spaces and tabs", peer: "10.1.2.3:5555", xff: []string{"\t198.51.100.1,203.0.113.7\t"},
			wantClient: "203.0.113.7", wantChain: "198.51.100.1, 203.0.113.7", peerTrusted: true},
		{name: "several header lines", peer: "10.1.2.3:5555", xff: []string{"198.51.100.1, 203.0.113.7", "10.0.0.2", "10.0.0.3"},
			wantClient: "203.0.113.7", wantChain: "198.51.100.1, 203.0.113.7", peerTrusted: true},
		{name: "chain across header lines", peer: "10.1.2.3:5555", xff: []string{"198.51.100.1", "203.0.113.7, 10.0.0.2"},
			wantClient: "203.0.113.7", wantChain: "198.51.100.1, 203.0.113.7", peerTrusted: true},
		{name: "IPv4 with port", peer: "10.1.2.3:5555", xff: []string{"203.0.113.7:5678"},
			wantClient: "203.0.113.7", wantChain: "203.0.113.7", peerTrusted: true},
		{name: "IPv6 plain", peer: "10.1.2.3:5555", xff: []string{"2001:DB8:0::7"},
			wantClient: "2001:db8::7", wantChain: "2001:db8::7", peerTrusted: true},
		{name: "IPv6 bracketed, with and without port", peer: "10.1.2.3:5555", xff: []string{"[2001:db8::1]:443, [2001:db8::7]"},
			wantClient: "2001:db8::7", wantChain: "2001:db8::1, 2001:db8::7", peerTrusted: true},
		{name: "IPv6 ending in a port-like group is an address", peer: "10.1.2.3:5555", xff: []string{"2001:db8::1:80"},
			wantClient: "2001:db8::1:80", wantChain: "2001:db8::1:80", peerTrusted: true},
		{name: "bracketed IPv4 is garbage", peer: "10.1.2.3:5555", xff: []string{"[203.0.113.7]"},
			wantClient: "10.1.2.3", wantChain: "10.1.2.3", peerTrusted: true},
		{name: "IPv6 with zone is garbage", peer: "10.1.2.3:5555", xff: []string{"fe80::1%eth0"},
			wantClient: "10.1.2.3", wantChain: "10.1.2.3", peerTrusted: true},
		{name: "IPv6 trusted peer", peer: "[::1]:5555", xff: []string{"2001:db8::7, fd00::2"},
			wantClient: "2001:db8::7", wantChain: "2001:db8::7", peerTrusted: true},

		// IPv4-mapped IPv6: unmapped for the trust check and in the output.
		{name: "mapped trusted hop is trusted", peer: "10.1.2.3:5555", xff: []string{"203.0.113.7, ::ffff:10.0.0.2"},
			wantClient: "203.0.113.7", wantChain: "203.0.113.7", peerTrusted: true},
		{name: "mapped client unmapped", peer: "10.1.2.3:5555", xff: []string{"[::ffff:203.0.113.7]:80"},
			wantClient: "203.0.113.7", wantChain: "203.0.113.7", peerTrusted: true},
		{name: "mapped peer is trusted", peer: "[::ffff:10.1.2.3]:5555", xff: []string{"203.0.113.7"},
			wantClient: "203.0.113.7", wantChain: "203.0.113.7", peerTrusted: true},
		{name: "mapped untrusted peer unmapped", peer: "[::ffff:203.0.113.9]:5555",
			wantClient: "203.0.113.9", wantChain: "203.0.113.9"},
		{name: "peer's zone dropped", peer: "[fe80::1%eth0]:5555", trusted: []netip.Prefix{netip.MustParsePrefix("fe80::/10")},
			xff: []string{"203.0.113.7"}, wantClient: "203.0.113.7", wantChain: "203.0.113.7", peerTrusted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			trusted := tt.trusted
			if trusted == nil {
				trusted = testTrusted
			}
			got := Resolve(tt.peer, tt.xff, trusted)
			gotClient := ""
			if got.Addr.IsValid() {
				gotClient = got.Addr.String()
			}
			if gotClient != tt.wantClient || got.Text != tt.wantClient {
				t.Errorf("client: got %q (text %q), want %q", gotClient, got.Text, tt.wantClient)
			}
			if chain := got.Chain(); chain != tt.wantChain {
				t.Errorf("chain: got %q, want %q", chain, tt.wantChain)
			}
			if got.PeerTrusted != tt.peerTrusted {
				t.Errorf("peer trusted: got %v, want %v", got.PeerTrusted, tt.peerTrusted)
			}
		})
	}
}

// TestResolveClientNoCopy: in the common cases the client's text and the chain are the
// request's own strings, not copies; the access log relies on it to stay allocation-free.
func TestResolveClientNoCopy(t *testing.T) {
	for _, tt := range []struct {
		name, peer string
		xff        []string
	}{
		{"peer", "127.0.0.1:5555", nil},
		{"edge", "10.1.2.3:5555", []string{"203.0.113.7"}},
		{"chain", "10.1.2.3:5555", []string{"198.51.100.1, 203.0.113.7, 10.0.0.2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c Client
			allocs := testing.AllocsPerRun(100, func() {
				c = Resolve(tt.peer, tt.xff, testTrusted)
				_ = c.Chain()
			})
			if allocs != 0 {
				t.Errorf("got %v allocations, want 0", allocs)
			}
			if !strings.HasSuffix(c.Chain(), c.Text) {
				t.Errorf("chain %q does not end with the client %q", c.Chain(), c.Text)
			}
		})
	}
}

func BenchmarkResolveClient(b *testing.B) {
	xff := []string{"198.51.100.1, 203.0.113.7"}
	b.ReportAllocs()
	for b.Loop() {
		if c := Resolve("10.1.2.3:5555", xff, testTrusted); c.Chain() != xff[0] {
			b.Fatalf("chain %q", c.Chain())
		}
	}
}
