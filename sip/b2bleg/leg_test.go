package b2bleg_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/sipdialog"
	"github.com/siplab/siplab/sip/sipnet"
)

// endpoint is a SIP endpoint on a loopback socket.
func endpoint(t *testing.T) *sipnet.Endpoint {
	t.Helper()
	ep, err := sipnet.Listen(sipnet.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func start(t *testing.T, ep *sipnet.Endpoint) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); ep.Close() })
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

// owner is the B2BUA side: its UDP client and a mark on every request.
type owner struct {
	cl *sipgo.Client
	mu sync.Mutex
}

func (o *owner) Prepare(req *sip.Request) {
	req.SetTransport("UDP")
	req.AppendHeader(sip.NewHeader("X-Owner", "test"))
}

func (o *owner) Write(req *sip.Request) error { return o.cl.WriteRequest(req) }

func (o *owner) Do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	tx, err := o.cl.TransactionRequest(ctx, req, sipgo.ClientRequestBuild)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	return sipnet.FinalResponse(ctx, tx, nil)
}

// callee is the far UA: answers INVITE with 180 (after ring) and 200,
// and reports every request it gets.
type callee struct {
	ring time.Duration
	got  chan *sip.Request
}

func newCallee(t *testing.T, ep *sipnet.Endpoint, ring time.Duration) *callee {
	c := &callee{ring: ring, got: make(chan *sip.Request, 16)}
	tag := sip.GenerateTagN(8)
	contact := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: int(ep.Addr().Port())}}
	ep.Server.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		c.got <- req
		tx.OnCancel(func(r *sip.Request) { c.got <- r }) // sipgo answers it
		// The tag goes on each response, not on req: sipgo's own 100
		// Trying timer reads req meanwhile.
		time.Sleep(c.ring)
		r := sip.NewResponseFromRequest(req, 180, "Ringing", nil)
		r.To().Params.Add("tag", tag)
		r.AppendHeader(contact)
		_ = tx.Respond(r)
		select {
		case <-tx.Done(): // cancelled: sipgo answered 487
			return
		case <-time.After(50 * time.Millisecond):
		}
		ok := sip.NewResponseFromRequest(req, 200, "OK", nil)
		ok.To().Params.Add("tag", tag)
		ok.AppendHeader(contact)
		_ = tx.Respond(ok)
	})
	for _, m := range []sip.RequestMethod{sip.ACK, sip.BYE} {
		ep.Server.OnRequest(m, func(req *sip.Request, tx sip.ServerTransaction) {
			c.got <- req
			if m == sip.BYE {
				_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
			}
		})
	}
	return c
}

func (c *callee) next(t *testing.T, want sip.RequestMethod) *sip.Request {
	t.Helper()
	select {
	case r := <-c.got:
		if r.Method != want {
			t.Fatalf("callee got %s, want %s", r.Method, want)
		}
		return r
	case <-time.After(3 * time.Second):
		t.Fatalf("callee got no %s", want)
	}
	return nil
}

// nothing checks that the callee gets no request for d.
func (c *callee) nothing(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-c.got:
		t.Fatalf("callee got %s", r.Method)
	case <-time.After(d):
	}
}

// call rings a callee (its 180 after ring) on a new leg and returns once
// the INVITE arrived.
func call(t *testing.T, ring time.Duration) (*callee, *b2bleg.Leg, sip.ClientTransaction) {
	t.Helper()
	us, peer := endpoint(t), endpoint(t)
	callee := newCallee(t, peer, ring)
	start(t, us)
	start(t, peer)
	cl, _ := us.Client("udp")
	o := &owner{cl: cl}
	l, tx := uacLeg(t, o, &o.mu, peer)
	callee.next(t, sip.INVITE)
	return callee, l, tx
}

// uacLeg sends an INVITE on a new leg towards the callee.
func uacLeg(t *testing.T, o *owner, mu sync.Locker, to *sipnet.Endpoint) (*b2bleg.Leg, sip.ClientTransaction) {
	t.Helper()
	target := sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: int(to.Addr().Port())}
	l := b2bleg.New(b2bleg.Config{Lock: mu, Out: o, Name: "b"}, sipdialog.Dialog{
		CallID: sip.GenerateTagN(12), LocalTag: sip.GenerateTagN(8),
		LocalURI: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1"}, RemoteURI: target,
		LocalSeq: 1, RemoteTarget: target,
	})
	mu.Lock()
	inv := l.Dlg.Request(sip.INVITE, 1)
	mu.Unlock()
	inv.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1"}})
	inv.SetTransport("UDP")
	l.SentLocked(inv)
	tx, err := o.cl.TransactionRequest(context.Background(), inv, sipgo.ClientRequestBuild)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tx.Terminate)
	return l, tx
}

