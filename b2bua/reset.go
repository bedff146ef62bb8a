package b2bua

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/sipdialog"
)

// ResetResult is what Reset undid.
type ResetResult struct {
	CallsEnded         int      `json:"calls_ended"`
	SubscriptionsEnded int      `json:"subscriptions_ended"`
	VoicemailsDeleted  int      `json:"voicemails_deleted"`
	Restored           []string `json:"settings_restored"`
	Settings           Settings `json:"settings"`
}

// Reset puts the PBX back to its startup state: every call hung up (BYE
// or CANCEL on each leg) and forgotten, every BLF/MWI subscription ended
// with a final NOTIFY, every voicemail deleted (files too), settings at
// their startup values. No MWI NOTIFY is sent for the emptied mailboxes:
// the phones forget their lamp in their own reset.
func (b *B2BUA) Reset(ctx context.Context) ResetResult {
	var res ResetResult
	b.mu.Lock()
	calls := slices.Clone(b.calls)
	subs := make([]*subscription, 0, len(b.subs))
	for _, s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	res.CallsEnded = b2bleg.HangupAll(ctx, &b.mu, calls, (*Call).endedLocked,
		func(ctx context.Context, c *Call) { c.hangupAll(ctx, "lab reset") })
	// Each final NOTIFY is a transaction that may retransmit for 32 s to a
	// watcher behind a flushed NAT mapping: send them all, wait a moment,
	// and let the stragglers finish in the background.
	ended := make(chan struct{})
	go func() {
		var swg sync.WaitGroup
		for _, s := range subs {
			swg.Go(func() { b.endSubscription(s, "deactivated") })
		}
		swg.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(1500 * time.Millisecond):
		b.log.Info("reset: final NOTIFYs still unanswered, continuing")
	}
	res.SubscriptionsEnded = len(subs)

	b.mu.Lock()
	for _, mb := range b.mailboxes {
		for _, m := range mb.messages {
			if os.Remove(m.File) == nil {
				res.VoicemailsDeleted++
			}
		}
	}
	b.mailboxes = map[string]*mailbox{}
	b.calls = nil
	b.legs = map[sipdialog.Key]*leg{}
	b.mu.Unlock()
	// Recordings no mailbox listed (a call cut while recording) go too.
	if dir := b.cfg.VoicemailDir; dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*", "*.wav"))
		for _, f := range files {
			if os.Remove(f) == nil {
				res.VoicemailsDeleted++
			}
		}
	}

	res.Restored = b.settings.Restore(b.initial, SettingNames(), Settings.Get)
	res.Settings = b.initial
	b.log.Info("reset", "calls", res.CallsEnded, "subscriptions", res.SubscriptionsEnded,
		"voicemails", res.VoicemailsDeleted, "restored", strings.Join(res.Restored, ","))
	return res
}
