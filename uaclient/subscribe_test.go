package uaclient

import (
	"errors"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// rawNotify builds a NOTIFY from the raw notifier in subscription sub.
func rawNotify(phone *Phone, from, callID, notifierTag, ourTag string, cseq uint32, event, state, ct, body string) *sip.Request {
	req := rawRequest(sip.NOTIFY, phone, from, callID, notifierTag, ourTag, cseq, nil)
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	if ct != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", ct))
	}
	req.SetBody([]byte(body))
	return req
}

const dialogInfo = `<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="%d" state="%s" entity="sip:bob@siplab.test">%s</dialog-info>`

func dialogDoc(version int, state, dialogs string) string {
	return strings.Replace(strings.Replace(strings.Replace(dialogInfo, "%d", string(rune('0'+version)), 1), "%s", state, 1), "%s", dialogs, 1)
}

// TestSubscribeBLF: SUBSCRIBE Event: dialog through the proxy, the 2xx
// makes the dialog, NOTIFYs move the lamp (ringing, busy, idle; full and
// partial documents), the subscription is refreshed in-dialog at half the
// granted time, and a terminated NOTIFY ends it.
func TestSubscribeBLF(t *testing.T) {
	peer := newRawPeer(t, "127.0.10.4")
	phone := startPhone(t, Config{Name: "alice", Listen: "127.0.10.1:0", Proxy: peer.addr(), Domain: "siplab.test",
		Settings: map[string]string{"subscribe_expires": "120"}})
	type result struct {
		st  SubscriptionStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := phone.Subscribe(testCtx(t), "bob", "blf")
		done <- result{st, err}
	}()
	sub, src := peer.next(sip.SUBSCRIBE)
	for name, want := range map[string]string{"Event": "dialog", "Expires": "120", "Accept": "application/dialog-info+xml"} {
		if h := sub.GetHeader(name); h == nil || h.Value() != want {
			t.Fatalf("SUBSCRIBE %s %v, want %s\n%s", name, h, want, sub)
		}
	}
	if sub.Contact() == nil || sub.Recipient.String() != "sip:bob@siplab.test" {
		t.Fatalf("SUBSCRIBE:\n%s", sub)
	}
	ourTag, _ := sub.From().Params.Get("tag")
	callID := sub.CallID().Value()
	from := peer.addr()
	ok := sip.NewResponseFromRequest(sub, 200, "OK", nil)
	ok.To().Params.Add("tag", "notifier")
	ok.AppendHeader(sip.NewHeader("Contact", "<sip:bob-blf@"+from+">"))
	ok.AppendHeader(sip.NewHeader("Expires", "2"))
	peer.send(ok, src)
	r := <-done
	if r.err != nil || r.st.State != SubPending || r.st.Expires != 2 || r.st.Code != 200 {
		t.Fatalf("subscribe: %+v %v", r.st, r.err)
	}

	notify := func(cseq uint32, event, state, ct, body string) *sip.Response {
		t.Helper()
		peer.send(rawNotify(phone, from, callID, "notifier", ourTag, cseq, event, state, ct, body), phone.Addr())
		return peer.nextResponse(sip.NOTIFY, 0)
	}
	sub1 := func() SubscriptionStatus { return phone.Subscriptions()[0] }
	steps := []struct {
		name      string
		cseq      uint32
		event     string
		state     string
		body      string
		wantCode  int
		wantLamp  string
		wantState string
	}{
		{"ringing", 1, "dialog", "active;expires=2", dialogDoc(0, "full", `<dialog id="d1" direction="recipient"><state>early</state><remote><identity>sip:carol@siplab.test</identity></remote></dialog>`), 200, "ringing", SubActive},
		{"answered (partial)", 2, "dialog", "active;expires=2", dialogDoc(1, "partial", `<dialog id="d1" direction="recipient"><state>confirmed</state></dialog>`), 200, "busy", SubActive},
		{"stale CSeq", 2, "dialog", "active", dialogDoc(2, "full", ""), 500, "busy", SubActive},
		{"wrong event", 3, "presence", "active", "", 489, "busy", SubActive},
		{"bad xml", 4, "dialog", "active", "<dialog-info", 400, "busy", SubActive},
		{"bad state", 5, "dialog", "sleepy", "", 400, "busy", SubActive},
		{"hung up (full, no dialogs)", 6, "dialog", "active;expires=2", dialogDoc(3, "full", ""), 200, "idle", SubActive},
	}
	for _, s := range steps {
		ct := "application/dialog-info+xml"
		if s.body == "" {
			ct = ""
		}
		res := notify(s.cseq, s.event, s.state, ct, s.body)
		if res.StatusCode != s.wantCode {
			t.Fatalf("%s: NOTIFY answered %d %s, want %d", s.name, res.StatusCode, res.Reason, s.wantCode)
		}
		if st := sub1(); st.Lamp != s.wantLamp || st.State != s.wantState {
			t.Fatalf("%s: lamp %q state %q, want %q %q", s.name, st.Lamp, st.State, s.wantLamp, s.wantState)
		}
	}
	if st := sub1(); len(st.Dialogs) != 0 || st.Notifies != 3 {
		t.Fatalf("after idle: dialogs %+v, %d NOTIFYs counted", st.Dialogs, st.Notifies)
	}

	// The refresh: in the dialog, next CSeq, to the notifier's Contact as
	// the last NOTIFY wrote it (a NOTIFY refreshes the remote target, RFC
	// 6665 §4.1.3; rawRequest writes sip:carol@...).
	ref, src := peer.next(sip.SUBSCRIBE)
	if tag, _ := ref.To().Params.Get("tag"); tag != "notifier" || ref.CallID().Value() != callID ||
		ref.CSeq().SeqNo != sub.CSeq().SeqNo+1 || ref.Recipient.String() != "sip:carol@"+from {
		t.Fatalf("refresh is not in the dialog:\n%s", ref)
	}
	ok = sip.NewResponseFromRequest(ref, 200, "OK", nil)
	ok.AppendHeader(sip.NewHeader("Expires", "60"))
	peer.send(ok, src)
	eventually(t, "refresh counted", func() bool { return sub1().Refreshes == 1 && sub1().Expires == 60 })

	if res := notify(7, "dialog", "terminated;reason=noresource", "", ""); res.StatusCode != 200 {
		t.Fatalf("final NOTIFY: %d", res.StatusCode)
	}
	if st := sub1(); st.State != SubTerminated || !st.RefreshAt.IsZero() {
		t.Fatalf("after terminated NOTIFY: %+v", st)
	}
	if _, err := phone.Unsubscribe(testCtx(t), "s1"); !errors.Is(err, ErrCallState) {
		t.Fatalf("unsubscribe of a terminated subscription: %v", err)
	}
}

