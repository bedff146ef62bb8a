package sipcheck

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// The receive path: what every daemon does with a message before sipgo's
// transaction layer sees it (sipnet runs it on each UDP datagram and each
// message framed from a TCP or TLS stream).
//
// sipgo's parser drops what it cannot parse with nothing but a log line,
// so the sender retransmits into silence. A request that fails to parse
// but whose top Via still says where it came from is answered here, from
// its raw header lines, with the status RFC 3261 asks for and a reason
// phrase naming the bad part (§21.4.1: "the reason phrase SHOULD identify
// the syntax problem"). Only what cannot be addressed (no usable Via, a
// response, an ACK) stays unanswered, and the caller logs it.

// Verdict is what the receive path does with one message.
type Verdict struct {
	// Pass is what to hand to sipgo: the message itself, or a copy with a
	// synthetic Via branch (see rfc2543Fix); nil drops it.
	Pass []byte
	// Response refuses the message; nil means nothing is sent.
	Response []byte
	// To is where a datagram response goes (RFC 3261 §18.2.2 as sipgo does
	// it: the source IP, the top Via's port, the source port with rport).
	// A stream response goes back on the connection.
	To netip.AddrPort
	// Code, Reason and Detail say what was refused or dropped and why,
	// for the log line (Code 0 with Pass nil: dropped, nobody to answer).
	Code   int
	Reason string
	Detail string
	CallID string
	// Request is the request Check parsed when Pass is the message itself
	// (nil for a response, an ACK, and a Pass that was rewritten), so a
	// caller that serves it need not parse it again.
	Request *sip.Request
}

// Receiver checks raw messages. It is safe for concurrent use.
type Receiver struct {
	parser *sip.Parser
	// tagPrefix starts the To tag of every refusal this receiver sends
	// (random per receiver), so the ACK for one is known from its raw
	// bytes (RefusalACK).
	tagPrefix string
}

// NewReceiver returns the receive-path checker with its parser (the same
// one NewParser gives sipgo, so both agree on what parses).
func NewReceiver() *Receiver {
	var b [3]byte
	rand.Read(b[:])
	return &Receiver{parser: NewParser(), tagPrefix: "sc" + hex.EncodeToString(b[:]) + "-"}
}

// RefusalTag reports whether a To tag is one this receiver gave a refusal
// (a 400 from Check, a 503 from Shed). A refusal keeps no transaction and
// the ACK for it is never routed, so that ACK can end unparsed.
func (r *Receiver) RefusalTag(tag string) bool { return strings.HasPrefix(tag, r.tagPrefix) }

// ACKToTag reads the To tag of an ACK from its raw header lines, without
// parsing the message (ok false: not an ACK, or no To tag).
func ACKToTag(data []byte) (string, bool) {
	if !bytes.HasPrefix(data, []byte("ACK ")) {
		return "", false
	}
	var tag string
	found := false
	eachHeader(data, func(name, val []byte) bool {
		if !bytes.EqualFold(name, []byte("to")) && !bytes.EqualFold(name, []byte("t")) {
			return true
		}
		// Parameters follow the address: after its '>' if bracketed.
		if i := bytes.LastIndexByte(val, '>'); i >= 0 {
			val = val[i+1:]
		}
		for p := range bytes.SplitSeq(val, []byte(";")) {
			k, v, ok := bytes.Cut(p, []byte("="))
			if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte("tag")) {
				tag, found = string(bytes.TrimSpace(v)), true
				break
			}
		}
		return false
	})
	return tag, found
}

// HasCredentials reports whether a raw request carries an Authorization or
// Proxy-Authorization header: it answers a challenge, so it completes a
// call or a registration already begun.
func HasCredentials(data []byte) bool {
	found := false
	eachHeader(data, func(name, _ []byte) bool {
		found = bytes.EqualFold(name, []byte("proxy-authorization")) || bytes.EqualFold(name, []byte("authorization"))
		return !found
	})
	return found
}

// eachHeader calls f with the name and value of each raw header line (no
// unfolding) until f returns false or the headers end.
func eachHeader(data []byte, f func(name, val []byte) bool) {
	head := data[:headerEnd(data)]
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[i+1:] // the start line
	}
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		if !f(bytes.TrimSpace(name), val) {
			return
		}
	}
}

