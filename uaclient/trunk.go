package uaclient

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipnet"
)

// Trunk mode: the same phone engine as the far end of a SIP trunk (the lab's
// carrier). A trunk does not register and authenticates nobody by digest:
// it trusts its peer by source address (Config.Trusted), answers for a set
// of numbers rather than one user (Config.AcceptCallee) and presents each
// call's calling number in From (CallAs). Everything else (dialogs, SDP,
// media, tone detection, OPTIONS, status) is the phone's.

// trusted wraps h with the source ACL: requests from outside
// Config.Trusted get 403 and a log line; an ACK, which has no response, is
// dropped. Without an ACL h is returned as is.
func (p *Phone) trusted(h sipgo.RequestHandler) sipgo.RequestHandler {
	if len(p.cfg.Trusted) == 0 {
		return h
	}
	return func(req *sip.Request, tx sip.ServerTransaction) {
		src, err := sipnet.Source(req)
		if err == nil {
			for _, pfx := range p.cfg.Trusted {
				if pfx.Contains(src.Addr()) {
					if where, ok := p.foreignRoute(req); ok {
						p.log.Warn("request refused: relaying denied", "method", req.Method, "route", where, "source", req.Source())
						if !req.IsAck() {
							p.respondLog(tx, req, sip.StatusForbidden, "Relaying Denied: Route to "+where+" not allowed",
								p.warning(399, "a trunk terminates calls; it does not relay them"))
						}
						return
					}
					h(req, tx)
					return
				}
			}
		}
		callID := ""
		if cid := req.CallID(); cid != nil {
			callID = cid.Value()
		}
		p.log.Warn("request from untrusted source refused", "method", req.Method, "source", req.Source(), "call_id", callID)
		if req.IsAck() {
			return
		}
		p.respondLog(tx, req, sip.StatusForbidden, "Forbidden", p.warning(399, "source "+req.Source()+" is not a trusted peer"))
	}
}

// refuseCallee screens a new INVITE with Config.AcceptCallee; true means it
// was refused (and answered) before any call state was made.
func (p *Phone) refuseCallee(req *sip.Request, tx sip.ServerTransaction) bool {
	if p.cfg.AcceptCallee == nil {
		return false
	}
	code, reason := p.cfg.AcceptCallee(req.Recipient.User)
	if code == 0 {
		return false
	}
	if reason == "" {
		reason = reasonPhrase(code)
	}
	p.log.Info("call refused", "callee", req.Recipient.User, "code", code, "reason", reason, "call_id", req.CallID().Value())
	p.respondLog(tx, req, code, reason)
	return true
}

// CallAs is Call with fromUser as the From user part instead of the
// phone's own user ("" keeps it): a trunk sends each call with its
// calling number.
func (p *Phone) CallAs(ctx context.Context, target, fromUser string) (*Call, error) {
	if strings.ContainsAny(fromUser, " \t@:;<>\"") {
		return nil, fmt.Errorf("%w: from user %q contains characters not allowed in a SIP user part", ErrBadTarget, fromUser)
	}
	if p.proxy() == "" {
		return nil, ErrNoProxy
	}
	if p.isClosed() {
		return nil, ErrClosed
	}
	to, err := p.parseTarget(target)
	if err != nil {
		return nil, err
	}
	return p.callAs(ctx, to, fromUser)
}

// foreignRoute finds the first Route entry of an initial request that
// does not name this trunk's socket. A trunk terminates calls for its
// numbers and never follows a Route; a trusted peer's request asking to
// be relayed elsewhere is refused in the open. In-dialog requests carry
// their dialog's route set and are not checked.
func (p *Phone) foreignRoute(req *sip.Request) (string, bool) {
	if t := req.To(); t != nil {
		if tag, _ := t.Params.Get("tag"); tag != "" {
			return "", false
		}
	}
	for _, h := range req.GetHeaders("Route") {
		r, ok := h.(*sip.RouteHeader)
		if !ok {
			continue
		}
		if p.isOwnURI(r.Address) {
			continue
		}
		where := r.Address.Host
		if r.Address.Port != 0 {
			where += ":" + strconv.Itoa(r.Address.Port)
		}
		return where, true
	}
	return "", false
}

// isOwnURI says whether u names one of this phone's SIP sockets (UDP/TCP
// or TLS); no port means the scheme's default.
func (p *Phone) isOwnURI(u sip.Uri) bool {
	ip, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		return false
	}
	port := u.Port
	if port == 0 {
		port = 5060
		if strings.EqualFold(u.Scheme, "sips") {
			port = 5061
		}
	}
	for _, a := range []netip.AddrPort{p.ep.Addr(), p.ep.TLSAddr()} {
		if a.IsValid() && a.Addr().Unmap() == ip.Unmap() && int(a.Port()) == port {
			return true
		}
	}
	return false
}
