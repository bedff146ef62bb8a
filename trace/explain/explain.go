// Package explain says what every line of a captured SIP message and of its
// SDP body does, in plain words (the training page's modules 02, 05 and
// 06), and what is wrong with the line where it was captured (module 08's
// lies: a private address that reached the internet side).
package explain

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/siplab/siplab/trace/siptext"
)

// ErrNotSIP is returned for a payload without a SIP start line.
var ErrNotSIP = errors.New("explain: not a SIP message")

// Line is one line of the message with its explanation.
type Line struct {
	Text    string
	Explain string
	// Problems say what is wrong with this line here ("private address in
	// Contact, seen on the internet side").
	Problems []string
	// SDP is true for a line of the body.
	SDP bool
}

// Context says where the message was captured; it decides what is a
// problem (a private Contact on the LAN side is normal).
type Context struct {
	// Public is true when the copy was seen on the internet side of a
	// router (capture point "<router>/wan").
	Public bool
}

// Message explains every line of a SIP message as captured.
func Message(payload []byte, ctx Context) ([]Line, error) {
	text := string(payload)
	head, body, _ := strings.Cut(text, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	if len(lines) == 0 || !(strings.HasPrefix(lines[0], "SIP/2.0 ") || strings.HasSuffix(lines[0], " SIP/2.0")) {
		return nil, ErrNotSIP
	}
	out := []Line{startLine(lines[0])}
	topVia := true // only the first Via line is the sender's own
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			out = append(out, Line{Text: l, Explain: "not a header (no colon): a receiver would reject this message as malformed"})
			continue
		}
		name, value = canonical(strings.TrimSpace(name)), strings.TrimSpace(value)
		ln := Line{Text: l, Explain: header(name, value)}
		switch name {
		case "Via":
			if topVia {
				sentBy, params := siptext.TopVia(value)
				_, hasRport := params["rport"]
				if a, ok := siptext.HostAddr(sentBy); ok && siptext.Private(a) && ctx.Public {
					if hasRport {
						ln.Explain += " The sent-by here is private, but ;rport asks the server to answer the source it saw: that repairs it."
					} else {
						ln.Problems = append(ln.Problems, fmt.Sprintf("private address %s in Via without ;rport, seen on the internet side: the responses go to %s and never arrive (lie 1, module 08)", a, a))
					}
				}
				topVia = false
			}
		case "Contact":
			if a, ok := siptext.HostAddr(siptext.URIHost(value)); ok && siptext.Private(a) && ctx.Public {
				ln.Problems = append(ln.Problems, fmt.Sprintf("private address %s in Contact, seen on the internet side: requests sent to this Contact (ACK, BYE, calls to this phone) go nowhere unless the proxy fixes it up from the source address (lie 2, module 08)", a))
			}
		case "Call-ID":
			if i := strings.LastIndexByte(value, '@'); i >= 0 {
				if a, ok := siptext.HostAddr(value[i+1:]); ok && ctx.Public && !siptext.Private(a) {
					ln.Explain += " (If the phone wrote a private address here and the copy on the internet side shows a public one, an ALG rewrote it: compare the LAN copy.)"
				}
			}
		}
		out = append(out, ln)
	}
	if body != "" {
		out = append(out, Line{Text: "", Explain: "the blank line: end of the headers; the body (Content-Length bytes) follows"})
		out = append(out, sdp(body, ctx)...)
	}
	return out, nil
}

// canonical expands compact header forms (RFC 3261 §7.3.3) and fixes case.
func canonical(n string) string {
	full := map[string]string{"i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
		"c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via"}
	if f, ok := full[strings.ToLower(n)]; ok {
		return f
	}
	for _, k := range []string{"Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards", "Content-Type",
		"Content-Length", "Record-Route", "Route", "Expires", "Authorization", "Proxy-Authorization",
		"WWW-Authenticate", "Proxy-Authenticate", "User-Agent", "Server", "Allow", "Supported", "Require",
		"X-Siplab-Call", "RSeq", "RAck", "Event", "Subscription-State", "Refer-To", "Reason"} {
		if strings.EqualFold(k, n) {
			return k
		}
	}
	return n
}

