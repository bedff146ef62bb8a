// Package sipcheck decides whether a parsed SIP request is fit to process,
// per RFC 3261 §8.2 (UAS) and §16.3 (proxy), and which response refuses it.
//
// Two stages. On the receive path (raw.go, installed by sipnet for every
// daemon) a request sipgo's parser cannot read is answered from its raw
// header lines when its top Via is usable, instead of being dropped. After
// parsing, Request catches what parses but must still be refused (RFC 4475
// §3.1.2, §3.3): missing or repeated mandatory headers, CSeq/method
// mismatch, unknown URI schemes, unsupported extensions, Max-Forwards
// exhausted, bodies nobody understands. Every daemon calls it first, so
// they all refuse the same way. Reason phrases name the problem (RFC 3261
// §21.4.1); the Warning header carries the detail.
package sipcheck

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Role selects the rule set: a proxy forwards what it does not understand,
// a UAS must understand what it accepts.
type Role int

const (
	UAS Role = iota
	Proxy
)

// Options tunes the checks for one element.
type Options struct {
	Role Role
	// Supported lists option tags this element implements (Require for a
	// UAS, Proxy-Require for a proxy); anything else gets 420.
	Supported []string
	// Bodies lists the Content-Types a UAS accepts in requests; empty means
	// application/sdp. Requests without a body always pass. Ignored by proxies.
	Bodies []string
}

// Problem is why a request is refused and with what.
type Problem struct {
	Code   int
	Reason string
	// Detail is for logs and the Warning header; it never carries secrets.
	Detail string
	// Unsupported lists the option tags behind a 420.
	Unsupported []string
	// Accept lists the content types behind a 415.
	Accept []string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("sipcheck: %d %s: %s", p.Code, p.Reason, p.Detail)
}

// singleValued headers may appear once (RFC 3261 §7.3, §20).
var singleValued = []string{"From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type", "Expires"}

var knownSchemes = []string{"sip", "sips", "tel"}

// Request returns nil when req may be processed, else the refusal.
func Request(req *sip.Request, opts Options) *Problem {
	if req.SipVersion != "SIP/2.0" {
		return &Problem{Code: 505, Reason: "Version Not Supported", Detail: "protocol version " + req.SipVersion}
	}
	for _, name := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		if req.GetHeader(name) == nil {
			return bad("Missing "+name+" Header Field", "missing "+name+" header")
		}
	}
	for _, name := range singleValued {
		if n := len(req.GetHeaders(name)); n > 1 {
			return bad("Multiple "+name+" Header Fields", fmt.Sprintf("%d %s headers where one is allowed", n, name))
		}
	}
	// sipgo upper-cases the request line's method but not CSeq's.
	if cseq := req.CSeq(); !strings.EqualFold(string(cseq.MethodName), string(req.Method)) {
		return bad("CSeq Method Mismatch", fmt.Sprintf("CSeq method %s does not match request method %s", cseq.MethodName, req.Method))
	}
	via := req.Via()
	// No branch at all is an RFC 2543 peer, which sipgo matches the old way;
	// a bare magic cookie claims RFC 3261 and carries no identifier
	// (RFC 4475 §3.2.1).
	if branch, _ := via.Params.Get("branch"); branch == sip.RFC3261BranchMagicCookie {
		return bad("Missing Transaction Identifier in Via Branch", "Via branch is the bare magic cookie: no transaction identifier")
	}
	if !slices.Contains(knownSchemes, strings.ToLower(req.Recipient.Scheme)) {
		return &Problem{Code: 416, Reason: "Unsupported URI Scheme", Detail: "Request-URI scheme " + req.Recipient.Scheme}
	}
	if req.Recipient.Headers.Length() > 0 {
		return bad("Escaped Headers in Request-URI", "Request-URI carries escaped headers")
	}
	for _, h := range []struct {
		name string
		uri  sip.Uri
	}{{"From", req.From().Address}, {"To", req.To().Address}} {
		if !slices.Contains(knownSchemes, strings.ToLower(h.uri.Scheme)) {
			return &Problem{Code: 416, Reason: "Unsupported URI Scheme", Detail: h.name + " URI scheme " + h.uri.Scheme}
		}
	}
	if p := checkContacts(req); p != nil {
		return p
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		return &Problem{Code: 483, Reason: "Too Many Hops", Detail: "Max-Forwards is 0"}
	}
	if d := req.GetHeader("Date"); d != nil {
		if _, err := time.Parse(time.RFC1123, d.Value()); err != nil || !strings.HasSuffix(d.Value(), "GMT") {
			return bad("Invalid Date Header Field", "Date is not an RFC 1123 GMT date: "+d.Value())
		}
	}
	requireHeader := "Require"
	if opts.Role == Proxy {
		requireHeader = "Proxy-Require"
	}
	if tags := unsupported(req, requireHeader, opts.Supported); len(tags) > 0 {
		return &Problem{Code: 420, Reason: "Bad Extension", Detail: requireHeader + ": " + strings.Join(tags, ", "), Unsupported: tags}
	}
	if opts.Role == UAS {
		return checkBody(req, opts)
	}
	return nil
}

