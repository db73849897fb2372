// Package clientip decides who sent a request: the client address, decided once by the gateway from the direct peer and
// X-Forwarded-For, and handed to the backend as the rightmost X-Forwarded-For entry (and
// X-Real-IP), so that a backend trusting only its own peer (uvicorn's --forwarded-allow-ips
// 127.0.0.1) reports the user rather than the Space's edge.
//
// The walk, from the right: the direct peer first; while the address in hand is in
// TRUSTED_PROXIES, the next X-Forwarded-For entry to its left is believed. The first untrusted
// address is the client; when every entry is trusted, the leftmost one is. An entry that is not
// an address ends the walk and the last address read wins: what a trusted hop wrote is readable,
// and what lies beyond unreadable text cannot be attributed to anyone.
//
// Entries are read leniently, as proxies write them: surrounding spaces and tabs, empty list
// elements (ignored, as RFC 9110 lists allow), plain or bracketed IPv6, an IPv4-mapped IPv6
// address (unmapped, for the trust check and the output alike), and a port after the address
// ("192.0.2.1:5678", "[2001:db8::1]:443"; dropped). An entry with an IPv6 zone
// ("fe80::1%eth0") names an interface of another machine and counts as unreadable.
//
// Hand-written rather than taken from echo's ExtractIPFromXFFHeader (what Context.RealIP reads
// once set as Echo.IPExtractor; hfgate sets none and never calls RealIP): it returns the client
// as one string, with no chain to send upstream; its trust is loopback, link-local and private
// addresses unless each is switched off, plus extra ranges, where TRUSTED_PROXIES is one prefix
// list taken as written; and an entry net.ParseIP cannot read (one with a port, an empty list
// element, a zone) makes it answer the direct peer, dropping what the trusted hops wrote.
package clientip

import (
	"net/netip"
	"strings"
)

// Client is who sent a request, as resolved by Resolve.
type Client struct {
	// Addr is the client's address, never IPv4-mapped and without zone. The zero Addr (invalid)
	// when the peer's address could not be read (RemoteAddr not ip:port).
	Addr netip.Addr
	// Text is Addr in canonical form (netip's String), borrowed from the request's own strings
	// where they already spell it so; "" when Addr is invalid.
	Text string
	// PeerTrusted reports whether the direct peer is in the trusted prefixes, that is whether
	// its X-Forwarded-* headers were read at all.
	PeerTrusted bool

	xff      []string // the X-Forwarded-For lines, when the chain comes from them
	from, to position // the chain: from the start of its leftmost entry to the end of the client's
}

// position is a byte offset in one X-Forwarded-For line.
type position struct{ line, off int }

// Resolve resolves the client of a request from its direct peer (remoteAddr, as in
// http.Request.RemoteAddr), its X-Forwarded-For header lines (xff, in order; nil if none) and
// the trusted prefixes. It is called once per request, where the request enters
// (the gateway's ServeHTTP), and its answer kept on the request's record for the rewrite and the access log; it
// does not allocate unless an address must be rewritten into canonical form.
func Resolve(remoteAddr string, xff []string, trusted []netip.Prefix) Client {
	peer, peerText, ok := parsePeer(remoteAddr)
	if !ok {
		return Client{}
	}
	c := Client{Addr: peer, Text: peerText, PeerTrusted: isTrustedAddr(peer, trusted)}
	if !c.PeerTrusted {
		return c
	}
	w := walker{lines: xff, line: len(xff) - 1}
	if w.line >= 0 {
		w.off = len(xff[w.line])
	}
	// Find the client: past trusted addresses, up to the first untrusted one or unreadable text.
	found := false
	for !found {
		entry, start, end, ok := w.prev()
		if !ok {
			break
		}
		addr, ok := parseEntry(entry)
		if !ok {
			break // unreadable: the last address read wins
		}
		c.Addr, c.Text, c.xff = addr, canonicalText(addr, entry), xff
		c.from, c.to = start, end
		found = !isTrustedAddr(addr, trusted)
	}
	if !found {
		return c // every entry read was trusted: the leftmost of them (or the peer) is the client
	}
	// The chain sent upstream keeps the (unverified) readable entries left of the client, as far
	// as the first unreadable one; the trusted hops to its right are dropped.
	for {
		entry, start, _, ok := w.prev()
		if !ok {
			break
		}
		if _, ok := parseEntry(entry); !ok {
			break
		}
		c.from = start
	}
	return c
}