var methods = map[string]string{
	"INVITE":    "start a session (or change one, as a re-INVITE); it carries the SDP offer",
	"ACK":       "confirm the final response to an INVITE; the only request that is never answered",
	"BYE":       "end an established call; either side may send it",
	"CANCEL":    "abort an INVITE that has no final response yet (the caller hung up while it rang); the INVITE then gets 487",
	"REGISTER":  "tell the registrar where this user can be reached now (a binding that lives for Expires seconds)",
	"OPTIONS":   "ask what the other side supports; in practice SIP's ping and keep-alive",
	"REFER":     "ask the other side to call someone (transfer); Refer-To names the target",
	"SUBSCRIBE": "ask to be told about an event (BLF lamp, message waiting)",
	"NOTIFY":    "deliver the event a SUBSCRIBE asked for",
	"UPDATE":    "change session parameters before the call is answered",
	"PRACK":     "acknowledge a reliable provisional response (RFC 3262)",
	"INFO":      "carry application data inside a call (old-style DTMF)",
	"MESSAGE":   "an instant message, without a session",
}

func startLine(l string) Line {
	if rest, ok := strings.CutPrefix(l, "SIP/2.0 "); ok {
		code, reason, _ := strings.Cut(rest, " ")
		n, _ := strconv.Atoi(code)
		class := map[int]string{
			1: "provisional: working on it, the transaction stays open",
			2: "success: final; an INVITE's 2xx is confirmed by an ACK end to end",
			3: "redirection: final; try the address in Contact",
			4: "client error: final; this request failed here (an INVITE's failure is still ACKed)",
			5: "server error: final; the server failed",
			6: "global failure: final; nowhere will accept it",
		}[n/100]
		if class == "" {
			class = "not a valid status class"
		}
		ex := fmt.Sprintf("status line: response %d %q, class %dxx — %s.", n, reason, n/100, class)
		switch n {
		case 401, 407:
			ex += " A digest challenge: the client must resend with credentials; the same challenge again after credentials means a wrong password."
		case 403:
			ex += " After correct credentials this is a policy block, not a wrong password."
		case 488:
			ex += " No codec (or media) in common with the offer."
		case 481:
			ex += " The dialog is unknown: a Call-ID or tag that does not match (an ALG rewriting the Call-ID does this)."
		case 408:
			ex += " Nobody answered in time: the request may never have reached its target."
		}
		return Line{Text: l, Explain: ex}
	}
	f := strings.Fields(l)
	if len(f) != 3 {
		return Line{Text: l, Explain: "request line, malformed: it should be METHOD Request-URI SIP/2.0"}
	}
	what := methods[f[0]]
	if what == "" {
		what = "an extension method this page does not describe"
	}
	return Line{Text: l, Explain: fmt.Sprintf("request line: method %s — %s. The Request-URI %s is where the request is going now; each proxy may rewrite it on the way.", f[0], what, f[1])}
}

func header(name, v string) string {
	switch name {
	case "Via":
		return "Via: one per hop the request crossed, newest on top. Responses travel back along these: the top one says where the sender wants the answer (sent-by) and carries the branch that names the transaction."
	case "From":
		return "From: the caller (or registering user), with a tag that names this side of the dialog."
	case "To":
		return "To: the intended callee. The callee adds its own tag in its responses; From-tag, To-tag and Call-ID together name the dialog."
	case "Call-ID":
		return "Call-ID: the call's unique name; every message of the call repeats it unchanged (a NAT router must never change it)."
	case "CSeq":
		return "CSeq: the command sequence, a number and the method; it rises with each new request and lets a response be matched to its request."
	case "Contact":
		return "Contact: the address where this side wants to be reached directly: in-dialog requests (ACK, BYE, re-INVITE) and, in a REGISTER, incoming calls go here."
	case "Max-Forwards":
		return "Max-Forwards: hops left before a proxy drops the request; it stops routing loops."
	case "Content-Type":
		return "Content-Type: what the body is; application/sdp is the media offer or answer."
	case "Content-Length":
		return "Content-Length: the body's size in bytes. A rewrite that changes the body without fixing this breaks the message."
	case "Record-Route":
		return "Record-Route: a proxy asking to stay in the path of the later requests of this dialog (ACK, BYE)."
	case "Route":
		return "Route: the proxies this request must visit, from an earlier Record-Route."
	case "Expires":
		return "Expires: how long, in seconds, the registration or subscription lives; phones refresh at about half of it."
	case "Authorization", "Proxy-Authorization":
		return name + ": the digest answer to a challenge — a hash of user, realm, password, nonce and the request; the password itself never travels."
	case "WWW-Authenticate", "Proxy-Authenticate":
		return name + ": the challenge (realm and one-time nonce) the client must answer with a digest."
	case "User-Agent", "Server":
		return name + ": the software that sent it; useful to know which end behaves how."
	case "Allow":
		return "Allow: the methods this side accepts."
	case "Supported", "Require":
		return name + ": SIP extensions this side supports or insists on (100rel = reliable provisional responses, timer, replaces)."
	case "X-Siplab-Call":
		return "X-Siplab-Call: the lab's PBX stamps both legs of one call with the same value so a ladder can group them."
	case "RSeq", "RAck":
		return name + ": sequence numbers of reliable provisional responses (PRACK, RFC 3262)."
	}
	return name + ": a header this page does not detail; receivers ignore headers they do not know."
}