// bad is a 400 whose reason phrase names the problem (RFC 3261 §21.4.1).
func bad(reason, detail string) *Problem {
	return &Problem{Code: 400, Reason: reason, Detail: detail}
}

// checkContacts refuses Contact URIs with embedded headers: a REGISTER must
// not plant a Route through a binding (RFC 4475 §3.1.2.13, §3.3.14).
func checkContacts(req *sip.Request) *Problem {
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		if c.Address.Headers.Length() > 0 {
			return bad("Escaped Headers in Contact URI", "Contact URI carries escaped headers")
		}
		if !c.Address.Wildcard && !slices.Contains(knownSchemes, strings.ToLower(c.Address.Scheme)) {
			return &Problem{Code: 416, Reason: "Unsupported URI Scheme", Detail: "Contact URI scheme " + c.Address.Scheme}
		}
	}
	return nil
}

func unsupported(req *sip.Request, header string, supported []string) []string {
	var tags []string
	for _, h := range req.GetHeaders(header) {
		for _, tag := range strings.Split(h.Value(), ",") {
			tag = strings.TrimSpace(tag)
			if tag != "" && !slices.ContainsFunc(supported, func(s string) bool { return strings.EqualFold(s, tag) }) {
				tags = append(tags, tag)
			}
		}
	}
	return tags
}

func checkBody(req *sip.Request, opts Options) *Problem {
	accepted := opts.Bodies
	if len(accepted) == 0 {
		accepted = []string{"application/sdp"}
	}
	if len(req.Body()) > 0 {
		ct := req.ContentType()
		if ct == nil {
			return bad("Missing Content-Type Header Field", "body without Content-Type")
		}
		mt := strings.ToLower(strings.TrimSpace(strings.SplitN(ct.Value(), ";", 2)[0]))
		if !slices.Contains(accepted, mt) {
			return &Problem{Code: 415, Reason: "Unsupported Media Type", Detail: "Content-Type " + mt, Accept: accepted}
		}
	}
	// A UAS answering an offer replies with SDP; if the peer says it cannot
	// read SDP there is nothing to answer with (RFC 4475 §3.3.15).
	if req.IsInvite() {
		if accept := req.GetHeader("Accept"); accept != nil && !acceptsSDP(accept.Value()) {
			return &Problem{Code: 406, Reason: "Not Acceptable", Detail: "Accept excludes application/sdp: " + accept.Value()}
		}
	}
	return nil
}

func acceptsSDP(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, mt := range strings.Split(accept, ",") {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(mt, ";", 2)[0]))
		if mt == "application/sdp" || mt == "application/*" || mt == "*/*" {
			return true
		}
	}
	return false
}

// Respond builds the refusal for req. ACK is never answered (RFC 3261
// §17.1.1.3); callers must not respond to it, and Respond returns nil.
func Respond(req *sip.Request, p *Problem) *sip.Response {
	if req.IsAck() {
		return nil
	}
	res := sip.NewResponseFromRequest(req, p.Code, p.Reason, nil)
	// sipgo copies the request's version into the status line; a 505 to
	// SIP/7.0 must still speak SIP/2.0.
	res.SipVersion = "SIP/2.0"
	if len(p.Unsupported) > 0 {
		res.AppendHeader(sip.NewHeader("Unsupported", strings.Join(p.Unsupported, ", ")))
	}
	if len(p.Accept) > 0 {
		res.AppendHeader(sip.NewHeader("Accept", strings.Join(p.Accept, ", ")))
	}
	if p.Detail != "" {
		res.AppendHeader(sip.NewHeader("Warning", fmt.Sprintf("399 siplab %q", strings.ReplaceAll(p.Detail, `"`, "'"))))
	}
	return res
}