// TestSubscribeMWI: message-summary for our own mailbox, the NOTIFY's
// Messages-Waiting and Voice-Message in status, then unsubscribe
// (Expires: 0).
func TestSubscribeMWI(t *testing.T) {
	peer := newRawPeer(t, "127.0.10.4")
	phone := startPhone(t, Config{Name: "alice", Listen: "127.0.10.1:0", Proxy: peer.addr(), Domain: "siplab.test"})
	done := make(chan error, 1)
	go func() {
		_, err := phone.Subscribe(testCtx(t), "", "message-summary")
		done <- err
	}()
	sub, src := peer.next(sip.SUBSCRIBE)
	if sub.Recipient.String() != "sip:alice@siplab.test" || sub.GetHeader("Accept").Value() != "application/simple-message-summary" {
		t.Fatalf("MWI SUBSCRIBE:\n%s", sub)
	}
	ourTag, _ := sub.From().Params.Get("tag")
	callID, from := sub.CallID().Value(), peer.addr()
	// The NOTIFY overtakes the 2xx (RFC 6665 §4.1.2.4): it makes the dialog.
	peer.send(rawNotify(phone, from, callID, "vm", ourTag, 1, "message-summary", "active;expires=600",
		"application/simple-message-summary", "Messages-Waiting: yes\r\nMessage-Account: sip:alice@siplab.test\r\nVoice-Message: 2/8 (0/1)\r\n"), phone.Addr())
	if res := peer.nextResponse(sip.NOTIFY, 0); res.StatusCode != 200 {
		t.Fatalf("NOTIFY before 2xx: %d %s", res.StatusCode, res.Reason)
	}
	ok := sip.NewResponseFromRequest(sub, 200, "OK", nil)
	ok.To().Params.Add("tag", "vm")
	ok.AppendHeader(sip.NewHeader("Contact", "<sip:vm@"+from+">"))
	ok.AppendHeader(sip.NewHeader("Expires", "600"))
	peer.send(ok, src)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := phone.Status().Subscriptions[0]
	if st.State != SubActive || st.MessagesWaiting == nil || !*st.MessagesWaiting || st.VoiceMessages != "2/8 (0/1)" {
		t.Fatalf("MWI status %+v", st)
	}
	peer.send(rawNotify(phone, from, callID, "vm", ourTag, 2, "message-summary", "active", "application/simple-message-summary", "Messages-Waiting: maybe\r\n"), phone.Addr())
	if res := peer.nextResponse(sip.NOTIFY, 0); res.StatusCode != 400 {
		t.Fatalf("bad Messages-Waiting: %d", res.StatusCode)
	}

	udone := make(chan error, 1)
	go func() {
		_, err := phone.Unsubscribe(testCtx(t), "")
		udone <- err
	}()
	un, src := peer.next(sip.SUBSCRIBE)
	if un.GetHeader("Expires").Value() != "0" || un.CallID().Value() != callID {
		t.Fatalf("unsubscribe:\n%s", un)
	}
	peer.reply(un, src, 200, "OK", sip.NewHeader("Expires", "0"))
	if err := <-udone; err != nil {
		t.Fatal(err)
	}
	if st := phone.Subscriptions()[0]; st.State != SubTerminated {
		t.Fatalf("after unsubscribe: %s", st.State)
	}
	if _, err := phone.Subscribe(testCtx(t), "bob", "presence"); !errors.Is(err, ErrBadValue) {
		t.Fatalf("unknown event package: %v", err)
	}
}