// NewParser is the parser every daemon reads with: sipgo's, except that
// whitespace around "=" in From, To, Via and Contact parameters is
// dropped. RFC 3261 §25.1 allows it (EQUAL = SWS "=" SWS); sipgo keeps it
// in the name, so "tag = x" is no tag, the transaction key cannot be made
// and a valid request (RFC 4475 §3.1.1.1 wsinv) gets 400.
func NewParser() *sip.Parser {
	m := maps.Clone(sip.DefaultHeadersParser())
	for _, name := range []string{"from", "f", "to", "t", "via", "v", "contact", "m"} {
		parse := m[name]
		m[name] = func(name []byte, text string) (sip.Header, error) {
			h, err := parse(name, text)
			trimParams(h)
			return h, err
		}
	}
	return sip.NewParser(sip.WithHeadersParsers(m))
}

func trimParams(h sip.Header) {
	var ps *sip.HeaderParams
	switch v := h.(type) {
	case *sip.FromHeader:
		ps = &v.Params
	case *sip.ToHeader:
		ps = &v.Params
	case *sip.ViaHeader:
		ps = &v.Params
	case *sip.ContactHeader:
		ps = &v.Params
	default:
		return
	}
	out := (*ps)[:0]
	for _, kv := range *ps {
		// An empty parameter (";;") carries nothing and would print as one.
		if k := strings.TrimSpace(kv.K); k != "" {
			out = append(out, sip.HeaderKV{K: k, V: strings.TrimSpace(kv.V)})
		}
	}
	*ps = out
}

// Parse parses a message with the receive path's parser (for what Check
// passed rewritten).
func (r *Receiver) Parse(data []byte) (sip.Message, error) { return r.parser.ParseSIP(data) }

// Check decides about one complete message that arrived from src (a UDP
// datagram, whose trailing octets beyond Content-Length are ignored, or a
// message framed from a stream).
func (r *Receiver) Check(data []byte, src netip.AddrPort) Verdict {
	if isResponse(data) {
		// Nobody answers a response; sipgo logs what it cannot parse.
		return Verdict{Pass: data}
	}
	m, err := r.parser.ParseSIP(data)
	if err != nil {
		return r.refuse(data, src, err)
	}
	req, ok := m.(*sip.Request)
	if !ok || req.IsAck() {
		return Verdict{Pass: data} // an ACK is never answered (RFC 3261 §17.2.1)
	}
	if req.SipVersion != "SIP/2.0" {
		return r.answer(split(data), src, 505, "Version Not Supported", "protocol version "+req.SipVersion)
	}
	// sipgo takes an unquoted display name with separators in it; only a
	// name that would need quotes is looked at again in the raw lines.
	if (req.From() != nil && needsQuotes(req.From().DisplayName)) || (req.To() != nil && needsQuotes(req.To().DisplayName)) {
		rm := split(data)
		if name, val, ok := badDisplayName(rm); ok {
			return r.answer(rm, src, 400, "Malformed "+name+" Header Field", "display name is neither tokens nor a quoted string: "+val)
		}
	}
	if fixed, ok := rfc2543Fix(data, req); ok {
		return Verdict{Pass: fixed}
	}
	return Verdict{Pass: data, Request: req}
}

// Shed refuses a new request without parsing it, for a daemon that is
// behind (sipnet's queue-delay gate): an out-of-dialog request other than
// ACK and CANCEL gets 503 with Retry-After (RFC 3261 §21.5.4), built from
// its raw header lines. Everything else — responses, ACK, CANCEL and
// in-dialog requests, which belong to calls already admitted — is not
// shed (ok false) and goes the normal way. Refusing costs a fraction of
// serving (no parse, no transaction), so the backlog drains instead of
// growing into retransmissions.
func (r *Receiver) Shed(data []byte, src netip.AddrPort, retryAfter int) (Verdict, bool) {
	if isResponse(data) {
		return Verdict{}, false
	}
	method, _, _ := bytes.Cut(bytes.TrimLeft(data, "\r\n"), []byte(" "))
	switch string(method) {
	case "", sip.ACK.String(), sip.CANCEL.String():
		return Verdict{}, false
	}
	rm := split(data)
	to, ok := rm.first("to")
	if !ok || strings.Contains(strings.ToLower(to), "tag") {
		return Verdict{}, false // in a dialog (or cannot tell): serve it
	}
	v := r.answer(rm, src, 503, "Service Unavailable", "overloaded", "Retry-After: "+strconv.Itoa(max(retryAfter, 1)))
	if v.Response == nil {
		return Verdict{}, false
	}
	return v, true
}

