package sipdialog

import (
	"slices"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func uri(t *testing.T, s string) sip.Uri {
	t.Helper()
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return u
}

func params(k, v string) sip.HeaderParams {
	p := sip.NewParams()
	p.Add(k, v)
	return p
}

func uriStrings(us []sip.Uri) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.String())
	}
	return out
}

// withRecordRoute is a message carrying Record-Route headers in this order.
func withRecordRoute(t *testing.T, rr ...string) *sip.Response {
	t.Helper()
	res := sip.NewResponse(sip.StatusOK, "OK")
	for _, r := range rr {
		res.AppendHeader(&sip.RecordRouteHeader{Address: uri(t, r)})
	}
	return res
}

func TestRouteSet(t *testing.T) {
	p1, p2, p3 := "sip:p1.example;lr", "sip:p2.example;lr", "sip:10.0.0.3:5070;lr;transport=tcp"
	cases := []struct {
		name string
		rr   []string
		uas  []string // §12.1.1: as the request carried them
		uac  []string // §12.1.2: reversed
	}{
		{name: "none", rr: nil, uas: nil, uac: nil},
		{name: "one", rr: []string{p1}, uas: []string{p1}, uac: []string{p1}},
		{name: "two", rr: []string{p1, p2}, uas: []string{p1, p2}, uac: []string{p2, p1}},
		{name: "three", rr: []string{p1, p2, p3}, uas: []string{p1, p2, p3}, uac: []string{p3, p2, p1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := withRecordRoute(t, tc.rr...)
			if got := uriStrings(RouteSetAsUAS(m)); !slices.Equal(got, tc.uas) {
				t.Errorf("as UAS: %q, want %q", got, tc.uas)
			}
			if got := uriStrings(RouteSetAsUAC(m)); !slices.Equal(got, tc.uac) {
				t.Errorf("as UAC: %q, want %q", got, tc.uac)
			}
		})
	}
}

// The route set is a copy: changing it must not reach the message.
func TestRouteSetIsACopy(t *testing.T) {
	m := withRecordRoute(t, "sip:p1.example;lr")
	rs := RouteSetAsUAS(m)
	rs[0].UriParams.Remove("lr")
	if rr := m.GetHeader("Record-Route").Value(); !strings.Contains(rr, ";lr") {
		t.Fatalf("Record-Route changed through the route set: %s", rr)
	}
}

