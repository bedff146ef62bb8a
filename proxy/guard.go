package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/guard"
	"github.com/siplab/siplab/sip/sipnet"
)

// SettingMaxTransactions is the live cap on server transactions held at
// once (txlimit); 0 lifts it.
const SettingMaxTransactions = guard.SettingMaxTransactions

// GuardSettingNames lists the proxy's live guard settings, which `set`
// takes beside the NAT toggles of SettingNames.
func GuardSettingNames() []string { return guard.BehindSettingNames() }

// GuardSettings are the failed-auth guard's and the transaction cap's
// live settings.
type GuardSettings = guard.BehindSettings

// GuardStatus is the guard's part of Status.
type GuardStatus struct {
	Settings GuardSettings `json:"settings"`
	// Blocked are the sources refused for failed authentication now.
	Blocked []guard.Block `json:"blocked"`
	// FailedAuths counts wrong passwords and unknown users in 407
	// answers since start.
	FailedAuths uint64 `json:"failed_auths"`
	// Transactions are the server transactions held now; Overloaded the
	// requests answered 503 for the cap.
	Transactions int    `json:"transactions"`
	Overloaded   uint64 `json:"overloaded"`
	// Shed counts new requests the overload gate refused with 503 before
	// parsing them (they waited too long in the receive queue).
	Shed uint64 `json:"shed"`
	// AbsorbedACKs counts ACKs for stateless answers (407s, 503s) ended
	// in the socket's read loop, unparsed.
	AbsorbedACKs uint64 `json:"absorbed_acks"`
	// ReadPauses counts how often a UDP reader stopped reading because
	// too many goroutines were runnable (-max-runnable).
	ReadPauses uint64 `json:"read_pauses"`
}

// IsGuardSetting says whether name is one of GuardSettingNames.
func IsGuardSetting(name string) bool {
	return guard.IsSetting(name) || strings.EqualFold(strings.TrimSpace(name), SettingMaxTransactions)
}

// guardLive reads and changes the guard's live settings.
func (p *Proxy) guardLive() guard.BehindLive {
	return guard.BehindLive{Auth: p.guard, Cap: p.txl, Log: p.log, BadValue: ErrBadSettingValue, Unknown: ErrUnknownSetting}
}

// GuardSettings returns the guard's live settings.
func (p *Proxy) GuardSettings() GuardSettings { return p.guardLive().Settings() }

// SetGuard changes one guard setting: auth_fail_limit (count, 0 = off),
// auth_fail_window and auth_block_for (seconds or a duration),
// max_transactions (count, 0 = no cap).
func (p *Proxy) SetGuard(name, value string) (GuardSettings, error) {
	return p.guardLive().Set(name, value)
}

// Blocked lists the sources blocked now.
func (p *Proxy) Blocked() []guard.Block { return p.guard.Blocked() }

// Unblock lifts src's block.
func (p *Proxy) Unblock(src netip.Addr) bool { return p.guard.Unblock(src) }

func (p *Proxy) guardStatus() GuardStatus {
	return GuardStatus{Settings: p.GuardSettings(), Blocked: p.Blocked(), FailedAuths: p.guard.Stats().FailedAuths,
		Transactions: p.txl.Held(), Overloaded: p.txl.Refused(), Shed: p.sum((*sipnet.Endpoint).Shed), AbsorbedACKs: p.sum((*sipnet.Endpoint).AbsorbedACKs),
		ReadPauses: p.sum((*sipnet.Endpoint).BacklogPauses)}
}

// sum adds up one count over the proxy's endpoints.
func (p *Proxy) sum(count func(*sipnet.Endpoint) uint64) uint64 {
	var n uint64
	for _, e := range p.eps {
		n += count(e.ep)
	}
	return n
}

// slTags mark the To tags of the proxy's stateless answers to INVITE.
// The ACK for such a 407 or 403 carries the tag back and matches no
// transaction (there is none left); the prefix tells the proxy the ACK is
// its own to absorb, not one to route on towards the callee.
type slTags struct {
	prefix string
	n      atomic.Uint64
}

func newSLTags() *slTags {
	var b [4]byte
	rand.Read(b[:])
	return &slTags{prefix: "sl" + hex.EncodeToString(b[:]) + "-"}
}

func (s *slTags) next() string { return s.prefix + strconv.FormatUint(s.n.Add(1), 36) }

func (s *slTags) ours(tag string) bool { return strings.HasPrefix(tag, s.prefix) }

// admit is the guard at the door of every out-of-dialog request: a
// blocked source gets 403 (see blockedAnswer), a request beyond the
// transaction cap 503. In-dialog requests, ACK and CANCEL pass both: they
// belong to calls already admitted (a refused BYE leaves a ghost call —
// for every phone of a blocked NATed site that was mid-call), and no
// password can be guessed in a dialog, since nothing in it is challenged.
// A non-nil answer is sent statelessly.
func (p *Proxy) admit(req *sip.Request, tx sip.ServerTransaction) (*sip.Response, string) {
	if req.IsAck() || req.IsCancel() || toTag(req) != "" {
		return nil, ""
	}
	if src, err := sipnet.Source(req); err == nil {
		if v := p.guard.Check(src.Addr(), string(req.Method)); !v.Allow {
			return p.blockedAnswer(req, v), v.Reason
		}
	}
	if !p.txl.Acquire(tx) {
		res := p.localResponse(req, req, sip.StatusServiceUnavailable, "Service Unavailable", "too many transactions in progress")
		res.AppendHeader(sip.NewHeader("Retry-After", "5"))
		return res, "transaction cap reached"
	}
	return nil, ""
}

// blockedAnswer is 403, not silence: the proxy is the platform's SIP
// address, phones of a whole NATed site share its source, and silence
// would make them retransmit for 32 s and retry; a 403 stops them at once,
// is smaller than the request (no amplification), and says why in the
// capture (Warning) and when it ends (Retry-After).
func (p *Proxy) blockedAnswer(req *sip.Request, v guard.Verdict) *sip.Response {
	res := p.localResponse(req, req, sip.StatusForbidden, "Forbidden (source blocked)", v.BlockedWarning())
	res.AppendHeader(sip.NewHeader("Retry-After", v.RetryAfterSeconds()))
	return res
}

// markStateless gives a stateless answer to an out-of-dialog INVITE a To
// tag the proxy recognises in the ACK that follows.
func (p *Proxy) markStateless(req *sip.Request, res *sip.Response) {
	if !req.IsInvite() || toTag(req) != "" {
		return
	}
	if to := res.To(); to != nil {
		to.Params.Add("tag", p.sl.next()) // Add replaces an existing tag
	}
}