func isResponse(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(data, "\r\n"), []byte("SIP/"))
}

// refuse answers a request sipgo cannot parse, if it can be addressed.
func (r *Receiver) refuse(data []byte, src netip.AddrPort, parseErr error) Verdict {
	rm := split(data)
	method, _, ok := strings.Cut(rm.start, " ")
	if !ok || method == "" || !isToken(method) {
		return Verdict{Detail: "not a SIP request: " + parseErr.Error()}
	}
	if method == "ACK" {
		return Verdict{Detail: "malformed ACK (never answered): " + parseErr.Error(), CallID: rm.value("call-id")}
	}
	code, reason, detail := r.diagnose(rm, parseErr)
	return r.answer(rm, src, code, reason, detail)
}

// answer builds the response from the raw header lines, if the top Via is
// usable.
func (r *Receiver) answer(rm rawMessage, src netip.AddrPort, code int, reason, detail string, extra ...string) Verdict {
	v := Verdict{Code: code, Reason: reason, Detail: detail, CallID: rm.value("call-id")}
	vias := rm.all("via")
	if len(vias) == 0 || !usableVia(vias[0]) {
		v.Detail = "no usable top Via to answer: " + detail
		return v
	}
	v.To = responseAddr(vias[0], src)
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for i, via := range vias {
		if i == 0 {
			via = fillRport(via, src)
		}
		b.WriteString("Via: " + via + "\r\n")
	}
	for _, name := range []string{"from", "to", "call-id", "cseq"} {
		val, ok := rm.first(name)
		if !ok {
			continue
		}
		if name == "to" && !strings.Contains(strings.ToLower(val), "tag") && r.headerParses("To", val) {
			val += ";tag=" + r.localTag(rm)
		}
		b.WriteString(canonical[name] + ": " + val + "\r\n")
	}
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	if detail != "" {
		fmt.Fprintf(&b, "Warning: 399 siplab %q\r\n", sanitize(detail))
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	v.Response = []byte(b.String())
	return v
}

// diagnose names the first bad part of a request sipgo refused to parse.
func (r *Receiver) diagnose(rm rawMessage, parseErr error) (int, string, string) {
	line := rm.start
	parts := strings.Split(line, " ")
	switch {
	case strings.TrimRight(line, " \t") != line:
		return 400, "Whitespace at End of Request-Line", fmt.Sprintf("request line %q", line)
	case strings.Contains(line, "  ") || strings.Contains(line, "\t"):
		return 400, "Multiple Spaces in Request-Line", fmt.Sprintf("request line %q", line)
	case len(parts) > 3:
		return 400, "Whitespace in Request-URI", fmt.Sprintf("request line %q", line)
	case len(parts) < 3:
		return 400, "Malformed Request-Line", fmt.Sprintf("request line %q", line)
	}
	if parts[2] != "SIP/2.0" {
		return 505, "Version Not Supported", "protocol version " + parts[2]
	}
	uri := parts[1]
	if strings.HasPrefix(uri, "<") {
		return 400, "Request-URI in Angle Brackets", "Request-URI " + uri
	}
	scheme, _, ok := strings.Cut(uri, ":")
	if !ok {
		return 400, "Malformed Request-URI", "Request-URI " + uri
	}
	if !slices.Contains(knownSchemes, strings.ToLower(scheme)) {
		return 416, "Unsupported URI Scheme", "Request-URI scheme " + scheme
	}
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		return 400, "Malformed Request-URI", "Request-URI " + uri + ": " + err.Error()
	}
	if code, reason, detail := contentLength(rm, true); code != 0 {
		return code, reason, detail
	}
	if name, val, ok := badDisplayName(rm); ok {
		return 400, "Malformed " + name + " Header Field", "display name is neither tokens nor a quoted string: " + val
	}
	for _, h := range rm.headers {
		name, ok := canonical[h.lname]
		if !ok || h.lname == "content-length" {
			continue
		}
		if !r.headerParses(name, h.value) {
			return 400, "Malformed " + name + " Header Field", fmt.Sprintf("%s: %s", name, h.value)
		}
	}
	if !rm.complete {
		return 400, "Missing Empty Line After Header Fields", parseErr.Error()
	}
	return 400, "Bad Request", parseErr.Error()
}

