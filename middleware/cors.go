package middleware

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// CORS response and request header names, in canonical form.
const (
	headerOrigin           = "Origin"
	headerVary             = "Vary"
	headerACAO             = "Access-Control-Allow-Origin"
	headerACAC             = "Access-Control-Allow-Credentials"
	headerACAM             = "Access-Control-Allow-Methods"
	headerACAH             = "Access-Control-Allow-Headers"
	headerACEH             = "Access-Control-Expose-Headers"
	headerACMA             = "Access-Control-Max-Age"
	headerACRM             = "Access-Control-Request-Method"
	headerACRH             = "Access-Control-Request-Headers"
	corsHeaderPrefix       = "Access-Control-"
	defaultCORSAllowMethod = "GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS"
)

// CORSConfig configures [CORS].
type CORSConfig struct {
	// AllowOrigins lists the origins allowed to read answers, each exactly
	// as browsers send it in the Origin header (scheme://host[:port]), or
	// the single entry "*" for any origin. Matching is exact.
	// Default (nil): CORS is off and the middleware does nothing.
	//
	// Security: "*" together with AllowCredentials lets every web site send
	// credentialed requests and read the answers; the configuration layer
	// rejects that combination, and this middleware does what it is told.
	AllowOrigins []string

	// AllowCredentials sends Access-Control-Allow-Credentials: true, letting
	// browsers include cookies and HTTP authentication. With "*" in
	// AllowOrigins, the request's origin is echoed instead of "*", since
	// browsers refuse "*" on credentialed requests.
	// Default (false): the header is not sent.
	AllowCredentials bool

	// AllowMethods lists the methods announced in answers to preflights.
	// Default (nil): GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS.
	AllowMethods []string

	// AllowHeaders lists the request headers announced in answers to
	// preflights.
	// Default (nil): the header is not sent, so browsers allow only
	// CORS-safelisted request headers.
	AllowHeaders []string

	// ExposeHeaders lists the response headers scripts may read, in
	// addition to Retry-After and X-Request-ID, which are always exposed.
	// Default (nil): Retry-After and X-Request-ID only.
	ExposeHeaders []string

	// MaxAge is how many seconds browsers may cache an answer to a
	// preflight; it is always sent. Negative values are sent as 0.
	// Default (0): browsers do not cache preflights.
	MaxAge int
}

// cors holds the header values computed once from a CORSConfig. Values are
// one-element slices capped at length 1, assigned directly into response
// headers to avoid an allocation per request; an append to them (Header.Add)
// therefore copies instead of changing the shared array.
type cors struct {
	wildcard         bool
	allowCredentials bool
	origins          map[string][]string // allowed origin -> ACAO value
	star             []string
	credentials      []string
	methods          []string
	headers          []string // nil when AllowHeaders is empty
	expose           []string
	maxAge           []string
	varyOrigin       []string
	varyPreflight    []string
}

// one returns s as a header value slice that cannot be appended to in place.
func one(s string) []string {
	return []string{s}[:1:1]
}

func newCORS(cfg CORSConfig) *cors {
	c := &cors{
		allowCredentials: cfg.AllowCredentials,
		origins:          make(map[string][]string, len(cfg.AllowOrigins)),
		star:             one("*"),
		credentials:      one("true"),
		varyOrigin:       one(headerOrigin),
		varyPreflight:    one(headerOrigin + ", " + headerACRM + ", " + headerACRH),
	}
	for _, o := range cfg.AllowOrigins {
		if o == "*" {
			c.wildcard = true
			continue
		}
		c.origins[o] = one(o)
	}

	methods := defaultCORSAllowMethod
	if len(cfg.AllowMethods) > 0 {
		methods = strings.Join(cfg.AllowMethods, ",")
	}
	c.methods = one(methods)

	if len(cfg.AllowHeaders) > 0 {
		c.headers = one(strings.Join(cfg.AllowHeaders, ","))
	}

	// Retry-After and X-Request-ID are always exposed: clients need them
	// to back off and to report problems.
	expose := make([]string, 0, len(cfg.ExposeHeaders)+2)
	for _, list := range [][]string{cfg.ExposeHeaders, {"Retry-After", "X-Request-ID"}} {
		for _, h := range list {
			if h = strings.TrimSpace(h); h != "" && !containsFold(expose, h) {
				expose = append(expose, h)
			}
		}
	}
	c.expose = one(strings.Join(expose, ","))

	c.maxAge = one(strconv.Itoa(max(cfg.MaxAge, 0)))
	return c
}