func TestHostPort(t *testing.T) {
	cases := []struct{ in, want string }{
		{"sip:bob@192.0.2.7", "192.0.2.7:5060"},
		{"sip:bob@192.0.2.7:5080", "192.0.2.7:5080"},
		{"sip:bob@[2001:db8::7]:5062", "[2001:db8::7]:5062"},
		{"sip:bob@[2001:db8::7]", "[2001:db8::7]:5060"},
		{"sip:bob@192.0.2.7;maddr=239.1.1.1", "192.0.2.7:5060"},
	}
	for _, tc := range cases {
		if got := HostPort(uri(t, tc.in)); got != tc.want {
			t.Errorf("HostPort(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func routeValues(req *sip.Request) []string {
	var out []string
	for _, h := range req.GetHeaders("Route") {
		out = append(out, h.Value())
	}
	return out
}

func TestRequestRouting(t *testing.T) {
	target := "sip:bob@192.0.2.20:5062;transport=udp"
	cases := []struct {
		name   string
		routes []string
		ruri   string
		route  []string
		dest   string
	}{
		{
			name: "no route set: straight to the remote target",
			ruri: target, dest: "192.0.2.20:5062",
		},
		{
			name:   "loose first route: Request-URI stays the target",
			routes: []string{"sip:10.0.0.1;lr", "sip:10.0.0.2:5070;lr"},
			ruri:   target,
			route:  []string{"<sip:10.0.0.1;lr>", "<sip:10.0.0.2:5070;lr>"},
			dest:   "10.0.0.1:5060",
		},
		{
			name:   "strict first route: it becomes the Request-URI, target last",
			routes: []string{"sip:10.0.0.1:5080;x=y?h=v", "sip:10.0.0.2;lr"},
			ruri:   "sip:10.0.0.1:5080;x=y",
			route:  []string{"<sip:10.0.0.2;lr>", "<" + target + ">"},
			dest:   "10.0.0.1:5080",
		},
		{
			name:   "strict single route",
			routes: []string{"sip:10.0.0.1"},
			ruri:   "sip:10.0.0.1",
			route:  []string{"<" + target + ">"},
			dest:   "10.0.0.1:5060",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &Dialog{CallID: "c1", LocalTag: "lt", RemoteTag: "rt",
				LocalURI: uri(t, "sip:alice@192.0.2.10"), RemoteURI: uri(t, "sip:bob@example.org"),
				LocalSeq: 1, RemoteTarget: uri(t, target)}
			for _, r := range tc.routes {
				d.RouteSet = append(d.RouteSet, uri(t, r))
			}
			before := uriStrings(d.RouteSet)
			req := d.Request(sip.BYE, 0)
			if got := req.Recipient.String(); got != tc.ruri {
				t.Errorf("Request-URI %s, want %s", got, tc.ruri)
			}
			if got := routeValues(req); !slices.Equal(got, tc.route) {
				t.Errorf("Route %q, want %q", got, tc.route)
			}
			if got := req.Destination(); got != tc.dest {
				t.Errorf("destination %s, want %s", got, tc.dest)
			}
			if got := HostPort(d.NextHop()); got != tc.dest {
				t.Errorf("NextHop %s, want %s", got, tc.dest)
			}
			// Building a request leaves the dialog's route set alone (the
			// strict case edits a copy of the first route).
			if after := uriStrings(d.RouteSet); !slices.Equal(after, before) {
				t.Errorf("route set changed: %q -> %q", before, after)
			}
		})
	}
}

func TestRequestHeadersAndCSeq(t *testing.T) {
	d := &Dialog{CallID: "call-1", LocalTag: "ours",
		LocalURI: uri(t, "sip:alice@192.0.2.10"), RemoteURI: uri(t, "sip:bob@example.org"),
		LocalSeq: 1, RemoteTarget: uri(t, "sip:bob@192.0.2.20")}
	steps := []struct {
		method   sip.RequestMethod
		cseq     uint32
		want     uint32
		localSeq uint32
	}{
		{sip.ACK, 1, 1, 1},    // ACK reuses the INVITE's number
		{sip.INFO, 0, 2, 2},   // the next request takes the next number
		{sip.INVITE, 0, 3, 3}, // so does a re-INVITE
		{sip.CANCEL, 3, 3, 3}, // CANCEL reuses the re-INVITE's
		{sip.BYE, 0, 4, 4},    // and on
		{sip.NOTIFY, 9, 9, 4}, // an explicit number does not move the counter
		{sip.UPDATE, 0, 5, 5},
	}
	for _, st := range steps {
		req := d.Request(st.method, st.cseq)
		cs := req.CSeq()
		if cs.SeqNo != st.want || cs.MethodName != st.method {
			t.Errorf("%s: CSeq %d %s, want %d %s", st.method, cs.SeqNo, cs.MethodName, st.want, st.method)
		}
		if d.LocalSeq != st.localSeq {
			t.Errorf("%s: LocalSeq %d, want %d", st.method, d.LocalSeq, st.localSeq)
		}
	}

	req := d.Request(sip.BYE, 0)
	if tag := FromTag(req); tag != "ours" {
		t.Errorf("From tag %q", tag)
	}
	if tag, ok := req.To().Params.Get("tag"); ok {
		t.Errorf("To carries tag %q before the remote tag is known", tag)
	}
	if got := CallID(req); got != "call-1" {
		t.Errorf("Call-ID %q", got)
	}
	if mf := req.MaxForwards(); mf == nil || mf.Val() != 70 {
		t.Errorf("Max-Forwards %v", mf)
	}
	if req.Via() != nil {
		t.Error("Via set: the caller's job")
	}
	d.RemoteTag = "theirs"
	req = d.Request(sip.BYE, 0)
	if tag := ToTag(req); tag != "theirs" {
		t.Errorf("To tag %q", tag)
	}
	if req.From().Address.String() != "sip:alice@192.0.2.10" || req.To().Address.String() != "sip:bob@example.org" {
		t.Errorf("From %s To %s", req.From().Address.String(), req.To().Address.String())
	}
	if k := d.Key(); k != (Key{"call-1", "ours"}) {
		t.Errorf("Key %+v", k)
	}
}

// A target refresh (§12.2): requests built after it go to the new Contact,
// and the Request-URI of one built before keeps the old one.
func TestTargetRefresh(t *testing.T) {
	d := &Dialog{CallID: "c", LocalTag: "l", RemoteTag: "r",
		RemoteTarget: uri(t, "sip:bob@192.0.2.20;ob")}
	old := d.Request(sip.INFO, 0)
	d.RemoteTarget = uri(t, "sip:bob@198.51.100.9:6000")
	req := d.Request(sip.INFO, 0)
	if req.Recipient.String() != "sip:bob@198.51.100.9:6000" || req.Destination() != "198.51.100.9:6000" {
		t.Errorf("after refresh: %s via %s", req.Recipient.String(), req.Destination())
	}
	old.Recipient.UriParams.Add("x", "1")
	if strings.Contains(d.RemoteTarget.String(), "x=1") || old.Recipient.Host != "192.0.2.20" {
		t.Errorf("request and dialog share state: %s / %s", old.Recipient.String(), d.RemoteTarget.String())
	}
}

func TestAcceptSeq(t *testing.T) {
	cases := []struct {
		name string
		d    Dialog
		seqs []uint32
		want []bool
	}{
		{"UAC learns the first", Dialog{}, []uint32{7, 8, 8, 3, 20}, []bool{true, true, false, false, true}},
		{"UAS knows the INVITE's", Dialog{RemoteSeq: 5, RemoteSeqSet: true}, []uint32{5, 4, 6, 6}, []bool{false, false, true, false}},
		{"zero is a number once set", Dialog{}, []uint32{0, 0, 1}, []bool{true, false, true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d
			for i, s := range tc.seqs {
				if got := d.AcceptSeq(s); got != tc.want[i] {
					t.Errorf("seq %d (#%d): %v, want %v", s, i, got, tc.want[i])
				}
			}
		})
	}
	d := Dialog{}
	d.AcceptSeq(10)
	d.AcceptSeq(4) // refused: not remembered
	if d.RemoteSeq != 10 {
		t.Errorf("RemoteSeq %d after a refused lower one", d.RemoteSeq)
	}
}

func TestCancel(t *testing.T) {
	inv := sip.NewRequest(sip.INVITE, uri(t, "sip:bob@192.0.2.20:5062"))
	inv.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "TCP",
		Host: "192.0.2.10", Port: 5060, Params: params("branch", "z9hG4bKabc")})
	inv.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP",
		Host: "10.9.9.9", Params: params("branch", "z9hG4bKdeep")})
	inv.AppendHeader(&sip.RouteHeader{Address: uri(t, "sip:10.0.0.1;lr")})
	mf := sip.MaxForwardsHeader(69)
	inv.AppendHeader(&mf)
	inv.AppendHeader(&sip.FromHeader{Address: uri(t, "sip:alice@example.org"), Params: params("tag", "ft")})
	inv.AppendHeader(&sip.ToHeader{Address: uri(t, "sip:bob@example.org"), Params: sip.NewParams()})
	cid := sip.CallIDHeader("inv-1")
	inv.AppendHeader(&cid)
	inv.AppendHeader(&sip.CSeqHeader{SeqNo: 42, MethodName: sip.INVITE})
	inv.SetTransport("TCP")
	inv.SetDestination("10.0.0.1:5060")

	cr := Cancel(inv)
	want := "CANCEL sip:bob@192.0.2.20:5062 SIP/2.0\r\n" +
		"Via: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bKabc\r\n" +
		"Route: <sip:10.0.0.1;lr>\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:alice@example.org>;tag=ft\r\n" +
		"To: <sip:bob@example.org>\r\n" +
		"Call-ID: inv-1\r\n" +
		"CSeq: 42 CANCEL\r\n"
	if got := cr.String(); !strings.HasPrefix(got, want) {
		t.Errorf("CANCEL:\n%s\nwant:\n%s", got, want)
	}
	if cr.Transport() != "TCP" || cr.Destination() != "10.0.0.1:5060" {
		t.Errorf("CANCEL over %s to %s", cr.Transport(), cr.Destination())
	}
	// The CANCEL's headers are copies.
	cr.From().Params.Add("x", "y")
	if strings.Contains(inv.From().Value(), "x=y") {
		t.Error("CANCEL shares From with the INVITE")
	}
}

func TestKeyOf(t *testing.T) {
	req := sip.NewRequest(sip.BYE, uri(t, "sip:pbx@192.0.2.1"))
	if k := KeyOf(req); k != (Key{}) {
		t.Errorf("no headers: %+v", k)
	}
	req.AppendHeader(&sip.FromHeader{Address: uri(t, "sip:a@x"), Params: params("tag", "theirs")})
	req.AppendHeader(&sip.ToHeader{Address: uri(t, "sip:b@x"), Params: params("tag", "ours")})
	cid := sip.CallIDHeader("k-1")
	req.AppendHeader(&cid)
	if k := KeyOf(req); k != (Key{"k-1", "ours"}) {
		t.Errorf("KeyOf %+v", k)
	}
	if FromTag(req) != "theirs" {
		t.Errorf("FromTag %q", FromTag(req))
	}
}
