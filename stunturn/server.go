package stunturn

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/turn/v4"
)

// Server is a running STUN/TURN server. New starts serving; Close stops.
type Server struct {
	cfg  Config
	log  *slog.Logger
	st   *state
	pion *turn.Server
	addr netip.AddrPort

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg and serves STUN and TURN on cfg.Conn until Close.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		if cfg.Conn != nil {
			cfg.Conn.Close()
		}
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "stunturn"), st: newState(cfg.BindingLog)}
	s.addr = addrPortOf(cfg.Conn.LocalAddr())
	gen := newRelayGenerator(cfg, s.st)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:         cfg.Realm,
		LoggerFactory: PionLogger(cfg.Logger),
		AuthHandler:   s.auth,
		QuotaHandler:  s.quota,
		EventHandler:  s.events(),
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            &watchConn{PacketConn: cfg.Conn, st: s.st, realm: cfg.Realm, key: s.userKey, log: s.log},
			RelayAddressGenerator: gen,
			PermissionHandler:     s.permit,
		}},
	})
	if err != nil {
		cfg.Conn.Close()
		return nil, fmt.Errorf("stunturn: start server: %w", err)
	}
	s.pion = srv
	s.log.Info("serving STUN and TURN", "addr", s.addr, "realm", cfg.Realm,
		"relay", cfg.RelayIP, "ports", fmt.Sprintf("%d-%d", cfg.PortMin, cfg.PortMax))
	return s, nil
}

// Addr is the STUN/TURN socket's address.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Close stops serving and ends every allocation.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if err := s.pion.Close(); err != nil {
			s.closeErr = fmt.Errorf("stunturn: close: %w", err)
		}
	})
	return s.closeErr
}

// userKey is the long-term credential key (RFC 5389 §10.2):
// MD5(user:realm:password) from the lab's users file. Unknown and blocked
// users have none.
func (s *Server) userKey(username string) ([]byte, bool) {
	u, ok := s.cfg.Users.Lookup(username)
	if !ok || u.Blocked {
		return nil, false
	}
	return turn.GenerateAuthKey(username, s.cfg.Realm, u.Password), true
}

// auth is pion's credential hook. watchConn has already answered bad
// credentials with 401, so this only sees good ones (and stays correct
// on its own).
func (s *Server) auth(username, _ string, _ net.Addr) ([]byte, bool) {
	return s.userKey(username)
}

// quota refuses an allocation over the per-user or total limit (486).
func (s *Server) quota(username, _ string, src net.Addr) bool {
	all, mine := s.st.liveCounts(username)
	if all >= s.cfg.MaxAllocations || mine >= s.cfg.UserQuota {
		s.st.quotaRefusals.Add(1)
		s.log.Warn("allocation refused: quota", "user", username, "from", addrString(src),
			"live", all, "max", s.cfg.MaxAllocations, "user_live", mine, "user_quota", s.cfg.UserQuota)
		return false
	}
	return true
}

// permit refuses permissions towards addresses a relay must never reach:
// unspecified, multicast and broadcast always, and the server host's
// loopback unless the relay itself is on loopback (the package tests).
func (s *Server) permit(client net.Addr, peer net.IP) bool {
	ip := ipOf(peer)
	ok := ip.IsValid() && !ip.IsUnspecified() && !ip.IsMulticast() &&
		ip != netip.AddrFrom4([4]byte{255, 255, 255, 255}) &&
		(!ip.IsLoopback() || s.cfg.RelayIP.IsLoopback())
	if !ok {
		s.log.Warn("permission refused", "client", addrString(client), "peer", ip)
	}
	return ok
}

func (s *Server) events() turn.EventHandler {
	return turn.EventHandler{
		OnAllocationCreated: func(src, dst net.Addr, proto, username, realm string, relayed net.Addr, _ int) {
			s.st.allocationCreated(src, dst, proto, username, realm, relayed)
			s.log.Info("allocation created", "user", username, "client", addrString(src), "relayed", addrString(relayed))
		},
		OnAllocationDeleted: func(src, dst net.Addr, _, username, _ string) {
			s.st.allocationDeleted(src, dst)
			s.log.Info("allocation deleted", "user", username, "client", addrString(src))
		},
		OnPermissionCreated: func(src, _ net.Addr, _, username, _ string, relayed net.Addr, peer net.IP) {
			s.st.permission(relayed, peer, true)
			s.log.Info("permission created", "user", username, "relayed", addrString(relayed), "peer", peer.String())
		},
		OnPermissionDeleted: func(_, _ net.Addr, _, _, _ string, relayed net.Addr, peer net.IP) {
			s.st.permission(relayed, peer, false)
		},
	}
}

// Status snapshots what the server did.
func (s *Server) Status() Status {
	bindings, allocs, lastAuth := s.st.snapshot()
	st := Status{
		Listen: s.addr.String(), Realm: s.cfg.Realm, RelayIP: s.cfg.RelayIP.String(),
		RelayPorts: fmt.Sprintf("%d-%d", s.cfg.PortMin, s.cfg.PortMax),
		MaxAllocs:  s.cfg.MaxAllocations, UserQuota: s.cfg.UserQuota, MaxLifetime: s.cfg.MaxLifetime.String(),
		BindingRequests: s.st.bindingRequests.Load(), Bindings: bindings,
		Allocations: allocs, AuthFailures: s.st.authFailures.Load(), LastAuthFailure: lastAuth,
		QuotaRefusals: s.st.quotaRefusals.Load(),
	}
	if st.Bindings == nil {
		st.Bindings = []BindingStatus{}
	}
	if st.Allocations == nil {
		st.Allocations = []AllocationStatus{}
	}
	var relayed Traffic
	for _, a := range allocs {
		relayed.Bytes += a.ToPeer.Bytes + a.FromPeer.Bytes
	}
	st.Summary = fmt.Sprintf("stun/turn %s: %d binding requests from %d clients, %d live allocations, %d bytes relayed",
		st.Listen, st.BindingRequests, len(st.Bindings), st.Live(), relayed.Bytes)
	return st
}

// ResetResult is what Reset forgot.
type ResetResult struct {
	Bindings         int `json:"bindings_forgotten"`
	EndedAllocations int `json:"ended_allocations_forgotten"`
}

// Reset forgets what the server saw (Binding clients, ended allocations,
// counters), for a lab reset; live allocations end with their calls.
func (s *Server) Reset() ResetResult {
	b, e := s.st.forget()
	s.log.Info("reset", "bindings", b, "ended_allocations", e)
	return ResetResult{Bindings: b, EndedAllocations: e}
}
