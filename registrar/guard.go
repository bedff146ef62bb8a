package registrar

import (
	"net/netip"

	"github.com/emiago/sipgo/sip"
	"github.com/siplab/siplab/sip/guard"
)

// SettingMaxTransactions is the live cap on server transactions held at
// once (txlimit); 0 lifts it.
const SettingMaxTransactions = guard.SettingMaxTransactions

// SettingNames lists the registrar's live settings (`siplab set registrar`).
func SettingNames() []string { return guard.BehindSettingNames() }

// Settings are the registrar's live settings: the failed-auth guard's and
// the transaction cap.
type Settings = guard.BehindSettings

// live reads and changes the registrar's live settings.
func (r *Registrar) live() guard.BehindLive {
	return guard.BehindLive{Auth: r.guard, Cap: r.txl, Log: r.log, BadValue: ErrBadSetting, Unknown: ErrUnknownSetting}
}

// Settings returns the live settings in force.
func (r *Registrar) Settings() Settings { return r.live().Settings() }

// Set changes one live setting by name: auth_fail_limit (count, 0 = off),
// auth_fail_window and auth_block_for (seconds or a duration),
// max_transactions (count, 0 = no cap).
func (r *Registrar) Set(name, value string) (Settings, error) { return r.live().Set(name, value) }

// ResetResult is what Reset did.
type ResetResult struct {
	Settings Settings `json:"settings"`
	// Restored names the settings that were not at their startup value.
	Restored []string `json:"restored"`
	// Unblocked lists the sources whose block was lifted.
	Unblocked []string `json:"unblocked,omitempty"`
}

// Reset puts the live settings back to their startup values and lifts
// every block (`siplab reset`). Bindings are the phones' business: each
// phone's own reset removes and renews its bindings.
func (r *Registrar) Reset() ResetResult {
	restored, unblocked := r.guard.Reset()
	if r.txl.Max() != r.cfg.MaxTransactions {
		r.txl.SetMax(r.cfg.MaxTransactions)
		restored = append(restored, SettingMaxTransactions)
	}
	res := ResetResult{Settings: r.Settings(), Restored: restored}
	for _, a := range unblocked {
		res.Unblocked = append(res.Unblocked, a.String())
	}
	if len(restored) > 0 || len(unblocked) > 0 {
		r.log.Info("settings reset", "restored", restored, "unblocked", res.Unblocked)
	}
	return res
}

// Blocked lists the sources blocked now for failed authentication.
func (r *Registrar) Blocked() []guard.Block { return r.guard.Blocked() }

// Unblock lifts src's block.
func (r *Registrar) Unblock(src netip.Addr) bool { return r.guard.Unblock(src) }

// blockedResponse answers a request from a blocked source: 403, not
// silence. Behind the proxy, silence would leave the proxy's client
// transaction to time out and every phone of the site would see 408 after
// 32 s and keep retransmitting; a 403 stops a phone at once (no retry on
// 403), costs less than the request it answers (no amplification), and
// tells the person reading the capture why: the Warning names the block
// and Retry-After when it ends.
func blockedResponse(req *sip.Request, v guard.Verdict) *sip.Response {
	res := reply(req, sip.StatusForbidden, "Forbidden (source blocked)", v.BlockedWarning())
	res.AppendHeader(sip.NewHeader("Retry-After", v.RetryAfterSeconds()))
	return res
}

// overloadResponse answers beyond the transaction cap: 503 with
// Retry-After (RFC 3261 §21.5.4), the signal to try again later.
func overloadResponse(req *sip.Request) *sip.Response {
	res := reply(req, sip.StatusServiceUnavailable, "Service Unavailable", "too many transactions in progress")
	res.AppendHeader(sip.NewHeader("Retry-After", "5"))
	return res
}

// stateless: a response the registrar sends without keeping its
// transaction. Every non-2xx answer is computed from the request alone and
// changes nothing, so a retransmitted request simply gets it again
// (freshly computed: a new nonce for a 401) — what a stateless server
// does, and a challenge or refusal then holds no memory for Timer J's
// 32 s. A 2xx keeps its transaction: a retransmitted REGISTER must get the
// same 200, not a 500 for a CSeq already stored.
func stateless(res *sip.Response) bool { return res.StatusCode >= 300 }

// kept: the responses the direct path sends again to retransmissions (the
// 2xx, see stateless).
func kept(res *sip.Response) bool { return !stateless(res) }