func needsQuotes(display string) bool {
	for _, word := range strings.Fields(display) {
		if !isToken(word) {
			return true
		}
	}
	return false
}

// badDisplayName finds a From or To whose display name is neither a run
// of tokens nor a quoted string (RFC 3261 §25.1 display-name; RFC 4475
// §3.1.2.15 baddn: "Bell, Alexander <sip:...>").
func badDisplayName(rm rawMessage) (string, string, bool) {
	for _, lname := range []string{"from", "to"} {
		for _, val := range rm.all(lname) {
			lt := strings.IndexByte(val, '<')
			if lt <= 0 {
				continue
			}
			display := strings.TrimSpace(val[:lt])
			if display == "" || strings.HasPrefix(display, `"`) {
				continue
			}
			for _, word := range strings.Fields(display) {
				if !isToken(word) {
					return canonical[lname], val, true
				}
			}
		}
	}
	return "", "", false
}

// headerParses tries one header line on its own with the daemons' parser.
func (r *Receiver) headerParses(name, value string) bool {
	msg := "OPTIONS sip:check@invalid SIP/2.0\r\n" + name + ": " + value + "\r\n\r\n"
	_, err := r.parser.ParseSIP([]byte(msg))
	return err == nil
}

// contentLength checks the Content-Length headers of a complete message;
// datagram says the body is all there is (UDP), so a longer claim is a lie
// rather than bytes still to come.
func contentLength(rm rawMessage, datagram bool) (int, string, string) {
	n, present, err := rm.contentLength()
	if err != nil {
		return 400, err.reason, err.detail
	}
	if present && datagram && n > len(rm.body) {
		return 400, "Content-Length Larger Than Message", fmt.Sprintf("Content-Length %d, body %d bytes", n, len(rm.body))
	}
	return 0, "", ""
}

type clError struct{ reason, detail string }

// contentLength is the declared body length, whether there is one, or why
// it cannot be trusted.
func (rm rawMessage) contentLength() (int, bool, *clError) {
	vals := rm.all("content-length")
	if len(vals) == 0 {
		return 0, false, nil
	}
	for _, v := range vals[1:] {
		if v != vals[0] {
			return 0, true, &clError{"Multiple Content-Length Header Fields", "Content-Length: " + strings.Join(vals, ", ")}
		}
	}
	n, err := strconv.ParseUint(vals[0], 10, 31)
	if err != nil {
		return 0, true, &clError{"Malformed Content-Length", "Content-Length: " + vals[0]}
	}
	return int(n), true, nil
}

// rfc2543Fix gives an RFC 2543 request (RFC 4475 §3.4.1 inv2543, whose
// From carries no tag) what RFC 3261 requires of it, derived from itself,
// so it is processed like any other (RFC 3261 asks elements to accept
// RFC 2543 peers):
//   - without an RFC 3261 branch and a From tag sipgo cannot make a
//     transaction key; the branch added is a hash of what RFC 3261
//     §17.2.3 matches such requests on (Request-URI, From, Call-ID, CSeq
//     number, top Via), so a retransmission, its ACK and its CANCEL get
//     the same one;
//   - an INVITE without Contact gets its From URI as Contact: an RFC 2543
//     UAS sends the requests of the dialog there.
func rfc2543Fix(data []byte, req *sip.Request) ([]byte, bool) {
	via, from, cid, cseq := req.Via(), req.From(), req.CallID(), req.CSeq()
	if via == nil || from == nil || cid == nil || cseq == nil || from.Params.Has("tag") {
		return nil, false
	}
	out, changed := data, false
	if _, err := sip.ServerTxKeyMake(req); err != nil {
		if b, ok := via.Params.Get("branch"); ok && b != "" {
			return nil, false
		}
		h := sha256.Sum256([]byte(strings.Join([]string{req.Recipient.String(), from.Value(), cid.Value(),
			strconv.FormatUint(uint64(cseq.SeqNo), 10), via.Value()}, "\x00")))
		branch := sip.RFC3261BranchMagicCookie + "-2543-" + hex.EncodeToString(h[:8])
		fixed, ok := insertTopViaParam(out, ";branch="+branch)
		if !ok {
			return nil, false
		}
		out, changed = fixed, true
	}
	if req.IsInvite() && req.Contact() == nil {
		if nl := bytes.IndexByte(out, '\n'); nl > 0 {
			line := "Contact: <" + from.Address.String() + ">\r\n"
			out = slices.Concat(out[:nl+1:nl+1], []byte(line), out[nl+1:])
			changed = true
		}
	}
	return out, changed
}

