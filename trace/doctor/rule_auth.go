package doctor

import (
	"fmt"
	"strings"

	"github.com/siplab/siplab/trace/ladder"
	"github.com/siplab/siplab/trace/siptext"
)

// Module 07: a wrong password is challenged again (401/407 after a request
// that carried credentials), forever; a 403 after credentials is a policy
// block, not a password problem. Telling the two apart saves the ticket.
func init() {
	register(Rule{Name: "auth", Title: "401/407 loop (wrong password) vs 403 after credentials (policy)", Check: checkAuth})
}

func hasCredentials(m ladder.Message) bool {
	return m.Header("Authorization") != "" || m.Header("Proxy-Authorization") != ""
}

func checkAuth(c *ladder.Call) []Finding {
	// Which requests (by copy key minus the start line) carried credentials.
	creds := map[string]bool{}
	reqKey := func(m ladder.Message) string {
		_, p := siptext.TopVia(m.Header("Via"))
		return p["branch"] + "\x00" + m.Header("CSeq")
	}
	var loop, policy []Evidence
	seen := map[string]bool{}
	for i, m := range c.Messages {
		if m.Request {
			if hasCredentials(m) {
				creds[reqKey(m)] = true
			}
			continue
		}
		if !creds[reqKey(m)] || seen[reqKey(m)+m.Iface] {
			continue
		}
		seen[reqKey(m)+m.Iface] = true
		e := Evidence{N: i + 1, Iface: m.Iface, What: fmt.Sprintf("%s to %s (%s) that carried credentials", m.Label, m.Method, strings.TrimSpace(m.Header("CSeq")))}
		switch m.Status {
		case 401, 407:
			loop = append(loop, e)
		case 403:
			policy = append(policy, e)
		}
	}
	return withEvidence(
		Finding{Severity: Error, Evidence: loop,
			Summary: "challenged again after sending credentials: the password (or user/realm) is wrong — a wrong password never gets 403, it gets 401/407 forever",
			Fix:     "fix the password on the phone (siplab set <phone> password ...)"},
		Finding{Severity: Error, Evidence: policy,
			Summary: "403 Forbidden after credentials: the password was fine, a policy refuses this user (blocked, not allowed to register or call)",
			Fix:     "look at the registrar's policy for the user (lab-nets/users.conf), not at the password"},
	)
}
