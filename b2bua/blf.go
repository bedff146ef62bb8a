package b2bua

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/sipdialog"
)

// BLF: busy lamp fields through the dialog event package (RFC 6665
// SUBSCRIBE/NOTIFY, RFC 4235 dialog-info). A phone subscribes to an
// extension at the PBX; the PBX is the notifier, because it sees every
// call of every user.

const (
	// maxSubExpires caps a subscription; phones refresh before it ends.
	maxSubExpires  = 3600
	dialogInfoType = "application/dialog-info+xml"
)

// Lamp states, as RFC 4235 names dialog states.
const (
	LampIdle      = "terminated" // no call: lamp off
	LampEarly     = "early"      // ringing: lamp blinks
	LampConfirmed = "confirmed"  // in a call: lamp on
)

// Event packages the PBX notifies (RFC 6665).
const (
	eventDialog         = "dialog"          // BLF, RFC 4235
	eventMessageSummary = "message-summary" // MWI, RFC 3842 (mwi.go)
)

// subscription is one watcher: of a lamp (dialog) or a mailbox
// (message-summary).
type subscription struct {
	event   string
	dlg     sipdialog.Dialog
	user    string // whose lamp, or whose mailbox
	watcher string
	expires time.Time
	timer   *time.Timer

	sendMu  sync.Mutex // NOTIFYs of one subscription go out in order
	version int
	lamp    string
	callID  string // the dialog id reported with the lamp
	done    bool
	last    string // outcome of the last NOTIFY, for status
}

// SubscriptionStatus is a BLF watcher in status.
type SubscriptionStatus struct {
	Watcher    string    `json:"watcher"`
	User       string    `json:"user"`
	Lamp       string    `json:"lamp"`
	Version    int       `json:"version"`
	Expires    time.Time `json:"expires"`
	LastNotify string    `json:"last_notify,omitempty"`
}

func (b *B2BUA) onSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	if b.check(req, tx) {
		return
	}
	ev := req.GetHeader("Event")
	event := ""
	if ev != nil {
		event = strings.ToLower(strings.TrimSpace(strings.SplitN(ev.Value(), ";", 2)[0]))
	}
	if event != eventDialog && event != eventMessageSummary {
		b.reply(tx, req, 489, "Bad Event", "this PBX serves the dialog (BLF) and message-summary (MWI) event packages",
			sip.NewHeader("Allow-Events", eventDialog+", "+eventMessageSummary))
		return
	}
	expires := maxSubExpires
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			b.reply(tx, req, sip.StatusBadRequest, "Bad Request", "Expires is not a number of seconds")
			return
		}
		expires = min(n, maxSubExpires)
	}
	if sipdialog.ToTag(req) != "" {
		b.refreshSubscription(req, tx, expires, event)
		return
	}
	var user string
	if event == eventMessageSummary {
		box, ref := b.mailboxFor(req)
		if ref != nil {
			b.reply(tx, req, ref.code, ref.reason, ref.text)
			return
		}
		user = box
	} else {
		ext, ok := b.cfg.DialPlan.Lookup(req.Recipient.User)
		if !ok || ext.Target.Kind != KindUser {
			b.reply(tx, req, sip.StatusNotFound, "Not Found", "no user extension "+req.Recipient.User)
			return
		}
		user = ext.Target.User
	}
	ct := req.Contact()
	if ct == nil {
		b.reply(tx, req, sip.StatusBadRequest, "Bad Request", "SUBSCRIBE without Contact")
		return
	}
	localTag := sip.GenerateTagN(10)
	req.To().Params.Add("tag", localTag)
	s := &subscription{
		event:   event,
		user:    user,
		watcher: req.From().Address.String(),
		expires: time.Now().Add(time.Duration(expires) * time.Second),
		dlg: sipdialog.Dialog{
			CallID: sipdialog.CallID(req), LocalTag: localTag, RemoteTag: sipdialog.FromTag(req),
			LocalURI: req.To().Address, RemoteURI: req.From().Address,
			RemoteSeq: req.CSeq().SeqNo, RemoteSeqSet: true,
			RemoteTarget: *ct.Address.Clone(), RouteSet: sipdialog.RouteSetAsUAS(req),
		},
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	res.AppendHeader(b.contact())
	if expires > 0 {
		b.mu.Lock()
		if b.subs == nil {
			b.subs = map[sipdialog.Key]*subscription{}
		}
		b.subs[s.dlg.Key()] = s
		b.mu.Unlock()
		s.timer = time.AfterFunc(time.Duration(expires)*time.Second, func() { b.endSubscription(s, "timeout") })
	}
	b.send(tx, res)
	b.log.Info("subscription", "event", event, "watcher", s.watcher, "user", s.user, "expires", expires, "call_id", s.dlg.CallID)
	// RFC 6665 §4.2.1: a NOTIFY with the current state follows at once
	// (the last one, when Expires: 0 only fetched the state).
	if expires == 0 {
		b.notifySub(s, true, "timeout")
		return
	}
	b.notifySub(s, false, "")
}