// insertTopViaParam appends param to the first value of the first Via
// header, when that value sits on one line.
func insertTopViaParam(data []byte, param string) ([]byte, bool) {
	end := headerEnd(data)
	pos := 0
	for pos < end {
		nl := bytes.IndexByte(data[pos:end], '\n')
		if nl < 0 {
			return nil, false
		}
		line := data[pos : pos+nl]
		name, _, ok := bytes.Cut(line, []byte(":"))
		if ok && pos > 0 && line[0] != ' ' && line[0] != '\t' {
			if l := strings.ToLower(strings.TrimSpace(string(name))); l == "via" || l == "v" {
				valEnd := pos + len(bytes.TrimRight(line, "\r \t"))
				if c := bytes.IndexByte(line, ','); c >= 0 {
					valEnd = pos + c
				} else if next := pos + nl + 1; next < len(data) && (data[next] == ' ' || data[next] == '\t') {
					return nil, false // folded: leave it to sipgo
				}
				out := make([]byte, 0, len(data)+len(param))
				out = append(out, data[:valEnd]...)
				out = append(out, param...)
				return append(out, data[valEnd:]...), true
			}
		}
		pos += nl + 1
	}
	return nil, false
}

// usableVia: the top Via names a protocol and a sent-by host, so there is
// a transaction to answer (the response itself goes back to the source).
func usableVia(v string) bool {
	v, _, _ = strings.Cut(v, ",")
	proto, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return false
	}
	p := strings.Fields(strings.ReplaceAll(proto, "/", " / "))
	if len(p) < 5 || !strings.EqualFold(p[0], "SIP") {
		return false
	}
	host := strings.TrimSpace(rest)
	host, _, _ = strings.Cut(host, ";")
	return strings.TrimSpace(host) != ""
}

var sentBy = regexp.MustCompile(`(?i)^SIP\s*/\s*[0-9.]+\s*/\s*[a-z]+\s+([^\s;,]+)`)

// responseAddr is where a datagram response to a request with this top
// Via goes.
func responseAddr(via string, src netip.AddrPort) netip.AddrPort {
	port := uint16(5060)
	if m := sentBy.FindStringSubmatch(strings.TrimSpace(via)); m != nil {
		if _, p, err := net.SplitHostPort(m[1]); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil && n > 0 {
				port = uint16(n)
			}
		}
	}
	first, _, _ := strings.Cut(via, ",")
	for _, p := range strings.Split(first, ";")[1:] {
		if strings.EqualFold(strings.TrimSpace(p), "rport") {
			port = src.Port()
		}
	}
	return netip.AddrPortFrom(src.Addr(), port)
}

// fillRport completes a bare rport in the top Via (RFC 3581 §4).
func fillRport(via string, src netip.AddrPort) string {
	if !src.IsValid() {
		return via
	}
	first, rest, comma := strings.Cut(via, ",")
	params := strings.Split(first, ";")
	for i, p := range params {
		if strings.EqualFold(strings.TrimSpace(p), "rport") {
			params[i] = fmt.Sprintf("rport=%d;received=%s", src.Port(), src.Addr())
		}
	}
	first = strings.Join(params, ";")
	if comma {
		return first + "," + rest
	}
	return first
}

// localTag is the To tag of a raw refusal: derived from the request, so a
// retransmission gets the same response.
func (r *Receiver) localTag(rm rawMessage) string {
	h := sha256.Sum256([]byte(rm.value("call-id") + "\x00" + rm.value("cseq") + "\x00" + rm.value("from")))
	return r.tagPrefix + hex.EncodeToString(h[:6])
}