func TestUACLeg(t *testing.T) {
	callee, l, tx := call(t, 0)
	for res := range tx.Responses() {
		if res.StatusCode == 180 {
			l.Early(res)
			if st := l.Load(); st != b2bleg.Early {
				t.Fatalf("after 180: %v", st)
			}
		}
		if res.StatusCode == 200 {
			l.Ack(tx, res)
			break
		}
	}
	if st := l.Load(); st != b2bleg.Confirmed {
		t.Fatalf("after 200: %v", st)
	}
	ack := callee.next(t, sip.ACK)
	if ack.CSeq().SeqNo != 1 || sipdialog.ToTag(ack) == "" || ack.GetHeader("X-Owner") == nil {
		t.Fatalf("ACK not built from the dialog and Prepare:\n%s", ack)
	}
	l.Bye(context.Background(), "test over")
	bye := callee.next(t, sip.BYE)
	if r := bye.GetHeader("Reason"); r == nil || r.Value() != `SIP;cause=200;text="test over"` {
		t.Fatalf("BYE Reason %v", r)
	}
	if st := l.Load(); st != b2bleg.Terminated {
		t.Fatalf("after BYE: %v", st)
	}
	l.Bye(context.Background(), "again") // a terminated leg sends nothing
	callee.nothing(t, 200*time.Millisecond)
}

// TestCancelWaitsForProvisional: a CANCEL asked for before any 18x
// leaves when the first one arrives (RFC 3261 §9.1).
func TestCancelWaitsForProvisional(t *testing.T) {
	callee, l, tx := call(t, 300*time.Millisecond)
	l.Cancel()
	callee.nothing(t, 100*time.Millisecond) // not before a provisional
	for res := range tx.Responses() {
		if res.StatusCode == 180 {
			l.Early(res)
			break
		}
	}
	cr := callee.next(t, sip.CANCEL)
	if cr.CSeq().SeqNo != 1 || cr.CSeq().MethodName != sip.CANCEL {
		t.Fatalf("CANCEL CSeq %v", cr.CSeq())
	}
	for res := range tx.Responses() {
		if res.StatusCode >= 200 {
			if res.StatusCode != 487 {
				t.Fatalf("INVITE after CANCEL: %d", res.StatusCode)
			}
			break
		}
	}
	l.Cancel() // once
	l.Drop(context.Background(), "ringing leg")
	callee.nothing(t, 200*time.Millisecond)
}

// TestUASAwaitsAck: our 2xx on a leg we answer waits for the ACK that
// the owner's ACK handler matches by CSeq.
func TestUASAwaitsAck(t *testing.T) {
	us, peer := endpoint(t), endpoint(t)
	var mu sync.Mutex
	var l *b2bleg.Leg
	ready := make(chan struct{})
	results := make(chan sipdialog.Result, 1)
	us.Server.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		req.To().Params.Add("tag", "uas")
		mu.Lock()
		l = b2bleg.New(b2bleg.Config{Lock: &mu, Out: &owner{}, Name: "a"}, sipdialog.Dialog{CallID: sipdialog.CallID(req), LocalTag: "uas"})
		mu.Unlock()
		close(ready)
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		r, err := l.SendAndAwaitAck(req.CSeq().SeqNo, sip.IsReliable(req.Transport()), func() error { return tx.Respond(res) }, nil)
		if err != nil {
			t.Error(err)
		}
		results <- r
	})
	us.Server.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		<-ready
		if l.Acked(req.CSeq().SeqNo + 1) {
			t.Error("an ACK with another CSeq matched")
		}
		if !l.Acked(req.CSeq().SeqNo) {
			t.Error("the ACK did not match")
		}
	})
	start(t, us)
	start(t, peer)
	cl, _ := peer.Client("udp")
	to := sip.Uri{Scheme: "sip", User: "pbx", Host: "127.0.0.1", Port: int(us.Addr().Port())}
	inv := sip.NewRequest(sip.INVITE, to)
	inv.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: int(peer.Addr().Port())}})
	inv.SetTransport("UDP")
	tx, err := cl.TransactionRequest(context.Background(), inv, sipgo.ClientRequestBuild)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Terminate()
	res, err := sipnet.FinalResponse(context.Background(), tx, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("INVITE: %v %v", res, err)
	}
	ack := sip.NewRequest(sip.ACK, to)
	ack.AppendHeader(sip.HeaderClone(res.From()))
	ack.AppendHeader(sip.HeaderClone(res.To()))
	ack.AppendHeader(sip.HeaderClone(res.CallID()))
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: res.CSeq().SeqNo, MethodName: sip.ACK})
	ack.SetTransport("UDP")
	if err := cl.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-results:
		if r != sipdialog.Acked {
			t.Fatalf("2xx ended %v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SendAndAwaitAck still waiting after the ACK")
	}
}

// TestUASFirstCopyFails: a 2xx that cannot leave is an error at once.
func TestUASFirstCopyFails(t *testing.T) {
	var mu sync.Mutex
	l := b2bleg.New(b2bleg.Config{Lock: &mu, Out: &owner{}, Name: "a"}, sipdialog.Dialog{})
	boom := errors.New("no socket")
	if _, err := l.SendAndAwaitAck(1, false, func() error { return boom }, nil); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
}

func TestRemember(t *testing.T) {
	type call struct {
		id    int
		ended bool
	}
	ended := func(c call) bool { return c.ended }
	var calls []call
	for i := range 4 {
		calls = b2bleg.Remember(calls, call{id: i, ended: i != 1}, 2, ended)
	}
	// 0 (ended) and 2 (ended) went first; 1 is up and stays.
	if len(calls) != 2 || calls[0].id != 1 || calls[1].id != 3 {
		t.Fatalf("calls %v", calls)
	}
	calls = []call{{id: 0}, {id: 1}}
	if calls = b2bleg.Remember(calls, call{id: 2}, 2, ended); len(calls) != 3 {
		t.Fatalf("calls still up were dropped: %v", calls)
	}
}
