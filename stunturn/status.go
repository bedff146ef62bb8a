package stunturn

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Status is everything the server did, for `stunturn status`.
type Status struct {
	// Summary is one line for people (`siplab status`).
	Summary     string `json:"summary"`
	Listen      string `json:"listen"`
	Realm       string `json:"realm"`
	RelayIP     string `json:"relay_ip"`
	RelayPorts  string `json:"relay_ports"`
	MaxAllocs   int    `json:"max_allocations"`
	UserQuota   int    `json:"user_quota"`
	MaxLifetime string `json:"max_lifetime"`
	// BindingRequests counts every Binding request answered; Bindings
	// are per client, newest first.
	BindingRequests uint64          `json:"binding_requests"`
	Bindings        []BindingStatus `json:"bindings"`
	// Allocations: live ones first (newest first), then ended ones.
	Allocations     []AllocationStatus `json:"allocations"`
	AuthFailures    uint64             `json:"auth_failures"`
	LastAuthFailure string             `json:"last_auth_failure,omitempty"`
	QuotaRefusals   uint64             `json:"quota_refusals"`
}

// BindingStatus is one client's STUN Binding requests. Client is the
// source address the request arrived from; Mapped is the XOR-MAPPED-ADDRESS
// the server answered — the same thing, which is the lesson: the server
// sees the NAT's public mapping, never the phone's private address.
type BindingStatus struct {
	Client   string    `json:"client"`
	Mapped   string    `json:"mapped"`
	Requests uint64    `json:"requests"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
}

// Traffic is packets and bytes in one direction.
type Traffic struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// AllocationStatus is one TURN allocation.
type AllocationStatus struct {
	User     string `json:"user"`
	Realm    string `json:"realm,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	// Client and Server are the 5-tuple's ends: where the client's
	// requests came from (its NAT mapping) and the server's address.
	Client string `json:"client"`
	Server string `json:"server"`
	// Relayed is the relayed transport address, the one a phone puts in
	// its SDP.
	Relayed     string    `json:"relayed"`
	Created     time.Time `json:"created"`
	Ended       time.Time `json:"ended,omitzero"`
	EndReason   string    `json:"end_reason,omitempty"`
	Permissions []string  `json:"permissions"`
	// ToPeer: sent from the relayed address to peers (client → peer);
	// FromPeer: received from permitted peers and passed to the client;
	// DroppedFromPeer: received from peers with no permission (RFC 5766
	// §2.3: a TURN relay filters like an address-restricted NAT).
	ToPeer          Traffic `json:"to_peer"`
	FromPeer        Traffic `json:"from_peer"`
	DroppedFromPeer Traffic `json:"dropped_from_peer"`
	LastPeer        string  `json:"last_peer,omitempty"`
}

func (a *alloc) statusLocked() AllocationStatus {
	st := AllocationStatus{
		User: a.user, Realm: a.realm, Protocol: a.proto, Client: a.client, Server: a.server,
		Relayed: a.relayed.String(), Created: a.created, Ended: a.ended, EndReason: a.endReason,
		Permissions:     []string{},
		ToPeer:          a.toPeer.snapshot(),
		FromPeer:        a.fromPeer.snapshot(),
		DroppedFromPeer: a.droppedFromPeer.snapshot(),
	}
	if a.ended.IsZero() {
		st.EndReason = ""
	}
	peers := make([]netip.Addr, 0, len(a.perms))
	for p := range a.perms {
		peers = append(peers, p)
	}
	slices.SortFunc(peers, netip.Addr.Compare)
	for _, p := range peers {
		st.Permissions = append(st.Permissions, p.String())
	}
	if v, ok := a.lastPeer.Load().(string); ok {
		st.LastPeer = v
	}
	return st
}

func (s *state) snapshot() (bindings []BindingStatus, allocs []AllocationStatus, lastAuth string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.bindings {
		bindings = append(bindings, BindingStatus{
			Client: r.client.String(), Mapped: r.client.String(),
			Requests: r.requests, First: r.first, Last: r.last,
		})
	}
	slices.SortFunc(bindings, func(a, b BindingStatus) int { return b.Last.Compare(a.Last) })
	live := make([]AllocationStatus, 0, len(s.live))
	for _, a := range s.live {
		live = append(live, a.statusLocked())
	}
	slices.SortFunc(live, func(a, b AllocationStatus) int { return b.Created.Compare(a.Created) })
	allocs = live
	for i := len(s.ended) - 1; i >= 0; i-- {
		allocs = append(allocs, s.ended[i].statusLocked())
	}
	return bindings, allocs, s.lastAuthFailure
}

// Live is how many allocations are up.
func (st Status) Live() int {
	n := 0
	for _, a := range st.Allocations {
		if a.Ended.IsZero() {
			n++
		}
	}
	return n
}

// WriteText prints the status for people: the bindings first (what each
// client was told), then each allocation.
func (st Status) WriteText(w io.Writer, now time.Time) {
	fmt.Fprintf(w, "stunturn %s realm %s, relay %s ports %s (max %d allocations, %d per user, lifetime cap %s)\n",
		st.Listen, st.Realm, st.RelayIP, st.RelayPorts, st.MaxAllocs, st.UserQuota, st.MaxLifetime)
	fmt.Fprintf(w, "STUN Binding: %d requests from %d clients\n", st.BindingRequests, len(st.Bindings))
	for _, b := range st.Bindings {
		fmt.Fprintf(w, "  from %-21s told mapped %-21s %d requests, last %s ago\n",
			b.Client, b.Mapped, b.Requests, now.Sub(b.Last).Round(time.Second))
	}
	fmt.Fprintf(w, "TURN: %d live allocations, %d auth failures, %d quota refusals\n", st.Live(), st.AuthFailures, st.QuotaRefusals)
	if st.LastAuthFailure != "" {
		fmt.Fprintf(w, "  last auth failure: %s\n", st.LastAuthFailure)
	}
	for _, a := range st.Allocations {
		state := fmt.Sprintf("live for %s", now.Sub(a.Created).Round(time.Second))
		if !a.Ended.IsZero() {
			state = fmt.Sprintf("ended %s ago (%s)", now.Sub(a.Ended).Round(time.Second), a.EndReason)
		}
		fmt.Fprintf(w, "  %s relayed %s for client %s -> %s (%s)\n", a.User, a.Relayed, a.Client, a.Server, state)
		perms := "none"
		if len(a.Permissions) > 0 {
			perms = strings.Join(a.Permissions, ", ")
		}
		fmt.Fprintf(w, "    permissions: %s\n", perms)
		fmt.Fprintf(w, "    client->peer %d pkts %d bytes; peer->client %d pkts %d bytes; dropped (no permission) %d pkts",
			a.ToPeer.Packets, a.ToPeer.Bytes, a.FromPeer.Packets, a.FromPeer.Bytes, a.DroppedFromPeer.Packets)
		if a.LastPeer != "" {
			fmt.Fprintf(w, "; last peer %s", a.LastPeer)
		}
		fmt.Fprintln(w)
	}
}