func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return '\''
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// canonical names the headers sipgo parses (and the ones a response
// copies), by lower-case long name.
var canonical = map[string]string{
	"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq",
	"contact": "Contact", "max-forwards": "Max-Forwards", "content-length": "Content-Length",
	"content-type": "Content-Type", "route": "Route", "record-route": "Record-Route",
	"refer-to": "Refer-To", "referred-by": "Referred-By",
}

// compact are the RFC 3261 §7.3.3 compact forms.
var compact = map[string]string{
	"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
	"c": "content-type", "s": "subject", "k": "supported", "e": "content-encoding",
}

type rawHeader struct {
	lname string // lower-case long name
	value string // unfolded, trimmed
}

// rawMessage is a message split into lines without interpreting values.
type rawMessage struct {
	start    string
	headers  []rawHeader
	body     []byte
	complete bool // an empty line ends the headers
}

// headerEnd is the offset of the body (after the empty line), or len(data).
func headerEnd(data []byte) int {
	if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	if i := bytes.Index(data, []byte("\n\n")); i >= 0 {
		return i + 2
	}
	return len(data)
}

func split(data []byte) rawMessage {
	end := headerEnd(data)
	var rm rawMessage
	rm.body = data[end:]
	rm.complete = bytes.HasSuffix(data[:end], []byte("\n\n")) || bytes.HasSuffix(data[:end], []byte("\r\n\r\n"))
	lines := strings.Split(string(data[:end]), "\n")
	for i, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if i == 0 {
			rm.start = l
			continue
		}
		if l == "" {
			break
		}
		if (l[0] == ' ' || l[0] == '\t') && len(rm.headers) > 0 {
			h := &rm.headers[len(rm.headers)-1]
			h.value = strings.TrimSpace(h.value + " " + strings.TrimSpace(l))
			continue
		}
		name, val, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		ln := strings.ToLower(strings.TrimSpace(name))
		if long, ok := compact[ln]; ok {
			ln = long
		}
		rm.headers = append(rm.headers, rawHeader{lname: ln, value: strings.TrimSpace(val)})
	}
	return rm
}

func (rm rawMessage) first(lname string) (string, bool) {
	for _, h := range rm.headers {
		if h.lname == lname {
			return h.value, true
		}
	}
	return "", false
}

func (rm rawMessage) value(lname string) string {
	v, _ := rm.first(lname)
	return v
}

func (rm rawMessage) all(lname string) []string {
	var out []string
	for _, h := range rm.headers {
		if h.lname == lname {
			out = append(out, h.value)
		}
	}
	return out
}

// Framing is how a stream message's length was read from its headers.
type Framing struct {
	// Length is the whole message (headers and body) once HeaderEnd is
	// known; 0 while the headers are incomplete.
	Length int
	// Refusal, when set, means the stream cannot be framed any further: the
	// caller sends it (if a request could be addressed) and closes.
	Refusal *Verdict
}

// Frame finds the first message in a stream buffer (RFC 3261 §18.3:
// Content-Length is mandatory on streams). Leading CRLFs (RFC 5626
// keep-alives) are the caller's to skip.
func (r *Receiver) Frame(buf []byte, src netip.AddrPort) Framing {
	i := bytes.Index(buf, []byte("\r\n\r\n"))
	if i < 0 {
		return Framing{}
	}
	head := buf[:i+4]
	rm := split(head)
	n, present, err := rm.contentLength()
	switch {
	case err != nil:
		v := r.streamRefusal(rm, head, src, 400, err.reason, err.detail)
		return Framing{Refusal: &v}
	case !present:
		v := r.streamRefusal(rm, head, src, 400, "Missing Content-Length", "Content-Length is mandatory over a stream (RFC 3261 §18.3)")
		return Framing{Refusal: &v}
	}
	return Framing{Length: len(head) + n}
}

func (r *Receiver) streamRefusal(rm rawMessage, head []byte, src netip.AddrPort, code int, reason, detail string) Verdict {
	if isResponse(head) {
		return Verdict{Detail: "response on a stream: " + detail}
	}
	if method, _, _ := strings.Cut(rm.start, " "); method == "ACK" || !isToken(method) || method == "" {
		return Verdict{Detail: detail, CallID: rm.value("call-id")}
	}
	return r.answer(rm, src, code, reason, detail)
}
