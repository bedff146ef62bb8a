package uaclient

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipdialog"
)

// Event packages this phone subscribes to.
const (
	// EventDialog is RFC 4235 dialog state: the BLF lamp of a colleague.
	EventDialog = "dialog"
	// EventMessageSummary is RFC 3842 message waiting (MWI, voicemail).
	EventMessageSummary = "message-summary"
)

// Subscription states.
const (
	SubPending    = "pending"
	SubActive     = "active"
	SubTerminated = "terminated"
	SubFailed     = "failed"
)

// SubscriptionStatus is one SUBSCRIBE dialog as status reports it.
type SubscriptionStatus struct {
	ID     string `json:"id"`
	CallID string `json:"call_id"`
	Target string `json:"target"`
	Event  string `json:"event"`
	// State is pending, active, terminated (by the notifier or
	// unsubscribe) or failed (SUBSCRIBE refused or unanswered).
	State string `json:"state"`
	// Code/Reason: the answer to the last SUBSCRIBE.
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Expires is the granted lifetime of the last (re-)SUBSCRIBE, seconds;
	// RefreshAt when the next refresh goes out.
	Expires   int       `json:"expires,omitempty"`
	RefreshAt time.Time `json:"refresh_at,omitzero"`
	Refreshes int       `json:"refreshes,omitempty"`
	// Notifies counts NOTIFYs received; SubscriptionState is the last
	// one's Subscription-State header, Body its body (up to 4 KiB).
	Notifies          int       `json:"notifies"`
	LastNotify        time.Time `json:"last_notify,omitzero"`
	SubscriptionState string    `json:"subscription_state,omitempty"`
	Body              string    `json:"body,omitempty"`
	// Lamp is the BLF lamp for the dialog package: idle, ringing, busy.
	Lamp    string       `json:"lamp,omitempty"`
	Dialogs []DialogInfo `json:"dialogs,omitempty"`
	// MessagesWaiting and VoiceMessages for message-summary
	// ("2/8 (0/1)": new/old (urgent new/urgent old)).
	MessagesWaiting *bool  `json:"messages_waiting,omitempty"`
	VoiceMessages   string `json:"voice_messages,omitempty"`
	Error           string `json:"error,omitempty"`
}

// DialogInfo is one <dialog> of an RFC 4235 dialog-info document.
type DialogInfo struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Direction string `json:"direction,omitempty"`
	Remote    string `json:"remote,omitempty"`
}

// subscription is a SUBSCRIBE dialog (RFC 6665); its fields are guarded
// by the phone's mutex.
type subscription struct {
	st      SubscriptionStatus
	dlg     sipdialog.Dialog
	dialogs map[string]DialogInfo // dialog-info by id (partial updates merge)
	kick    chan struct{}         // wakes the refresher: unsubscribe
	stop    bool
}

// maxSubscriptions bounds the subscriptions kept for status.
const maxSubscriptions = 50

