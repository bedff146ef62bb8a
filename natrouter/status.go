package natrouter

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/vishvananda/netlink"
)

// Mapping is one NAT binding as conntrack holds it.
type Mapping struct {
	Proto string `json:"proto"`
	// Inside is the LAN host's address:port (original source).
	Inside netip.AddrPort `json:"inside"`
	// Outside is the address:port the internet sees (reply destination).
	// Equal to Inside when the flow was not translated.
	Outside netip.AddrPort `json:"outside"`
	// Remote is the internet peer (original destination).
	Remote netip.AddrPort `json:"remote"`
	// Translated is false for a flow that left without NAT (e.g. forwarded
	// before the router installed its rules): a leak worth seeing.
	Translated bool `json:"translated"`
	// Inbound is true for a flow a remote opened towards a mapping (cone
	// presets only): the remote was let in by the NAT's filtering.
	Inbound bool `json:"inbound"`
	// PacketsOut/PacketsIn count LAN→WAN and WAN→LAN packets; zero unless
	// net.netfilter.nf_conntrack_acct=1.
	PacketsOut uint64 `json:"packets_out"`
	PacketsIn  uint64 `json:"packets_in"`
	// AgeSeconds is -1 unless net.netfilter.nf_conntrack_timestamp=1.
	AgeSeconds int64 `json:"age_seconds"`
	// ExpiresInSeconds is the time left before the mapping (the pinhole)
	// closes if no further packet refreshes it.
	ExpiresInSeconds uint32 `json:"expires_in_seconds"`
}

// Status is the router's settings and current mappings.
type Status struct {
	Preset             Preset     `json:"preset"`
	PinholeSeconds     int64      `json:"pinhole_seconds"`
	ALG                string     `json:"alg"` // the mode's spec: off, kernel, broken:<faults>
	ALGDetail          *ALGStatus `json:"alg_detail,omitempty"`
	Table              string     `json:"table"`
	LAN                Interface  `json:"lan"`
	WAN                Interface  `json:"wan"`
	UnsolicitedDropped uint64     `json:"unsolicited_dropped"`
	Mappings           []Mapping  `json:"mappings"`
	// Summary is one line for people (`siplab status`).
	Summary string `json:"summary"`
}

// Pinhole returns the pinhole timeout as a duration.
func (s Status) Pinhole() time.Duration { return time.Duration(s.PinholeSeconds) * time.Second }

// Status reads the settings and the current mappings from conntrack.
func (r *Router) Status(ctx context.Context) (Status, error) {
	if err := r.lockOpen(ctx); err != nil {
		return Status{}, err
	}
	defer r.mu.Unlock()
	st := Status{
		Preset:         r.preset,
		PinholeSeconds: int64(r.pinhole / time.Second),
		ALG:            r.alg.Spec(),
		ALGDetail:      r.algStatus(),
		Table:          r.table,
		LAN:            r.lan,
		WAN:            r.wan,
		Mappings:       []Mapping{},
	}
	if r.started {
		n, err := r.unsolicitedDropped()
		if err != nil {
			return Status{}, err
		}
		st.UnsolicitedDropped = n
	}
	flows, err := r.nl.ConntrackTableList(netlink.ConntrackTable, netlink.FAMILY_V4)
	if err != nil {
		return Status{}, fmt.Errorf("natrouter: list conntrack: %w", err)
	}
	st.Mappings = mappingsFromFlows(flows, r.lan.Address.Masked(), time.Now())
	st.Summary = fmt.Sprintf("%s NAT, pinhole %ds, ALG %s, %d mappings, %d unsolicited dropped",
		st.Preset.Name, st.PinholeSeconds, st.ALG, len(st.Mappings), st.UnsolicitedDropped)
	return st, nil
}

