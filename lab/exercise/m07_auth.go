package exercise

import (
	"context"
	"strings"
	"time"
)

// attackerIP is the lab's attacker (labctl.AttackerIP), as the SBC sees it.
const attackerIP = "203.0.113.66"

// checkRegistered passes when the phone holds a registration refreshed
// since the exercise began and the registrar stores it.
func checkRegistered(phone string) func(ctx context.Context, p *Probe) Result {
	return func(ctx context.Context, p *Probe) Result {
		r := newResult()
		st, ok := p.requirePhone(ctx, &r, phone)
		if !ok {
			return r
		}
		reg := st.Registration
		if !r.require(reg.State == "registered" && reg.Code == 200,
			"%s's registration: %s (last answer %d %s%s)", phone, reg.State, reg.Code, reg.Reason, errSuffix(reg.Error)) {
			return r
		}
		bs, err := p.Bindings(ctx, phone)
		if !r.noError(err) {
			return r
		}
		fresh := false
		for _, b := range bs {
			if !b.Updated.Before(p.Since) {
				fresh = true
				r.add("ok   registrar binding %s from %s written %s", b.ContactURI, b.Source, b.Updated.Format(time.TimeOnly))
			}
		}
		r.require(fresh, "the registrar holds %d binding(s) for %s, written since the exercise started: %v", len(bs), phone, fresh)
		return r
	}
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}

// checkBlocked passes when the SBC lists the attacker as blocked for a
// reason containing why.
func checkBlocked(why string) func(ctx context.Context, p *Probe) Result {
	return func(ctx context.Context, p *Probe) Result {
		r := newResult()
		st, err := p.SBC(ctx)
		if !r.noError(err) {
			return r
		}
		for _, b := range st.Blocked {
			if b.Source.String() == attackerIP && strings.Contains(b.Reason, why) {
				r.require(true, "the SBC blocks %s: %s, until %s, %d requests refused since", b.Source, b.Reason, b.Until.Format(time.TimeOnly), b.Hits)
				return r
			}
		}
		r.require(false, "the SBC does not block %s for %s (%d sources blocked)", attackerIP, why, len(st.Blocked))
		return r
	}
}

func init() {
	register(&Exercise{
		ID:     "07-wrong-password",
		Module: "07 Registration & digest auth",
		Title:  "401 again, forever",
		Task: "alice's phone was given a new password and stopped registering. Find out what the registrar answers and why it is 401 and not 403, " +
			"then get alice registered again.",
		Setup: []Step{
			Run("set alice password nope"),
			Fails("exec alice register", "registration failed: wrong credentials (401 again)"),
		},
		Observe: []string{
			"`siplab exec alice status`: the registration line and its last answer.",
			"`siplab ladder`: REGISTER → 401 (challenge) → REGISTER with Authorization → 401 again: the registrar rejects the answer, not the user.",
		},
		Hints: []string{
			"The first 401 is normal: it carries the nonce the phone must hash its password with. The second one says the hash was wrong.",
			"403 would mean the account is refused whatever the password (mallory's, in lab-nets/users.conf).",
			"alice's password is in lab-nets/users.conf.",
		},
		Fix: []Step{
			Run("set alice password alice-secret"),
			RunExpect("exec alice register", "registered: 200 OK after one 401"),
		},
		Symptom: "alice's registration: failed (last answer 401",
		Pass:    "registrar binding sip:alice@",
		Check:   checkRegistered("alice"),
	})
	register(&Exercise{
		ID:     "07-scanner",
		Module: "07 Registration & digest auth",
		Title:  "The scanner finds you in minutes",
		Task: "Play the SIPVicious-style scanner from the internet (203.0.113.66) against the proxy and against the SBC, " +
			"and make the SBC block it. Compare what each one tells the scanner.",
		Setup: []Step{Fails("exec sbc unblock 203.0.113.66", "no block to lift (or the old one lifted)")},
		Observe: []string{
			"`siplab attack proxy options -count 5`: every OPTIONS is answered — and the answers tell the scanner what the server is.",
			"`siplab exec sbc status`: the *blocked* list, with the reason.",
		},
		Hints: []string{"The SBC recognises `User-Agent: friendly-scanner` and drops the source at once: `siplab attack sbc options -count 5`."},
		Fix: []Step{
			RunExpect("attack proxy options -count 5", "5 answers"),
			RunExpect("attack sbc options -count 5", "silence: no answer at all"),
		},
		Symptom: "the SBC does not block 203.0.113.66",
		Pass:    "the SBC blocks 203.0.113.66: scanner",
		Check:   checkBlocked("scanner"),
	})
	register(&Exercise{
		ID:     "07-brute-force",
		Module: "07 Registration & digest auth",
		Title:  "Password guessing, blocked at the SBC",
		Task: "Guess bob's password from the internet with an honest-looking User-Agent, first against the proxy, then against the SBC. " +
			"The SBC must stop answering the attacker; alice, behind the SBC or not, must not notice.",
		Setup: []Step{Fails("exec sbc unblock 203.0.113.66", "a clean slate: any earlier block lifted")},
		Observe: []string{
			"The attack's report: the first guesses get `401`, then the answers stop.",
			"`siplab exec sbc status`: *blocked* with `failed_auth: 10 in 1m0s` (the `-failed-auth-limit`).",
		},
		Hints: []string{
			"The attack needs the lab's domain, or the SBC answers 404 before any challenge: `-domain siplab.test`.",
			"The proxy's guard blocks after 10 failed digests in 60 s, but it answers the block (403 + Retry-After); the SBC just goes silent. Try both.",
		},
		Fix: []Step{
			RunExpect(`attack proxy register -user bob -domain siplab.test -count 12 -rate 20 -user-agent "Grandstream GXP2170"`,
				"ten wrong guesses get 401, then 403 Forbidden (source blocked) with Retry-After: the platform's own guard answers — and tells the attacker it was noticed"),
			RunExpect(`attack sbc register -user bob -domain siplab.test -count 40 -rate 20 -user-agent "Grandstream GXP2170"`, "the first guesses get 401, then the answers stop"),
		},
		Symptom: "the SBC does not block 203.0.113.66",
		Pass:    "then 403 Forbidden (source blocked)",
		Check:   checkBruteForce,
	})
}

// checkBruteForce: the SBC blocks the password guesser, and the proxy's
// capture shows the platform's own guard answering it 403 (source
// blocked) with Retry-After after the 401s.
func checkBruteForce(ctx context.Context, p *Probe) Result {
	r := checkBlocked("failed_auth")(ctx, p)
	tr, err := readNode(p.Lab.CaptureDir(), "proxy")
	if !r.noError(err) {
		return r
	}
	n401, n403, retry := 0, 0, ""
	for i := range tr.SIP {
		pk := &tr.SIP[i]
		if pk.Iface != proxyEdge || pk.Time.Before(p.Since) || pk.Dst.Addr().String() != attackerIP {
			continue
		}
		switch line := pk.StartLine(); {
		case strings.HasPrefix(line, "SIP/2.0 401"):
			n401++
		case strings.HasPrefix(line, "SIP/2.0 403") && strings.Contains(line, "source blocked"):
			n403++
			retry = pk.Header("Retry-After")
		}
	}
	r.require(n403 > 0, "the proxy answered the guesser %d× 401, then 403 Forbidden (source blocked) %d× (Retry-After: %s s)", n401, n403, retry)
	return r
}