// Subscribe sends SUBSCRIBE for event (dialog or message-summary) to
// target through the proxy and keeps refreshing it at half the granted
// lifetime. It returns when the SUBSCRIBE is answered; NOTIFYs then update
// the subscription in status.
func (p *Phone) Subscribe(ctx context.Context, target, event string) (SubscriptionStatus, error) {
	if p.proxy() == "" {
		return SubscriptionStatus{}, ErrNoProxy
	}
	event = strings.ToLower(strings.TrimSpace(event))
	switch event {
	case EventDialog, EventMessageSummary:
	case "blf":
		event = EventDialog
	case "mwi":
		event = EventMessageSummary
	default:
		return SubscriptionStatus{}, fmt.Errorf("%w: event package %q (want dialog or message-summary)", ErrBadValue, event)
	}
	if strings.TrimSpace(target) == "" && event == EventMessageSummary {
		// MWI for our own mailbox.
		target = p.cfg.User
	}
	to, err := p.parseTarget(target)
	if err != nil {
		return SubscriptionStatus{}, err
	}
	s := p.currentSettings()
	callID := newCallID(p.local)
	req := p.newRequest(sip.SUBSCRIBE, to, to, callID, 1, s)
	from := req.From()
	fromTag, _ := from.Params.Get("tag")
	p.mu.Lock()
	p.nextSubID++
	sub := &subscription{
		st:      SubscriptionStatus{ID: "s" + strconv.Itoa(p.nextSubID), CallID: callID, Target: to.String(), Event: event, State: SubPending},
		dlg:     sipdialog.Dialog{CallID: callID, LocalTag: fromTag, LocalURI: from.Address, RemoteURI: to, LocalSeq: 1},
		dialogs: map[string]DialogInfo{},
		kick:    make(chan struct{}, 1),
	}
	p.subs = append(p.subs, sub)
	for len(p.subs) > maxSubscriptions {
		i := slices.IndexFunc(p.subs, func(x *subscription) bool {
			return x.st.State == SubTerminated || x.st.State == SubFailed
		})
		if i < 0 {
			break
		}
		p.subs = slices.Delete(p.subs, i, i+1)
	}
	p.notifyLocked()
	p.mu.Unlock()

	p.addSubscribeHeaders(req, event, s.SubscribeExpires)
	if err := p.toProxy(req); err != nil {
		return p.subFailed(sub, 0, "", err)
	}
	res, req, err := p.doAuth(ctx, req)
	if err != nil {
		return p.subFailed(sub, 0, "", err)
	}
	p.mu.Lock()
	sub.dlg.LocalSeq = max(sub.dlg.LocalSeq, req.CSeq().SeqNo)
	p.mu.Unlock()
	if !res.IsSuccess() {
		return p.subFailed(sub, res.StatusCode, res.Reason, &ResponseError{Code: res.StatusCode, Reason: res.Reason})
	}
	p.subAnswered(sub, res, true)
	p.log.Info("subscribed", "id", sub.st.ID, "event", event, "target", to.String(), "code", res.StatusCode)
	go p.refreshLoop(sub)
	return p.subStatus(sub), nil
}

func (p *Phone) addSubscribeHeaders(req *sip.Request, event string, expires int) {
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	accept := "application/dialog-info+xml"
	if event == EventMessageSummary {
		accept = "application/simple-message-summary"
	}
	req.AppendHeader(sip.NewHeader("Accept", accept))
	req.AppendHeader(p.contactHeader(p.currentSettings()))
	req.AppendHeader(sip.NewHeader("Allow", allowedMethods))
}

func (p *Phone) subStatus(sub *subscription) SubscriptionStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return sub.statusLocked()
}

func (sub *subscription) statusLocked() SubscriptionStatus {
	st := sub.st
	st.Dialogs = slices.Clone(st.Dialogs)
	if st.MessagesWaiting != nil {
		v := *st.MessagesWaiting
		st.MessagesWaiting = &v
	}
	return st
}

func (p *Phone) subFailed(sub *subscription, code int, reason string, err error) (SubscriptionStatus, error) {
	p.mu.Lock()
	sub.st.State, sub.st.Code, sub.st.Reason = SubFailed, code, reason
	sub.st.Error = strings.TrimPrefix(err.Error(), "uaclient: ")
	sub.st.RefreshAt = time.Time{}
	sub.stop = true
	st := sub.statusLocked()
	p.notifyLocked()
	p.mu.Unlock()
	p.log.Info("subscription failed", "id", sub.st.ID, "err", err)
	return st, err
}

