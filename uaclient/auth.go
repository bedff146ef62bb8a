package uaclient

import (
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// authSession answers the digest challenges of one request exchange.
//
// The rule that makes "wrong password" visible: once we have answered a
// challenge, another 401/407 that is not stale=true means the server
// refused our credentials. A real phone would loop forever (the training
// page's "401 loop"); we stop and say so.
type authSession struct {
	answered bool
	rounds   int
}

// maxAuthRounds bounds stale=true retries too: a server that keeps saying
// stale is broken, and a loop would hide that.
const maxAuthRounds = 4

// answer adds credentials for the challenge in res to next.
func (a *authSession) answer(p *Phone, next *sip.Request, res *sip.Response) error {
	chalHdr, credHdr := "WWW-Authenticate", "Authorization"
	if res.StatusCode == sip.StatusProxyAuthRequired {
		chalHdr, credHdr = "Proxy-Authenticate", "Proxy-Authorization"
	}
	password := p.currentSettings().Password
	if password == "" {
		return fmt.Errorf("%w (%d %s)", ErrNoCredentials, res.StatusCode, res.Reason)
	}
	chal, err := pickChallenge(res.GetHeaders(chalHdr))
	if err != nil {
		return fmt.Errorf("%w: %d with unusable %s: %w", ErrRejected, res.StatusCode, chalHdr, err)
	}
	a.rounds++
	if (a.answered && !chal.Stale) || a.rounds > maxAuthRounds {
		return fmt.Errorf("%w (%d again)", ErrWrongCredentials, res.StatusCode)
	}
	a.answered = true
	cred, err := digest.Digest(chal, digest.Options{
		Method:   string(next.Method),
		URI:      next.Recipient.String(),
		Username: p.cfg.User,
		Password: password,
		Count:    1,
	})
	if err != nil {
		return fmt.Errorf("%w: compute digest: %w", ErrRejected, err)
	}
	// Keep credentials for other realms (a proxy and a registrar may both
	// challenge); replace only ours.
	replaceCredentials(next, credHdr, chal.Realm, cred.String())
	return nil
}

// pickChallenge takes the first Digest challenge with an algorithm we can
// compute.
func pickChallenge(hdrs []sip.Header) (*digest.Challenge, error) {
	if len(hdrs) == 0 {
		return nil, fmt.Errorf("no challenge header")
	}
	var lastErr error
	for _, h := range hdrs {
		chal, err := digest.ParseChallenge(h.Value())
		if err != nil {
			lastErr = err
			continue
		}
		// Some servers write algorithm=md5; the math is the same.
		chal.Algorithm = strings.ToUpper(chal.Algorithm)
		if !digest.CanDigest(chal) {
			lastErr = fmt.Errorf("unsupported algorithm %q or qop %v", chal.Algorithm, chal.QOP)
			continue
		}
		return chal, nil
	}
	return nil, lastErr
}

func replaceCredentials(req *sip.Request, name, realm, value string) {
	var keep []string
	for _, h := range req.GetHeaders(name) {
		if c, err := digest.ParseCredentials(h.Value()); err == nil && c.Realm != realm {
			keep = append(keep, h.Value())
		}
	}
	for req.RemoveHeader(name) {
	}
	for _, v := range keep {
		req.AppendHeader(sip.NewHeader(name, v))
	}
	req.AppendHeader(sip.NewHeader(name, value))
}