// notifySub sends a subscription its package's current state.
func (b *B2BUA) notifySub(s *subscription, final bool, reason string) {
	if s.event == eventMessageSummary {
		b.notifyMailbox(s, final, reason)
		return
	}
	b.notifyBLF(s, final, reason)
}

func (b *B2BUA) refreshSubscription(req *sip.Request, tx sip.ServerTransaction, expires int, event string) {
	b.mu.Lock()
	s := b.subs[sipdialog.KeyOf(req)]
	ok := s != nil && s.dlg.RemoteTag == sipdialog.FromTag(req) && s.dlg.AcceptSeq(req.CSeq().SeqNo)
	b.mu.Unlock()
	if !ok {
		b.reply(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", "")
		return
	}
	if s.event != event {
		// RFC 6665 §4.1.2.1: a refresh names the subscription's package.
		b.reply(tx, req, 489, "Bad Event", "this subscription is for "+s.event, sip.NewHeader("Allow-Events", s.event))
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	b.send(tx, res)
	if expires == 0 {
		b.endSubscription(s, "timeout")
		return
	}
	b.mu.Lock()
	s.expires = time.Now().Add(time.Duration(expires) * time.Second)
	b.mu.Unlock()
	s.timer.Reset(time.Duration(expires) * time.Second)
	if s.event == eventMessageSummary {
		// A refresh gets the mailbox state again (RFC 6665 §4.2.2 lets
		// the notifier send one; phones expect it).
		b.notifyMailbox(s, false, "")
		return
	}
	b.notifyBLF(s, false, "")
}

// endSubscription sends the final NOTIFY and forgets the watcher.
func (b *B2BUA) endSubscription(s *subscription, reason string) {
	b.mu.Lock()
	delete(b.subs, s.dlg.Key())
	b.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	b.notifySub(s, true, reason)
}

// lamp is user's BLF state now, and the Call-ID it reports.
func (b *B2BUA) lampLocked(user string) (string, string) {
	state, id := LampIdle, ""
	for _, c := range b.calls {
		if c.state == StateEnded {
			continue
		}
		for _, l := range c.legs {
			if l == nil || l.State == b2bleg.Terminated || c.legs[l.idx] != l {
				continue
			}
			if userOf(l.peer) != user {
				continue
			}
			switch {
			case l.State == b2bleg.Confirmed:
				return LampConfirmed, l.Dlg.CallID
			case state == LampIdle:
				state, id = LampEarly, l.Dlg.CallID
			}
		}
	}
	return state, id
}

// blfChanged re-evaluates every lamp after a call changed state and
// notifies the watchers whose lamp changed.
func (b *B2BUA) blfChanged() {
	b.mu.Lock()
	var due []*subscription
	for _, s := range b.subs {
		if s.event != eventDialog {
			continue
		}
		lamp, _ := b.lampLocked(s.user)
		if lamp != s.lamp {
			due = append(due, s)
		}
	}
	b.mu.Unlock()
	for _, s := range due {
		go b.notifyBLF(s, false, "")
	}
}

// notifyBLF sends s the user's current lamp in a dialog-info NOTIFY; none
// when the lamp is the one last sent.
func (b *B2BUA) notifyBLF(s *subscription, final bool, reason string) {
	var lamp string
	var version int
	_, out := b.notify(s, final, reason, func() (notice, bool) {
		l, id := b.lampLocked(s.user)
		if !final && l == s.lamp && s.version > 0 {
			return notice{}, false
		}
		s.lamp, s.callID = l, id
		lamp, version = l, s.version
		return notice{event: "dialog", ctype: dialogInfoType,
			body: dialogInfo(version, "sip:"+s.user+"@"+b.cfg.Domain, lamp, id), detail: lamp}, true
	})
	if out != "" {
		b.log.Info("BLF NOTIFY", "user", s.user, "lamp", lamp, "version", version, "result", out)
	}
}

// notice is what a NOTIFY carries for its event package.
type notice struct {
	event, ctype, body string
	// detail is the body in a word or two, for the status page.
	detail string
}

// notify sends s its next NOTIFY, one at a time per subscription and none
// after the final one (RFC 6665). content, called with b.mu held, gives
// the event package's notice, or false when nothing changed worth one.
// It returns the Subscription-State sent and the outcome (sendNotify);
// both "" when nothing was sent.
func (b *B2BUA) notify(s *subscription, final bool, reason string, content func() (notice, bool)) (state, out string) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	b.mu.Lock()
	if s.done {
		b.mu.Unlock()
		return "", ""
	}
	n, ok := content()
	if !ok {
		b.mu.Unlock()
		return "", ""
	}
	s.version++
	req, state := s.nextNotifyLocked(final, reason)
	b.mu.Unlock()
	ctx, cancel := b.lifetime(64 * sip.T1)
	defer cancel()
	out = b.sendNotify(ctx, s, req, n.event, state, n.ctype, n.body, n.detail)
	b.mu.Lock()
	s.last = out
	b.mu.Unlock()
	return state, out
}

// nextNotifyLocked builds s's next NOTIFY and its Subscription-State:
// active with the time left, or terminated for reason when final (no
// NOTIFY follows that one); b.mu held.
func (s *subscription) nextNotifyLocked(final bool, reason string) (*sip.Request, string) {
	s.done = final
	state := fmt.Sprintf("active;expires=%d", max(int(time.Until(s.expires).Seconds()), 1))
	if final {
		state = "terminated;reason=" + reason
	}
	return request(&s.dlg, sip.NOTIFY, 0), state
}

// dialogInfo is the RFC 4235 body: full state, one dialog element while
// the user is in a call, none when idle.
func dialogInfo(version int, entity, lamp, callID string) string {
	var d string
	if lamp != LampIdle {
		d = fmt.Sprintf("  <dialog id=\"%s\"><state>%s</state></dialog>\n", xmlEscape(callID), lamp)
	}
	return fmt.Sprintf("<?xml version=\"1.0\"?>\n<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"%d\" state=\"full\" entity=\"%s\">\n%s</dialog-info>\n",
		version, xmlEscape(entity), d)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}

// sendNotify sends req, a NOTIFY in s's dialog, with the event package's
// body and the Subscription-State state, and returns its outcome for the
// status page: "<code> <reason> (<detail>)" or "no answer: ...". A 481
// means the watcher forgot the subscription (RFC 6665 §4.1.3): it is
// dropped, and its expiry timer with it.
func (b *B2BUA) sendNotify(ctx context.Context, s *subscription, req *sip.Request, event, state, ctype, body, detail string) string {
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", ctype))
	req.AppendHeader(b.contact())
	req.SetBody([]byte(body))
	res, err := b.do(ctx, req)
	if err != nil {
		return "no answer: " + err.Error()
	}
	if res.StatusCode == sip.StatusCallTransactionDoesNotExists {
		b.mu.Lock()
		delete(b.subs, s.dlg.Key())
		b.mu.Unlock()
		if s.timer != nil {
			s.timer.Stop()
		}
	}
	return fmt.Sprintf("%d %s (%s)", res.StatusCode, res.Reason, detail)
}
