package sbc

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// passRequest are the request headers that cross the border: what the far
// end needs to do its job (authenticate, negotiate extensions, read the
// body, know why). Everything else — Via, Route, Record-Route, Contact,
// Call-ID, Path, P-headers, Server/User-Agent of core elements, Warning —
// is the writer's topology and stays on its side.
var passRequest = []string{
	"Authorization", "Proxy-Authorization", "Allow", "Supported", "Require", "Accept",
	"Content-Type", "Expires", "Subject", "Priority", "Reason", "Event", "Subscription-State",
	"Refer-To", "Referred-By", "Replaces", "Date",
}

// passResponse are the response headers that cross the border.
var passResponse = []string{
	"WWW-Authenticate", "Proxy-Authenticate", "Allow", "Supported", "Require", "Accept",
	"Content-Type", "Unsupported", "Retry-After", "Min-Expires", "Expires", "Reason", "Date",
	"Event", "Subscription-State",
}

// copyHeaders copies the named headers from src to dst. Option tags the
// SBC does not implement end to end are taken out: 100rel (RFC 3262) is
// hop-by-hop in a B2BUA — reliable provisionals would have to be PRACKed
// per leg — so neither leg is offered it.
func copyHeaders(dst, src interface {
	GetHeaders(string) []sip.Header
	AppendHeader(sip.Header)
}, names []string) {
	for _, n := range names {
		for _, h := range src.GetHeaders(n) {
			if n == "Supported" || n == "Require" {
				v := dropTag(h.Value(), "100rel")
				if v == "" {
					continue
				}
				dst.AppendHeader(sip.NewHeader(n, v))
				continue
			}
			dst.AppendHeader(sip.HeaderClone(h))
		}
	}
}

func dropTag(list, tag string) string {
	var keep []string
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t != "" && !strings.EqualFold(t, tag) {
			keep = append(keep, t)
		}
	}
	return strings.Join(keep, ", ")
}

// userAgentHeader: a phone's User-Agent may go to the core (the platform
// may care which phone it is); a core element's Server/User-Agent never
// goes out. Towards the access side the SBC names itself.
func (s *SBC) userAgentTowards(r realm, src interface{ GetHeader(string) sip.Header }, name string) sip.Header {
	if r == core || !s.hiding() {
		if h := src.GetHeader(name); h != nil {
			return sip.NewHeader(name, h.Value())
		}
		return nil
	}
	return sip.NewHeader(name, s.cfg.UserAgent)
}

// borderURI is a From/To URI as written on the other side: towards the
// access side an IP host (a core element's address, e.g. the PBX writes
// its own in From) becomes the SBC's public address; domain names pass.
// Towards the core the phone's URI passes as written: the proxy
// authenticates by From user and domain.
func (s *SBC) borderURI(u sip.Uri, to realm) sip.Uri {
	out := *u.Clone()
	out.Headers = nil
	if to == access && s.hiding() {
		if _, err := netip.ParseAddr(strings.Trim(out.Host, "[]")); err == nil {
			out.Host = s.ep[access].Addr().Addr().String()
			out.Port = 0
			out.UriParams = nil
		}
	}
	return out
}

// coreAddrs are the core addresses the SBC knows of: its own core face
// and media address, the next hop and the trunk inbound.
func (s *SBC) coreAddrs() []string {
	var out []string
	for _, a := range []netip.Addr{s.ep[core].Addr().Addr(), s.mediaIP[core], s.cfg.NextHop.Addr(), s.cfg.TrunkInbound.Addr()} {
		if a.IsValid() && a != s.ep[access].Addr().Addr() && !slices.Contains(out, a.String()) {
			out = append(out, a.String())
		}
	}
	return out
}

// scrub replaces the core addresses the SBC knows in a text body going to
// the access side (a message-summary's Message-Account, a dialog-info
// entity, a sipfrag) with its public address. Addresses of core elements
// the SBC has never heard of are not found: it hides what it knows.
func (s *SBC) scrub(body []byte) []byte {
	if !s.hiding() {
		return body
	}
	out := string(body)
	pub := s.ep[access].Addr().Addr().String()
	for _, a := range s.coreAddrs() {
		out = replaceAddr(out, a, pub)
	}
	return []byte(out)
}

// replaceAddr replaces whole occurrences of the IP a (not 10.0.0.5 inside
// 10.0.0.50).
func replaceAddr(s, a, with string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, a)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(a)
		whole := (i == 0 || !isAddrChar(s[i-1])) && (end == len(s) || !isAddrChar(s[end]))
		b.WriteString(s[:i])
		if whole {
			b.WriteString(with)
		} else {
			b.WriteString(a)
		}
		s = s[end:]
	}
}

func isAddrChar(c byte) bool { return c == '.' || c >= '0' && c <= '9' }

// hiding is the topology_hiding setting now.
func (s *SBC) hiding() bool { return s.settings.get().TopologyHiding }

// serverHeaders names the SBC in a response going to the access side;
// with topology_hiding off the far side's Server and Warning go through
// instead (what the core runs, and its address in the Warning).
func (s *SBC) serverHeaders(res *sip.Response, far *sip.Response) {
	if !s.hiding() && far != nil {
		if h := far.GetHeader("Server"); h != nil {
			res.AppendHeader(sip.NewHeader("Server", h.Value()))
		} else if h := far.GetHeader("User-Agent"); h != nil {
			res.AppendHeader(sip.NewHeader("Server", h.Value()))
		}
		for _, h := range far.GetHeaders("Warning") {
			res.AppendHeader(sip.HeaderClone(h))
		}
		if res.GetHeader("Server") != nil {
			return
		}
	}
	res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))
}
