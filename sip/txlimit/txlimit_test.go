package txlimit

import (
	"io"
	"log/slog"
	"strconv"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// serverTx is a real sipgo server transaction (no connection: nothing is
// sent in these tests).
func serverTx(t *testing.T, i int) *sip.ServerTx {
	t.Helper()
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "siplab.test"})
	req.AppendHeader(sip.NewHeader("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-"+strconv.Itoa(i)))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.OPTIONS})
	req.SetTransport("UDP")
	tx := sip.NewServerTx("key"+strconv.Itoa(i), req, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := tx.Init(); err != nil {
		t.Fatal(err)
	}
	return tx
}

func TestLimiter(t *testing.T) {
	l := New(2)
	a, b, c := serverTx(t, 1), serverTx(t, 2), serverTx(t, 3)
	if !l.Acquire(a) || !l.Acquire(b) {
		t.Fatal("refused under the cap")
	}
	if l.Acquire(c) {
		t.Fatal("third transaction admitted with a cap of 2")
	}
	if l.Held() != 2 || l.Refused() != 1 {
		t.Fatalf("held %d refused %d", l.Held(), l.Refused())
	}
	// Terminating a transaction (what sipgo does after Timer J, or the
	// daemon at once for a stateless answer) frees its place.
	a.Terminate()
	if l.Held() != 1 || !l.Acquire(c) {
		t.Fatalf("after a termination: held %d", l.Held())
	}
	// An already terminated transaction is not counted.
	a2 := serverTx(t, 4)
	a2.Terminate()
	l.SetMax(0)
	if !l.Acquire(a2) || l.Held() != 2 {
		t.Fatalf("terminated transaction counted: held %d", l.Held())
	}
	if l.Max() != 0 || !l.Acquire(nil) {
		t.Fatal("no cap / nil transaction")
	}
	b.Terminate()
	c.Terminate()
	if l.Held() != 0 {
		t.Fatalf("held %d after all terminated", l.Held())
	}
}

// Take and Release count requests served without a transaction (sipnet's
// direct path) under the same cap as the transactions.
func TestLimiterTake(t *testing.T) {
	l := New(2)
	a := serverTx(t, 1)
	if !l.Acquire(a) || !l.Take() {
		t.Fatal("refused under the cap")
	}
	if l.Take() || l.Refused() != 1 || l.Held() != 2 {
		t.Fatalf("over the cap: held %d refused %d", l.Held(), l.Refused())
	}
	l.Release()
	if l.Held() != 1 || !l.Take() {
		t.Fatalf("after a release: held %d", l.Held())
	}
	a.Terminate()
	l.Release()
	if l.Held() != 0 {
		t.Fatalf("held %d after all ended", l.Held())
	}
}