// subAnswered applies a 2xx to SUBSCRIBE: the dialog (first time) and the
// granted Expires.
func (p *Phone) subAnswered(sub *subscription, res *sip.Response, initial bool) {
	expires := -1
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n >= 0 {
			expires = n
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if expires < 0 {
		// RFC 6665 §4.1.2.1 makes Expires mandatory in the 2xx; without
		// it, take what we asked for.
		expires = p.settings.SubscribeExpires
	}
	if initial {
		if tag, ok := res.To().Params.Get("tag"); ok && sub.dlg.RemoteTag == "" {
			sub.dlg.RemoteTag = tag
		}
		remoteFromResponse(&sub.dlg, res)
	}
	sub.st.Code, sub.st.Reason, sub.st.Expires = res.StatusCode, res.Reason, expires
	if sub.st.State == SubPending && res.StatusCode == sip.StatusOK && sub.st.Notifies > 0 {
		sub.st.State = SubActive
	}
	if expires == 0 {
		sub.st.RefreshAt = time.Time{}
	} else {
		sub.st.RefreshAt = time.Now().Add(time.Duration(expires) * time.Second / 2)
	}
	p.notifyLocked()
}

// refreshLoop re-SUBSCRIBEs inside the dialog at half the granted
// lifetime until the subscription ends.
func (p *Phone) refreshLoop(sub *subscription) {
	ctx, cancel := p.lifetime()
	defer cancel()
	for {
		p.mu.Lock()
		at, stop := sub.st.RefreshAt, sub.stop || sub.st.State == SubTerminated || sub.st.State == SubFailed
		p.mu.Unlock()
		if stop || at.IsZero() {
			return
		}
		t := time.NewTimer(time.Until(at))
		select {
		case <-t.C:
		case <-sub.kick:
			t.Stop()
			continue
		case <-ctx.Done():
			t.Stop()
			return
		}
		p.mu.Lock()
		expires := p.settings.SubscribeExpires
		stop = sub.stop
		p.mu.Unlock()
		if stop {
			return
		}
		if _, err := p.resubscribe(ctx, sub, expires); err != nil {
			p.log.Warn("subscription refresh failed", "id", sub.st.ID, "err", err)
			return
		}
		p.mu.Lock()
		sub.st.Refreshes++
		p.notifyLocked()
		p.mu.Unlock()
	}
}

// resubscribe sends SUBSCRIBE inside the subscription's dialog: a refresh,
// or with expires 0 an unsubscribe.
func (p *Phone) resubscribe(ctx context.Context, sub *subscription, expires int) (*sip.Response, error) {
	p.mu.Lock()
	event := sub.st.Event
	p.mu.Unlock()
	req := p.dialogRequest(&sub.dlg, sip.SUBSCRIBE, 0)
	p.addSubscribeHeaders(req, event, expires)
	ctx, cancel := context.WithTimeout(ctx, 32*time.Second)
	defer cancel()
	res, req, err := p.doAuth(ctx, req)
	if err != nil {
		_, err = p.subFailed(sub, 0, "", err)
		return nil, err
	}
	p.mu.Lock()
	sub.dlg.LocalSeq = max(sub.dlg.LocalSeq, req.CSeq().SeqNo)
	p.mu.Unlock()
	if !res.IsSuccess() {
		_, err := p.subFailed(sub, res.StatusCode, res.Reason, &ResponseError{Code: res.StatusCode, Reason: res.Reason})
		return res, err
	}
	p.subAnswered(sub, res, false)
	return res, nil
}

// Unsubscribe ends subscription ref (its id, or "" for the newest live
// one) with SUBSCRIBE Expires: 0; the notifier's final NOTIFY marks it
// terminated.
func (p *Phone) Unsubscribe(ctx context.Context, ref string) (SubscriptionStatus, error) {
	p.mu.Lock()
	var sub *subscription
	for i := len(p.subs) - 1; i >= 0; i-- {
		s := p.subs[i]
		if ref == "" && s.st.State != SubTerminated && s.st.State != SubFailed || ref != "" && (s.st.ID == ref || s.st.CallID == ref) {
			sub = s
			break
		}
	}
	if sub == nil {
		p.mu.Unlock()
		if ref == "" {
			return SubscriptionStatus{}, fmt.Errorf("%w: no live subscription", ErrNoSuchCall)
		}
		return SubscriptionStatus{}, fmt.Errorf("%w: no subscription %q", ErrNoSuchCall, ref)
	}
	if sub.st.State == SubTerminated || sub.st.State == SubFailed || sub.stop {
		st := sub.st.State
		p.mu.Unlock()
		return sub.statusLockedCopy(p), fmt.Errorf("%w: subscription %s is %s", ErrCallState, sub.st.ID, st)
	}
	sub.stop = true
	p.mu.Unlock()
	select {
	case sub.kick <- struct{}{}:
	default:
	}
	if _, err := p.resubscribe(ctx, sub, 0); err != nil {
		return p.subStatus(sub), err
	}
	p.mu.Lock()
	sub.st.State = SubTerminated
	sub.st.RefreshAt = time.Time{}
	p.notifyLocked()
	p.mu.Unlock()
	return p.subStatus(sub), nil
}

func (sub *subscription) statusLockedCopy(p *Phone) SubscriptionStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return sub.statusLocked()
}

// Subscriptions lists the subscriptions, oldest first.
func (p *Phone) Subscriptions() []SubscriptionStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []SubscriptionStatus{}
	for _, s := range p.subs {
		out = append(out, s.statusLocked())
	}
	return out
}

