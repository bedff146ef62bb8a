// Package platform starts the platform's core for a role's tests: the
// real registrar and proxy on loopback, wired as the Docker lab wires
// them. It is its own package, not part of siptest, so that the proxy's
// and the registrar's own tests may still use siptest.
package platform

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/registrar"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/sip/sipnet"
)

// Core is a running registrar and the proxy in front of it.
type Core struct {
	Registrar     *registrar.Registrar
	RegistrarAddr netip.AddrPort
	Proxy         netip.AddrPort
}

// StartCore binds a registrar on registrarIP and a proxy on proxyIP (any
// port) and runs them until ctx ends or t is cleaned up. The registrar
// knows users (a users file: "name password" lines) in domain and trusts
// the proxy's Path; the proxy finds phones in it and challenges REGISTERs
// and INVITEs with its credentials. px is the rest of the proxy's
// configuration (Relay, UserRoutes); its Domain, Location, Registrar,
// Auth, AuthInvites and Logger are set here.
func StartCore(t testing.TB, ctx context.Context, domain, users, registrarIP, proxyIP string, px proxy.Config, log *slog.Logger) Core {
	t.Helper()
	u, err := sipauth.ParseUsers(strings.NewReader(users))
	if err != nil {
		t.Fatal(err)
	}
	regEP, proxyEP := listen(t, registrarIP, log), listen(t, proxyIP, log)
	reg, err := registrar.New(registrar.Config{Domain: domain, Users: u,
		TrustedProxies: []netip.Prefix{netip.PrefixFrom(proxyEP.Addr().Addr(), 32)}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	reg.Attach(regEP)
	if err := regEP.Start(ctx); err != nil {
		t.Fatal(err)
	}
	px.Domain, px.Location, px.Registrar, px.Logger = domain, reg, regEP.Addr().String(), log
	px.Auth, px.AuthInvites = reg.Authenticator(), true
	p, err := proxy.New(px, proxyEP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return Core{Registrar: reg, RegistrarAddr: regEP.Addr(), Proxy: proxyEP.Addr()}
}

func listen(t testing.TB, ip string, log *slog.Logger) *sipnet.Endpoint {
	t.Helper()
	ep, err := sipnet.Listen(sipnet.Config{Listen: ip + ":0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}
