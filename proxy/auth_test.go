package proxy

import (
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/siplab/siplab/sip/sipauth"
)

func newAuth(t testing.TB) *sipauth.Authenticator {
	t.Helper()
	users, err := sipauth.NewUsers(
		sipauth.User{Name: "alice", Password: "alicepw"},
		sipauth.User{Name: "eve", Password: "evepw"},
		sipauth.User{Name: "mallory", Password: "mallorypw", Blocked: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	a, err := sipauth.New(sipauth.Config{Realm: testDomain, Users: users, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// credentials answers a 407 the way a phone does.
func credentials(t testing.TB, res *sip.Response, method, uri, user, pass string) string {
	t.Helper()
	h := res.GetHeader("Proxy-Authenticate")
	if h == nil {
		t.Fatalf("%d without Proxy-Authenticate", res.StatusCode)
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: method, URI: uri, Username: user, Password: pass, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	return "Proxy-Authorization: " + cred.String()
}

func TestProxyAuth(t *testing.T) {
	loc := newMemLocation("alice", "bob", "eve", "mallory")
	p, px := startProxy(t, Config{Location: loc, Auth: newAuth(t), AuthInvites: true})
	bob := newPhone(t, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)
	ruri := "sip:bob@" + testDomain

	tests := []struct {
		name       string
		from       string // From user
		user, pass string // digest credentials
		want       int    // after answering the challenge; 0: reaches bob
	}{
		{"own user", "alice", "alice", "alicepw", 0},
		{"wrong password", "alice", "alice", "nope", 407},
		{"someone else's From", "alice", "eve", "evepw", 403},
		{"blocked user", "mallory", "mallory", "mallorypw", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bob := bob.on(t)
			ph := newPhone(t, "127.0.0.2")
			m := ph.newMsg("INVITE", ruri, tc.from+"@"+testDomain, "bob@"+testDomain)
			ph.send(p.LocalAddrs()[0], m)
			chal := ph.final(sip.INVITE)
			mustCode(t, chal, 407)

			m.cseq++
			m.branch = sip.GenerateBranchN(12)
			m.extra = []string{credentials(t, chal, "INVITE", ruri, tc.user, tc.pass)}
			ph.send(px, m)
			if tc.want != 0 {
				mustCode(t, ph.final(sip.INVITE), tc.want)
				return
			}
			req, from := bob.request(sip.INVITE)
			if h := req.GetHeader("Proxy-Authorization"); h != nil {
				t.Errorf("our credentials were forwarded: %s", h.Value())
			}
			bob.answer(req, from, 486, "Busy Here", "b")
			mustCode(t, ph.final(sip.INVITE), 486)
		})
	}
	if p.Stats().Challenges < uint64(len(tests)) {
		t.Errorf("challenges counter %d", p.Stats().Challenges)
	}
}

// Calls from other domains, in-dialog requests and other methods are not
// challenged.
func TestProxyAuthExemptions(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	_, px := startProxy(t, Config{Location: loc, Auth: newAuth(t), AuthInvites: true})
	bob := newPhone(t, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)
	tests := []struct {
		name string
		edit func(*msg)
	}{
		{"foreign caller", func(m *msg) { m.from = "carrier@pstn.test" }},
		{"in-dialog", func(m *msg) { m.method, m.toTag = "BYE", "dialog" }},
		{"MESSAGE without AuthOther", func(m *msg) { m.method = "MESSAGE" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bob := bob.on(t)
			ph := newPhone(t, "127.0.0.2")
			m := ph.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain)
			tc.edit(&m)
			ph.send(px, m)
			req, from := bob.request(sip.RequestMethod(m.method))
			bob.answer(req, from, 486, "Busy Here", "b")
			mustCode(t, ph.final(sip.RequestMethod(m.method)), 486)
		})
	}
}