// mappingsFromFlows turns conntrack entries into mappings: the LAN-originated
// ones, with the outside address read from the reply tuple.
func mappingsFromFlows(flows []*netlink.ConntrackFlow, lan netip.Prefix, now time.Time) []Mapping {
	out := []Mapping{}
	for _, f := range flows {
		src, ok := netip.AddrFromSlice(f.Forward.SrcIP.To4())
		if !ok {
			continue
		}
		if rsrc, _ := netip.AddrFromSlice(f.Reverse.SrcIP.To4()); !lan.Contains(src) && lan.Contains(rsrc) {
			// A remote opened it and the router DNATed it to a LAN host.
			dst, _ := netip.AddrFromSlice(f.Forward.DstIP.To4())
			m := flowMapping(f, now, netip.AddrPortFrom(rsrc, f.Reverse.SrcPort), netip.AddrPortFrom(dst, f.Forward.DstPort),
				netip.AddrPortFrom(src, f.Forward.SrcPort), f.Reverse.Packets, f.Forward.Packets)
			m.Translated, m.Inbound = true, true
			out = append(out, m)
			continue
		}
		if !lan.Contains(src) {
			continue
		}
		dst, _ := netip.AddrFromSlice(f.Forward.DstIP.To4())
		rdst, _ := netip.AddrFromSlice(f.Reverse.DstIP.To4())
		m := flowMapping(f, now, netip.AddrPortFrom(src, f.Forward.SrcPort), netip.AddrPortFrom(rdst, f.Reverse.DstPort),
			netip.AddrPortFrom(dst, f.Forward.DstPort), f.Forward.Packets, f.Reverse.Packets)
		m.Translated = m.Outside != m.Inside
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Inside.Compare(out[j].Inside); c != 0 {
			return c < 0
		}
		return out[i].Remote.Compare(out[j].Remote) < 0
	})
	return out
}

// flowMapping is f as a mapping, its ends and packet counts read from
// whichever tuple (forward or reply) holds them for the side that opened it.
func flowMapping(f *netlink.ConntrackFlow, now time.Time, inside, outside, remote netip.AddrPort, packetsOut, packetsIn uint64) Mapping {
	return Mapping{
		Proto:            protoName(f.Forward.Protocol),
		Inside:           inside,
		Outside:          outside,
		Remote:           remote,
		PacketsOut:       packetsOut,
		PacketsIn:        packetsIn,
		AgeSeconds:       age(f, now),
		ExpiresInSeconds: f.TimeOut,
	}
}

func age(f *netlink.ConntrackFlow, now time.Time) int64 {
	if f.TimeStart == 0 {
		return -1
	}
	return int64(now.Sub(time.Unix(0, int64(f.TimeStart))) / time.Second)
}

func protoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	default:
		return strconv.Itoa(int(p))
	}
}

// WriteTable renders the status for people.
func (s Status) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "preset   %s (mapping %s, filtering %s)\n", s.Preset.Name, s.Preset.Mapping, s.Preset.Filtering)
	fmt.Fprintf(w, "pinhole  %s (UDP, unreplied and replied)\n", s.Pinhole())
	fmt.Fprintf(w, "alg      %s\n", s.ALG)
	s.ALGDetail.writeText(w)
	fmt.Fprintf(w, "lan      %s %s\n", s.LAN.Name, s.LAN.Address)
	fmt.Fprintf(w, "wan      %s %s\n", s.WAN.Name, s.WAN.Address)
	fmt.Fprintf(w, "dropped  %d unsolicited inbound packets\n\n", s.UnsolicitedDropped)
	if len(s.Mappings) == 0 {
		_, err := fmt.Fprintln(w, "no mappings")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROTO\tINSIDE\tOUTSIDE\tREMOTE\tPKTS OUT/IN\tAGE\tEXPIRES IN")
	for _, m := range s.Mappings {
		outside := m.Outside.String()
		if !m.Translated {
			outside += " (NOT NATED)"
		}
		if m.Inbound {
			outside += " (opened from outside)"
		}
		age := "-"
		if m.AgeSeconds >= 0 {
			age = (time.Duration(m.AgeSeconds) * time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", m.Proto, m.Inside, outside, m.Remote,
			m.PacketsOut, m.PacketsIn, age, time.Duration(m.ExpiresInSeconds)*time.Second)
	}
	return tw.Flush()
}