// matchSubscription finds the subscription a NOTIFY belongs to
// (inDialogOf: the notifier's tag may not be known yet).
func (p *Phone) matchSubscriptionLocked(req *sip.Request) *subscription {
	for i := len(p.subs) - 1; i >= 0; i-- {
		if s := p.subs[i]; inDialogOf(req, s.dlg.CallID, &s.dlg) {
			return s
		}
	}
	return nil
}

// onSubscriptionNotify takes a NOTIFY for one of our subscriptions
// (RFC 6665 §4.1.3): it may come before the 2xx and then creates the
// dialog; its Subscription-State moves the subscription on; its body
// is the state of the lamp or the mailbox.
func (p *Phone) onSubscriptionNotify(event string, req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	sub := p.matchSubscriptionLocked(req)
	if sub == nil {
		p.mu.Unlock()
		if event == EventMessageSummary && !hasToTag(req) {
			p.onUnsolicitedMWI(req, tx)
			return
		}
		p.respondLog(tx, req, sip.StatusCallTransactionDoesNotExists, "Subscription Does Not Exist")
		return
	}
	if sub.st.Event != event {
		want := sub.st.Event
		p.mu.Unlock()
		p.respondLog(tx, req, 489, "Bad Event", sip.NewHeader("Allow-Events", want))
		return
	}
	d := &sub.dlg
	seq := req.CSeq().SeqNo
	if !d.AcceptSeq(seq) {
		p.mu.Unlock()
		p.respondLog(tx, req, sip.StatusInternalServerError, "Server Internal Error", p.warning(399, "CSeq lower than a previous request"))
		return
	}
	if d.RemoteTag == "" {
		d.RemoteTag, _ = req.From().Params.Get("tag")
		d.RouteSet = sipdialog.RouteSetAsUAS(req)
	}
	if ct := req.Contact(); ct != nil {
		u := *ct.Address.Clone()
		d.RemoteTarget = u
	}
	p.mu.Unlock()

	subState := ""
	if h := req.GetHeader("Subscription-State"); h != nil {
		subState = strings.TrimSpace(h.Value())
	}
	state, _, _ := strings.Cut(subState, ";")
	state = strings.ToLower(strings.TrimSpace(state))
	switch state {
	case SubActive, SubPending, SubTerminated:
	default:
		p.respondLog(tx, req, sip.StatusBadRequest, "Bad Subscription-State", p.warning(399, fmt.Sprintf("Subscription-State %q", subState)))
		return
	}
	body := req.Body()
	var parseErr error
	var dlgs []DialogInfo
	var full bool
	var waiting *bool
	var voice string
	if len(body) > 0 {
		switch event {
		case EventDialog:
			dlgs, full, parseErr = parseDialogInfo(body)
		case EventMessageSummary:
			waiting, voice, parseErr = parseMessageSummary(body)
		}
	}
	if parseErr != nil {
		p.respondLog(tx, req, sip.StatusBadRequest, "Bad Body", p.warning(399, parseErr.Error()))
		return
	}
	p.mu.Lock()
	sub.st.Notifies++
	sub.st.LastNotify = time.Now()
	sub.st.SubscriptionState = subState
	sub.st.Body = string(body[:min(len(body), 4096)])
	if sub.st.State != SubFailed {
		sub.st.State = state
	}
	if state == SubTerminated {
		sub.stop = true
		sub.st.RefreshAt = time.Time{}
		select {
		case sub.kick <- struct{}{}:
		default:
		}
	}
	if len(body) > 0 {
		switch event {
		case EventDialog:
			if full {
				clear(sub.dialogs)
			}
			for _, di := range dlgs {
				sub.dialogs[di.ID] = di
			}
			sub.st.Dialogs = sub.st.Dialogs[:0]
			for _, id := range sortedDialogIDs(sub.dialogs) {
				sub.st.Dialogs = append(sub.st.Dialogs, sub.dialogs[id])
			}
			sub.st.Lamp = lampOf(sub.st.Dialogs)
		case EventMessageSummary:
			sub.st.MessagesWaiting, sub.st.VoiceMessages = waiting, voice
			p.setMWILocked(req, waiting, voice, false)
		}
	}
	p.notifyLocked()
	id := sub.st.ID
	p.mu.Unlock()
	p.log.Info("NOTIFY received", "subscription", id, "event", event, "state", subState, "source", req.Source())
	p.respondLog(tx, req, sip.StatusOK, "OK")
}