// A refused SUBSCRIBE fails the subscription with the code.
func TestSubscribeRefused(t *testing.T) {
	peer, phone := aliceBehindRawProxy(t, "127.0.10.4", "127.0.10.1:0")
	done := make(chan error, 1)
	go func() {
		_, err := phone.Subscribe(testCtx(t), "bob", "dialog")
		done <- err
	}()
	sub, src := peer.next(sip.SUBSCRIBE)
	peer.reply(sub, src, 489, "Bad Event")
	var re *ResponseError
	if err := <-done; !errors.As(err, &re) || re.Code != 489 {
		t.Fatalf("err %v", err)
	}
	if st := phone.Subscriptions()[0]; st.State != SubFailed || st.Code != 489 {
		t.Fatalf("status %+v", st)
	}
}

// TestUnsolicitedMWI: a PBX's message-summary NOTIFY outside any dialog
// (no SUBSCRIBE) is taken and shown; other out-of-dialog NOTIFYs are 481.
func TestUnsolicitedMWI(t *testing.T) {
	peer := newRawPeer(t, "127.0.10.4")
	phone := startPhone(t, Config{Name: "alice", Listen: "127.0.10.1:0"})
	from := peer.addr()
	peer.send(rawNotify(phone, from, "mwi-1", "vm", "", 1, "message-summary", "active", "application/simple-message-summary",
		"Messages-Waiting: yes\r\nMessage-Account: sip:alice@127.0.10.4\r\nVoice-Message: 1/0 (0/0)\r\n"), phone.Addr())
	if res := peer.nextResponse(sip.NOTIFY, 0); res.StatusCode != 200 {
		t.Fatalf("unsolicited MWI: %d", res.StatusCode)
	}
	m := phone.Status().MWI
	if m == nil || !m.MessagesWaiting || m.VoiceMessages != "1/0 (0/0)" || !m.Unsolicited || m.Source != from {
		t.Fatalf("MWI %+v", m)
	}
	peer.send(rawNotify(phone, from, "mwi-2", "vm", "", 1, "message-summary", "active", "application/simple-message-summary", "Voice-Message: 1/0\r\n"), phone.Addr())
	if res := peer.nextResponse(sip.NOTIFY, 0); res.StatusCode != 400 {
		t.Fatalf("MWI without Messages-Waiting: %d", res.StatusCode)
	}
	peer.send(rawNotify(phone, from, "dlg-1", "x", "", 1, "dialog", "active", "", ""), phone.Addr())
	if res := peer.nextResponse(sip.NOTIFY, 0); res.StatusCode != 481 {
		t.Fatalf("unsolicited dialog NOTIFY: %d", res.StatusCode)
	}
}
