package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

// bob's phone subscribes to its mailbox by dialling *97 (the proxy's user
// route takes it to the PBX): the PBX answers 200 and NOTIFYs "no
// messages" at once. alice leaves bob a voicemail: the subscription gets
// "Messages-Waiting: yes" (and no unsolicited NOTIFY is sent besides).
// Unsubscribing ends with a terminated NOTIFY.
func TestMWISubscriptionFollowsMailbox(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "bob")
	alice, bob := l.phone("alice"), l.phone("bob")
	sub, err := bob.Subscribe(siptest.Ctx(t, 5*time.Second), "*97", uaclient.EventMessageSummary)
	if err != nil {
		t.Fatal(err)
	}
	subOf := func() uaclient.SubscriptionStatus {
		for _, s := range bob.Subscriptions() {
			if s.ID == sub.ID {
				return s
			}
		}
		t.Fatalf("subscription %s gone", sub.ID)
		return uaclient.SubscriptionStatus{}
	}
	siptest.WaitFor(t, 5*time.Second, "the immediate NOTIFY: no messages", func() bool {
		s := subOf()
		return s.State == uaclient.SubActive && s.Notifies >= 1 && s.MessagesWaiting != nil && !*s.MessagesWaiting
	})
	if st := l.pbx.Status(); len(st.MWI) != 1 || st.MWI[0].User != "bob" || len(st.BLF) != 0 {
		t.Fatalf("PBX subscriptions: mwi %+v blf %+v", st.MWI, st.BLF)
	}

	call := dialUp(t, alice, "101")
	siptest.WaitFor(t, 5*time.Second, "a second of recording", func() bool {
		c, _ := l.callOf(call.CallID())
		return c.Recording != nil && c.Recording.Seconds >= 1
	})
	if err := call.Hangup(siptest.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "the subscription to say a message waits", func() bool {
		s := subOf()
		return s.MessagesWaiting != nil && *s.MessagesWaiting && strings.HasPrefix(s.VoiceMessages, "1/0")
	})
	if m := bob.Status().MWI; m == nil || m.Unsolicited || !m.MessagesWaiting {
		t.Fatalf("bob's MWI %+v: want the subscribed indication, not an unsolicited one", m)
	}
	// The PBX records a NOTIFY's outcome when its 200 comes back, which
	// can be just after bob's phone has taken the NOTIFY in.
	var last string
	siptest.WaitFor(t, 5*time.Second, "the mailbox's last NOTIFY to be the subscription's", func() bool {
		for _, mb := range l.pbx.Status().Mailbox {
			if mb.User == "bob" {
				last = mb.LastNotify
			}
		}
		return strings.HasPrefix(last, "subscribed")
	})

	if _, err := bob.Unsubscribe(siptest.Ctx(t, 5*time.Second), sub.ID); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "the terminated NOTIFY", func() bool {
		s := subOf()
		return s.State == uaclient.SubTerminated && strings.HasPrefix(s.SubscriptionState, "terminated")
	})
	siptest.WaitFor(t, 2*time.Second, "the PBX to forget the subscription", func() bool { return len(l.pbx.Status().MWI) == 0 })
}

// The subscription's rules, byte by byte: a refresh gets the state again,
// nobody watches someone else's mailbox, a package the PBX does not
// serve is 489 with Allow-Events, and Expires: 0 ends it.
func TestMWISubscriptionRules(t *testing.T) {
	l := newLab(t, labOpts{})
	w := newRawUA(t, "127.0.9.93", "dave")
	w.target, w.callID, w.fromTag = l.pbx.LocalAddr(), "mwi-"+sip.GenerateTagN(8), sip.GenerateTagN(8)
	subscribe := func(ruser, event string, cseq int, toTag string, expires int) *sip.Response {
		return w.subscribe(ruser, event, "application/simple-message-summary", cseq, toTag, expires)
	}
	notify := func() (string, string) {
		t.Helper()
		n := w.notify("message-summary", "application/simple-message-summary")
		return string(n.Body()), n.GetHeader("Subscription-State").Value()
	}

	res := subscribe("103", "message-summary", 1, "", 600) // 103 is dave's extension
	if res.StatusCode != 200 || res.GetHeader("Expires").Value() != "600" {
		t.Fatalf("SUBSCRIBE: %d\n%s", res.StatusCode, res)
	}
	toTag, _ := res.To().Params.Get("tag")
	if body, ss := notify(); !strings.Contains(body, "Messages-Waiting: no") || !strings.Contains(body, "Voice-Message: 0/0") ||
		!strings.HasPrefix(ss, "active;expires=") {
		t.Fatalf("first NOTIFY %q %q", body, ss)
	}
	if res := subscribe("103", "message-summary", 2, toTag, 60); res.StatusCode != 200 || res.GetHeader("Expires").Value() != "60" {
		t.Fatalf("refresh: %d", res.StatusCode)
	}
	if _, ss := notify(); !strings.HasPrefix(ss, "active;expires=") {
		t.Fatalf("NOTIFY after refresh: %s", ss)
	}
	if res := subscribe("103", "dialog", 3, toTag, 60); res.StatusCode != 489 {
		t.Fatalf("refresh naming another package: %d, want 489", res.StatusCode)
	}

	if res := subscribe("101", "message-summary", 1, "", 600); res.StatusCode != 403 {
		t.Fatalf("dave watching bob's mailbox: %d, want 403", res.StatusCode)
	}
	if res := subscribe("999", "message-summary", 1, "", 600); res.StatusCode != 404 {
		t.Fatalf("no such mailbox: %d, want 404", res.StatusCode)
	}
	res = subscribe("103", "presence", 1, "", 600)
	if ae := res.GetHeader("Allow-Events"); res.StatusCode != 489 || ae == nil || !strings.Contains(ae.Value(), "message-summary") {
		t.Fatalf("presence: %d %v, want 489 listing message-summary", res.StatusCode, ae)
	}

	if res := subscribe("103", "message-summary", 4, toTag, 0); res.StatusCode != 200 {
		t.Fatalf("unsubscribe: %d", res.StatusCode)
	}
	if _, ss := notify(); !strings.HasPrefix(ss, "terminated") {
		t.Fatalf("final NOTIFY: %s", ss)
	}
	if n := len(l.pbx.Status().MWI); n != 0 {
		t.Fatalf("%d MWI subscriptions left", n)
	}
}
