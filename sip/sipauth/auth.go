// Package sipauth is the server side of SIP digest authentication
// (RFC 3261 §22, RFC 2617 MD5 with qop=auth), shared by the registrar (401)
// and the proxy (407).
//
// Choices worth knowing:
//   - Nonces are HMAC-signed timestamps: issuing a challenge stores nothing.
//     They expire after NonceTTL; a correct answer to an expired nonce gets a
//     stale=true challenge so the phone retries silently.
//   - Nonce counts are tracked per nonce in a sharded, bounded table, so a
//     captured Authorization cannot be replayed. A replay of correct
//     credentials is challenged with stale=true: the replayer learns nothing a
//     bare request would not have told it, and an honest phone that reuses a
//     count recovers without bothering its user.
//   - Credentials without qop (RFC 2069 style) are accepted only for a nonce
//     we issued, and then only once: without nc there is no other way to stop
//     a replay.
//   - A wrong password and an unknown user get the same challenge after the
//     same amount of work, so responses do not reveal which users exist.
//   - Only a user blocked by policy who proved the password gets 403.
//   - Passwords and HA1 values are never logged.
package sipauth

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Kind selects the header pair and status code of a challenge.
type Kind int

const (
	// WWW is user-agent/registrar authentication: 401, Authorization,
	// WWW-Authenticate.
	WWW Kind = iota
	// Proxy is proxy authentication: 407, Proxy-Authorization,
	// Proxy-Authenticate.
	Proxy
)

func (k Kind) String() string {
	if k == Proxy {
		return "proxy"
	}
	return "www"
}

// CredentialsHeader is the request header carrying the client's answer.
func (k Kind) CredentialsHeader() string {
	if k == Proxy {
		return "Proxy-Authorization"
	}
	return "Authorization"
}

// ChallengeHeader is the response header carrying the challenge.
func (k Kind) ChallengeHeader() string {
	if k == Proxy {
		return "Proxy-Authenticate"
	}
	return "WWW-Authenticate"
}

// Verdict is what to do with a request.
type Verdict int