// CORS returns middleware that implements CORS for the origins in
// cfg.AllowOrigins, without using echo's CORS middleware.
//
// Every answer gets Vary: Origin (added once) while CORS is on. A preflight
// (OPTIONS with Origin and Access-Control-Request-Method) from an allowed
// origin is answered at once with 204 and the Allow-Origin, Allow-Methods,
// Allow-Headers, Max-Age and Allow-Credentials headers; the next handler is
// not called. Any other request from an allowed origin gets Allow-Origin,
// Expose-Headers and Allow-Credentials before the next handler runs, so
// they are on error answers too. Requests without Origin, from other
// origins, and other OPTIONS requests are passed on without CORS headers.
//
// Upstream answers must not add CORS headers of their own; remove them with
// [StripCORSHeaders] so that there is exactly one Access-Control-Allow-Origin.
func CORS(cfg CORSConfig) echo.MiddlewareFunc {
	if len(cfg.AllowOrigins) == 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	cc := newCORS(cfg)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			h := c.Response().Header()
			origin := req.Header.Get(headerOrigin)
			acao := cc.allowOrigin(origin)
			preflight := acao != nil && req.Method == http.MethodOptions &&
				req.Header.Get(headerACRM) != ""
			if preflight {
				// The answer is built here from scratch, so Vary is set
				// rather than added to.
				h[headerVary] = cc.varyPreflight
				h[headerACAO] = acao
				h[headerACAM] = cc.methods
				if cc.headers != nil {
					h[headerACAH] = cc.headers
				}
				h[headerACMA] = cc.maxAge
				if cc.allowCredentials {
					h[headerACAC] = cc.credentials
				}
				return c.NoContent(http.StatusNoContent)
			}
			cc.addVaryOrigin(h)
			if acao != nil {
				h[headerACAO] = acao
				h[headerACEH] = cc.expose
				if cc.allowCredentials {
					h[headerACAC] = cc.credentials
				}
			}
			return next(c)
		}
	}
}

// allowOrigin returns the Access-Control-Allow-Origin value for origin, or
// nil if origin is empty or not allowed.
func (cc *cors) allowOrigin(origin string) []string {
	if origin == "" {
		return nil
	}
	if v, ok := cc.origins[origin]; ok {
		return v
	}
	if !cc.wildcard {
		return nil
	}
	if cc.allowCredentials {
		// Browsers reject "*" on credentialed requests.
		return []string{origin}
	}
	return cc.star
}

// addVaryOrigin adds Origin to the Vary header unless it is already listed
// (in any case, in any of the header's comma-separated values) or Vary is "*".
func (cc *cors) addVaryOrigin(h http.Header) {
	values := h[headerVary]
	if len(values) == 0 {
		h[headerVary] = cc.varyOrigin
		return
	}
	for _, v := range values {
		for v != "" {
			var token string
			token, v, _ = strings.Cut(v, ",")
			token = strings.TrimSpace(token)
			if token == "*" || strings.EqualFold(token, headerOrigin) {
				return
			}
		}
	}
	h.Add(headerVary, headerOrigin)
}

// StripCORSHeaders deletes every header whose name starts with
// "Access-Control-", in any case, from h. The gateway calls it on upstream
// answers so that CORS is decided in one place.
func StripCORSHeaders(h http.Header) {
	for k := range h {
		if len(k) >= len(corsHeaderPrefix) && strings.EqualFold(k[:len(corsHeaderPrefix)], corsHeaderPrefix) {
			delete(h, k)
		}
	}
}

// containsFold reports whether list holds s, ignoring case.
func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