func sortedDialogIDs(m map[string]DialogInfo) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// dialogInfoXML is the part of RFC 4235 application/dialog-info+xml a
// lamp needs.
type dialogInfoXML struct {
	XMLName xml.Name `xml:"dialog-info"`
	State   string   `xml:"state,attr"`
	Dialogs []struct {
		ID        string `xml:"id,attr"`
		Direction string `xml:"direction,attr"`
		State     string `xml:"state"`
		Remote    struct {
			Identity string `xml:"identity"`
		} `xml:"remote"`
	} `xml:"dialog"`
}

// parseDialogInfo reads a dialog-info document: its dialogs, and whether
// it is a full state (replaces what we had) or a partial update.
func parseDialogInfo(body []byte) (dialogs []DialogInfo, full bool, err error) {
	var doc dialogInfoXML
	dec := xml.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return nil, false, fmt.Errorf("dialog-info: %w", err)
	}
	for i, d := range doc.Dialogs {
		id := d.ID
		if id == "" {
			id = "dialog-" + strconv.Itoa(i+1)
		}
		dialogs = append(dialogs, DialogInfo{
			ID: id, State: strings.ToLower(strings.TrimSpace(d.State)), Direction: d.Direction,
			Remote: strings.TrimSpace(d.Remote.Identity),
		})
	}
	return dialogs, doc.State != "partial", nil
}

// lampOf is the BLF lamp: busy when any dialog is confirmed, ringing when
// one is being set up (trying, proceeding, early), else idle.
func lampOf(ds []DialogInfo) string {
	lamp := "idle"
	for _, d := range ds {
		switch d.State {
		case "confirmed":
			return "busy"
		case "trying", "proceeding", "early":
			lamp = "ringing"
		}
	}
	return lamp
}

// parseMessageSummary reads RFC 3842 application/simple-message-summary:
// "Messages-Waiting: yes" and "Voice-Message: 2/8 (0/0)".
func parseMessageSummary(body []byte) (*bool, string, error) {
	var waiting *bool
	voice := ""
	for _, line := range strings.Split(string(body), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "messages-waiting":
			switch strings.ToLower(v) {
			case "yes":
				b := true
				waiting = &b
			case "no":
				b := false
				waiting = &b
			default:
				return nil, "", fmt.Errorf("Messages-Waiting %q (want yes or no)", v)
			}
		case "voice-message":
			voice = v
		}
	}
	if waiting == nil {
		return nil, "", fmt.Errorf("message-summary without Messages-Waiting")
	}
	return waiting, voice, nil
}

// MWIStatus is the last message-waiting indication received, from a
// subscription or unsolicited (many PBXes NOTIFY a phone's mailbox state
// without a SUBSCRIBE).
type MWIStatus struct {
	MessagesWaiting bool      `json:"messages_waiting"`
	VoiceMessages   string    `json:"voice_messages,omitempty"`
	From            string    `json:"from"`
	Source          string    `json:"source"`
	Unsolicited     bool      `json:"unsolicited,omitempty"`
	Received        time.Time `json:"received"`
}

func (p *Phone) setMWILocked(req *sip.Request, waiting *bool, voice string, unsolicited bool) {
	if waiting == nil {
		return
	}
	p.mwi = &MWIStatus{MessagesWaiting: *waiting, VoiceMessages: voice, From: req.From().Address.String(),
		Source: req.Source(), Unsolicited: unsolicited, Received: time.Now()}
	p.notifyLocked()
}

// onUnsolicitedMWI takes a message-summary NOTIFY outside any dialog.
func (p *Phone) onUnsolicitedMWI(req *sip.Request, tx sip.ServerTransaction) {
	waiting, voice, err := parseMessageSummary(req.Body())
	if err != nil {
		p.respondLog(tx, req, sip.StatusBadRequest, "Bad Body", p.warning(399, err.Error()))
		return
	}
	p.mu.Lock()
	p.setMWILocked(req, waiting, voice, true)
	p.mu.Unlock()
	p.log.Info("unsolicited MWI NOTIFY", "waiting", *waiting, "voice", voice, "source", req.Source())
	p.respondLog(tx, req, sip.StatusOK, "OK")
}