// sdp explains the body line by line (RFC 8866); c= and o= are judged.
func sdp(body string, ctx Context) []Line {
	var out []Line
	for _, l := range strings.Split(body, "\n") {
		l = strings.TrimRight(l, "\r")
		if l == "" {
			continue
		}
		ln := Line{Text: l, SDP: true}
		key, v, _ := strings.Cut(l, "=")
		switch key {
		case "v":
			ln.Explain = "SDP version: always 0."
		case "o":
			ln.Explain = "origin: user, session id, version (it rises when the offer changes, e.g. hold) and the creator's address; informational."
			if a, ok := privateOnInternet(v, 6, ctx); ok {
				ln.Problems = append(ln.Problems, fmt.Sprintf("private address %s in o= on the internet side: harmless on its own, but it says the phone wrote its private address into the SDP", a))
			}
		case "s":
			ln.Explain = "session name: free text, usually '-' or the software name."
		case "c":
			ln.Explain = "connection: the address the other side must send its RTP (audio) to."
			if a, ok := privateOnInternet(v, 3, ctx); ok {
				ln.Problems = append(ln.Problems, fmt.Sprintf("private address %s in c=, seen on the internet side: the far end sends its audio to %s, into the void — one-way or no audio (lie 3, module 08)", a, a))
			}
		case "t":
			ln.Explain = "timing: start and stop; 0 0 means a permanent session."
		case "m":
			ln.Explain = "media: type, the port to send RTP to, the transport, and the payload types offered in order of preference (0 PCMU, 8 PCMA, 101 usually telephone-event)."
			if f := strings.Fields(v); len(f) >= 2 && f[1] == "0" {
				ln.Explain += " Port 0: this stream is refused."
			}
		case "b":
			ln.Explain = "bandwidth the sender expects to use."
		case "a":
			ln.Explain = attribute(v)
		default:
			ln.Explain = "an SDP line this page does not detail."
		}
		out = append(out, ln)
	}
	return out
}

// privateOnInternet is the address that ends an SDP value of n fields
// (o= has 6, c= 3), when it is private and seen on the internet side.
func privateOnInternet(v string, n int, ctx Context) (netip.Addr, bool) {
	f := strings.Fields(v)
	if !ctx.Public || len(f) != n {
		return netip.Addr{}, false
	}
	a, ok := siptext.HostAddr(f[n-1])
	return a, ok && siptext.Private(a)
}

func attribute(v string) string {
	name, val, _ := strings.Cut(v, ":")
	switch name {
	case "rtpmap":
		return "rtpmap: names a payload type: number, codec and clock rate (" + val + ")."
	case "fmtp":
		return "fmtp: codec parameters for a payload type (for telephone-event: the events carried — 0-9 digits, 10 *, 11 #, 12-15 A-D, 16 flash)."
	case "sendrecv":
		return "sendrecv: audio both ways (the default)."
	case "sendonly":
		return "sendonly: this side only sends — a call on hold with music."
	case "recvonly":
		return "recvonly: this side only receives."
	case "inactive":
		return "inactive: no audio either way (hold without music)."
	case "ptime":
		return "ptime: milliseconds of audio per packet (20 is usual: 50 packets a second)."
	case "rtcp":
		return "rtcp: the port for RTCP (quality reports) when it is not RTP port + 1."
	}
	return "attribute " + name + ": a media property this page does not detail."
}
