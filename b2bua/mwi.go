package b2bua

import (
	"fmt"

	"github.com/emiago/sipgo/sip"
)

// Message waiting (RFC 3842): a phone SUBSCRIBEs to Event:
// message-summary for its mailbox and the PBX NOTIFYs the mailbox state at
// once, on every refresh and on every new message, until the subscription
// expires or Expires: 0 ends it (terminated NOTIFY). The subscription
// dialog is the generic one of blf.go. Phones that never subscribe still
// get the old unsolicited NOTIFY on a new message (notifyMWI): many
// deployed phones rely on it, and a subscribed phone does not get both.

// mailboxFor is the mailbox a message-summary SUBSCRIBE asks for: its
// Request-URI user names a user, an extension (101: bob's), a mailbox
// target (voicemail:bob) or the caller's own (*97). Only the owner may
// watch a mailbox: its From user must be the mailbox's.
func (b *B2BUA) mailboxFor(req *sip.Request) (string, *refusal) {
	dialled := req.Recipient.User
	owner := req.From().Address.User
	box := ""
	if ext, ok := b.cfg.DialPlan.Lookup(dialled); ok {
		switch ext.Target.Kind {
		case KindUser:
			box = ext.Target.User
		case KindVoicemail:
			box = ext.Target.User
			if box == "" {
				box = owner
			}
		}
	} else if validUser(dialled) && dialled == owner {
		// A user without an extension asking for its own mailbox.
		box = owner
	}
	if box == "" {
		return "", &refusal{sip.StatusNotFound, "Not Found", "no mailbox " + dialled}
	}
	if box != owner {
		return "", &refusal{sip.StatusForbidden, "Forbidden", "only " + box + " may watch mailbox " + box}
	}
	return box, nil
}

// mailboxCount is the number of new messages in box.
func (b *B2BUA) mailboxCountLocked(box string) int {
	if mb := b.mailboxes[box]; mb != nil {
		return len(mb.messages)
	}
	return 0
}

// notifyMailbox sends s the mailbox state in a message-summary NOTIFY.
func (b *B2BUA) notifyMailbox(s *subscription, final bool, reason string) {
	var count int
	state, out := b.notify(s, final, reason, func() (notice, bool) {
		count = b.mailboxCountLocked(s.user)
		return notice{event: eventMessageSummary, ctype: "application/simple-message-summary",
			body:   messageSummary(fmt.Sprintf("sip:%s@%s", s.user, b.ep.Addr().Addr()), count, 0),
			detail: fmt.Sprintf("%d new", count)}, true
	})
	if out == "" {
		return
	}
	b.mu.Lock()
	if mb := b.mailboxes[s.user]; mb != nil {
		mb.lastNotify = "subscribed " + s.watcher + ": " + out
	}
	b.mu.Unlock()
	b.log.Info("MWI NOTIFY", "mailbox", s.user, "watcher", s.watcher, "messages", count, "state", state, "result", out)
}

// mailboxChanged tells box's watchers; false when nobody watches it (the
// caller then falls back to the unsolicited NOTIFY).
func (b *B2BUA) mailboxChanged(box string) bool {
	b.mu.Lock()
	var due []*subscription
	for _, s := range b.subs {
		if s.event == eventMessageSummary && s.user == box {
			due = append(due, s)
		}
	}
	b.mu.Unlock()
	for _, s := range due {
		go b.notifyMailbox(s, false, "")
	}
	return len(due) > 0
}