// Chain is the X-Forwarded-For value to send upstream: the readable entries left of the client,
// then the client, each in canonical form, separated by ", ". Its rightmost entry is always
// Text. It is a substring of the request's own header when that already reads so (no copy).
func (c Client) Chain() string {
	if c.xff == nil {
		return c.Text // the peer itself
	}
	var stack [256]byte
	buf := stack[:0]
	for i := c.from.line; i <= c.to.line; i++ {
		line := c.xff[i]
		start, end := 0, len(line)
		if i == c.from.line {
			start = c.from.off
		}
		if i == c.to.line {
			end = c.to.off
		}
		for elem := range strings.SplitSeq(line[start:end], ",") {
			if addr, ok := parseEntry(trimOWS(elem)); ok {
				if len(buf) > 0 {
					buf = append(buf, ", "...)
				}
				buf = addr.AppendTo(buf)
			}
		}
	}
	if c.from.line == c.to.line {
		if same := c.xff[c.from.line][c.from.off:c.to.off]; same == string(buf) {
			return same
		}
	}
	return string(buf)
}

// walker reads X-Forwarded-For entries from right to left across header lines (a list split
// over several lines is one list, in order).
type walker struct {
	lines     []string
	line, off int // entries of lines[line] before off are still to read; line < 0 when done
}

// prev returns the next entry to the left, trimmed, and where it starts and ends. ok is false
// when no entry is left. Empty list elements are skipped.
func (w *walker) prev() (entry string, start, end position, ok bool) {
	for w.line >= 0 {
		line := w.lines[w.line]
		if w.off < 0 {
			w.line--
			if w.line >= 0 {
				w.off = len(w.lines[w.line])
			}
			continue
		}
		comma := strings.LastIndexByte(line[:w.off], ',')
		s, e := comma+1, w.off
		w.off = comma // -1 after the line's first entry
		for s < e && (line[s] == ' ' || line[s] == '\t') {
			s++
		}
		for e > s && (line[e-1] == ' ' || line[e-1] == '\t') {
			e--
		}
		if s < e {
			return line[s:e], position{w.line, s}, position{w.line, e}, true
		}
	}
	return "", position{}, position{}, false
}

// parseEntry reads one X-Forwarded-For entry (trimmed): an IPv4 or IPv6 address, IPv6 possibly
// in brackets, either possibly followed by :port. The address is returned unmapped.
func parseEntry(s string) (netip.Addr, bool) {
	var addr netip.Addr
	var err error
	switch {
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		addr, err = netip.ParseAddr(s[1 : len(s)-1])
		if err == nil && !addr.Is6() {
			return netip.Addr{}, false // brackets are for IPv6 only, as in URLs
		}
	case strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1:
		// "[v6]:port" or "v4:port". ParseAddrPort refuses brackets around IPv4.
		var ap netip.AddrPort
		ap, err = netip.ParseAddrPort(s)
		addr = ap.Addr()
	default:
		addr, err = netip.ParseAddr(s)
	}
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// parsePeer reads RemoteAddr (ip:port, as net/http sets it). The peer's own zone, if any, is
// dropped: TRUSTED_PROXIES holds no zones, and the backend could not use one.
func parsePeer(remoteAddr string) (netip.Addr, string, bool) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, "", false
	}
	addr := ap.Addr().WithZone("").Unmap()
	host := remoteAddr[:strings.LastIndexByte(remoteAddr, ':')]
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return addr, canonicalText(addr, host), true
}

// canonicalText returns s when it already spells addr canonically, else addr.String(): the
// common case (a plain address as net/http or a proxy wrote it) costs no allocation.
func canonicalText(addr netip.Addr, s string) string {
	var stack [64]byte
	if string(addr.AppendTo(stack[:0])) == s {
		return s
	}
	return addr.String()
}

func isTrustedAddr(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func trimOWS(s string) string { return strings.Trim(s, " \t") }