const (
	// Accept: the credentials are good and fresh.
	Accept Verdict = iota
	// Challenge: send 401/407 (missing credentials, wrong password, unknown
	// user or nonce, expired nonce, replay).
	Challenge
	// Forbid: 403, the user proved the password but is blocked by policy.
	Forbid
	// Reject: 400, the credentials are malformed or answer something we
	// never asked (other algorithm or qop, uri not the Request-URI).
	Reject
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Challenge:
		return "challenge"
	case Forbid:
		return "forbid"
	case Reject:
		return "reject"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Decision is the outcome of Authenticate.
type Decision struct {
	Verdict Verdict
	// User is the digest username the client claimed (authenticated only
	// when Verdict is Accept).
	User string
	// Stale asks the client to retry with the new nonce without prompting
	// its user (the old nonce expired or was already used).
	Stale bool
	// Reason says why, for logs; it never holds secrets.
	Reason string
	// BadCredentials: the client answered our nonce with a wrong password
	// or for a user that does not exist — a guess, what brute-force
	// guards count. A first request without credentials, a stale nonce or
	// a replay is not one.
	BadCredentials bool
}

// Config configures an Authenticator.
type Config struct {
	// Realm is the protection domain shown to users and mixed into HA1.
	Realm string
	Users *Users
	// NonceTTL is how long a nonce may be used; default 5 minutes.
	NonceTTL time.Duration
	// MaxTrackedNonces bounds the replay table; default 1<<20 nonces.
	MaxTrackedNonces int
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.Realm == "" {
		return ErrNoRealm
	}
	for _, r := range []byte(c.Realm) {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return fmt.Errorf("%w: %q", ErrBadRealm, c.Realm)
		}
	}
	if c.Users == nil {
		return ErrNoUsers
	}
	if c.NonceTTL <= 0 {
		c.NonceTTL = 5 * time.Minute
	}
	if c.MaxTrackedNonces <= 0 {
		c.MaxTrackedNonces = 1 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Authenticator checks digest credentials and issues challenges. It is safe
// for concurrent use.
type Authenticator struct {
	realm  string
	users  *Users
	ttl    time.Duration
	now    func() time.Time
	log    *slog.Logger
	ha1    map[string][16]byte
	dummy  [16]byte // HA1 for unknown users, so they cost the same work
	opaque string
	nonces *nonceMinter
	nc     *ncTracker
}

// New builds an Authenticator; HA1 for every user is computed once here.
func New(cfg Config) (*Authenticator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var secret [40]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, fmt.Errorf("sipauth: nonce key: %w", err)
	}
	a := &Authenticator{
		realm:  cfg.Realm,
		users:  cfg.Users,
		ttl:    cfg.NonceTTL,
		now:    cfg.Now,
		log:    cfg.Logger.With("component", "sipauth", "realm", cfg.Realm),
		ha1:    make(map[string][16]byte, cfg.Users.Len()),
		opaque: hex.EncodeToString(secret[32:40]),
		nonces: newNonceMinter(secret[:32], 0),
		nc:     newNCTracker(cfg.NonceTTL, cfg.MaxTrackedNonces),
	}
	for _, name := range cfg.Users.Names() {
		u, _ := cfg.Users.Lookup(name)
		a.ha1[name] = md5.Sum([]byte(name + ":" + cfg.Realm + ":" + u.Password))
	}
	a.dummy = md5.Sum(secret[:])
	return a, nil
}

// Realm is the configured realm.
func (a *Authenticator) Realm() string { return a.realm }

// Users is the user table the Authenticator checks against.
func (a *Authenticator) Users() *Users { return a.users }

// Authenticate checks the request's credentials of the given kind.
func (a *Authenticator) Authenticate(req *sip.Request, kind Kind) Decision {
	d := a.authenticate(req, kind)
	if a.log.Enabled(context.Background(), slog.LevelDebug) {
		a.log.Debug("digest decision", "call_id", callID(req), "kind", kind.String(),
			"verdict", d.Verdict.String(), "user", d.User, "stale", d.Stale, "reason", d.Reason)
	}
	return d
}

func (a *Authenticator) authenticate(req *sip.Request, kind Kind) Decision {
	var (
		c     credentials
		found bool
	)
	for _, h := range req.GetHeaders(kind.CredentialsHeader()) {
		v := h.Value()
		if !hasDigestScheme(v) {
			continue // another scheme (Basic, ...): not ours to judge
		}
		pc, err := parseCredentials(v)
		if err != nil {
			return Decision{Verdict: Reject, Reason: err.Error()}
		}
		// Several credentials may be present, one per realm (RFC 3261
		// §22.3); only ours matters.
		if pc.realm == a.realm {
			c, found = pc, true
			break
		}
	}
	if !found {
		return Decision{Verdict: Challenge, Reason: "no credentials for realm"}
	}
	d := Decision{User: c.username}
	reject := func(why string) Decision { d.Verdict, d.Reason = Reject, why; return d }
	challenge := func(why string, stale bool) Decision {
		d.Verdict, d.Reason, d.Stale = Challenge, why, stale
		return d
	}

	if c.username == "" || c.nonce == "" || c.uri == "" || c.response == "" {
		return reject("missing username, nonce, uri or response")
	}
	if c.algorithm != "" && !strings.EqualFold(c.algorithm, "MD5") {
		return reject("unsupported algorithm " + strconv.Quote(clip(c.algorithm)))
	}
	var nc uint32 = 1
	switch c.qop {
	case "auth":
		if c.cnonce == "" {
			return reject("qop=auth without cnonce")
		}
		if len(c.nc) != 8 {
			return reject("nc must be 8 hex digits")
		}
		n, err := strconv.ParseUint(c.nc, 16, 32)
		if err != nil {
			return reject("nc must be 8 hex digits")
		}
		nc = uint32(n)
	case "":
		// RFC 2069 style: no nc; the nonce becomes single-use.
		if c.cnonce != "" || c.nc != "" {
			return reject("cnonce or nc without qop")
		}
	default:
		return reject("unsupported qop " + strconv.Quote(clip(c.qop)))
	}
	var got [md5.Size]byte
	if len(c.response) != 2*md5.Size {
		return reject("response is not 32 hex digits")
	}
	if _, err := hex.Decode(got[:], []byte(c.response)); err != nil {
		return reject("response is not 32 hex digits")
	}
	if why := uriMismatch(c.uri, req); why != "" {
		return reject(why)
	}

	id, issued, ours := a.nonces.open(c.nonce)
	if !ours {
		return challenge("unknown nonce", false)
	}
	if c.opaque != "" && c.opaque != a.opaque {
		return challenge("opaque does not match", false)
	}

	ha1, known := a.ha1[c.username]
	if !known {
		ha1 = a.dummy
	}
	want := response(&ha1, string(req.Method), &c)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !known {
		d.BadCredentials = true
		if !known {
			return challenge("unknown user", false)
		}
		return challenge("wrong response", false)
	}
	now := a.now()
	age := now.Sub(issued)
	if age > a.ttl {
		return challenge("nonce expired", true)
	}
	if age < -time.Minute {
		// Signed by us but from the future: the clock went backwards.
		return challenge("nonce from the future", true)
	}
	switch a.nc.use(id, nc, now, &a.nonces.seq) {
	case ncReplay:
		return challenge("replayed nonce count", true)
	case ncForgotten:
		return challenge("nonce no longer tracked", true)
	}
	if u, _ := a.users.Lookup(c.username); u.Blocked {
		d.Verdict, d.Reason = Forbid, "user blocked"
		return d
	}
	d.Verdict, d.Reason = Accept, "ok"
	return d
}

// uriMismatch compares the digest-uri with the Request-URI. They must name
// the same resource (RFC 2617 §3.2.2.5); comparing parsed scheme, user, host
// and port tolerates harmless rewriting of parameters.
func uriMismatch(digestURI string, req *sip.Request) string {
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil {
		return "digest uri does not parse"
	}
	r := &req.Recipient
	if u.Scheme != r.Scheme || u.User != r.User || !strings.EqualFold(u.Host, r.Host) || u.Port != r.Port || u.Raw() != r.Raw() {
		return "digest uri is not the Request-URI"
	}
	return ""
}

// response computes the expected request-digest without allocating.
func response(ha1 *[16]byte, method string, c *credentials) [md5.Size]byte {
	var buf [512]byte
	b := append(buf[:0], method...)
	b = append(b, ':')
	b = append(b, c.uri...)
	ha2 := md5.Sum(b)

	b = hex.AppendEncode(buf[:0], ha1[:])
	b = append(b, ':')
	b = append(b, c.nonce...)
	b = append(b, ':')
	if c.qop != "" {
		b = append(b, c.nc...)
		b = append(b, ':')
		b = append(b, c.cnonce...)
		b = append(b, ':')
		b = append(b, c.qop...)
		b = append(b, ':')
	}
	b = hex.AppendEncode(b, ha2[:])
	return md5.Sum(b)
}

// Respond builds the response for a decision that is not Accept: a 401/407
// carrying a fresh challenge, a 403 or a 400. For Accept it returns nil.
func (a *Authenticator) Respond(req *sip.Request, kind Kind, d Decision) *sip.Response {
	switch d.Verdict {
	case Accept:
		return nil
	case Forbid:
		return warn(sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden", nil), d.Reason)
	case Reject:
		return warn(sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request (malformed credentials)", nil), d.Reason)
	}
	// A challenge never says why: "unknown user" versus "wrong password"
	// would tell a prober which accounts exist.
	code, reason := sip.StatusUnauthorized, "Unauthorized"
	if kind == Proxy {
		code, reason = sip.StatusProxyAuthRequired, "Proxy Authentication Required"
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.AppendHeader(sip.NewHeader(kind.ChallengeHeader(), a.ChallengeValue(d.Stale)))
	return res
}

// warn adds the reason as a Warning header (RFC 3261 §20.43, code 399),
// which is what a student sees in a capture.
func warn(res *sip.Response, reason string) *sip.Response {
	if reason != "" {
		res.AppendHeader(sip.NewHeader("Warning", `399 siplab "`+strings.NewReplacer(`"`, "'", `\`, "/").Replace(reason)+`"`))
	}
	return res
}

// ChallengeValue is a fresh challenge header value.
func (a *Authenticator) ChallengeValue(stale bool) string {
	var b strings.Builder
	b.Grow(160)
	b.WriteString(`Digest realm="`)
	b.WriteString(a.realm)
	b.WriteString(`", nonce="`)
	b.WriteString(a.nonces.mint(a.now()))
	b.WriteString(`", opaque="`)
	b.WriteString(a.opaque)
	b.WriteString(`", algorithm=MD5, qop="auth"`)
	if stale {
		b.WriteString(", stale=true")
	}
	return b.String()
}

func callID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

// trackedNonces reports the replay table size.
func (a *Authenticator) trackedNonces() int { return a.nc.size() }
