// Package demolab runs the whole call path — registrar, proxy and phones —
// in one process on loopback addresses, with no Docker and no NAT. It is
// the README's no-Docker quick start (`siplab demo up`) and the harness of
// the loopback integration tests: the same daemons' packages, real sockets.
package demolab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/proxy"
	"github.com/siplab/siplab/registrar"
	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/sip/sipnet"
	"github.com/siplab/siplab/uaclient"
)

// Domain is the demo's SIP domain, the same as the Docker lab's.
const Domain = "siplab.test"

// PhoneSpec is one demo phone.
type PhoneSpec struct {
	Name     string
	Password string
	Addr     netip.Addr
	SIPPort  int // 0 picks a free port
	RTPPort  int
	// Codecs in preference order; empty means the phone's default.
	Codecs   []sdpneg.Codec
	Settings map[string]string
}

// Config lays out the demo. Zero values give the documented layout.
type Config struct {
	// Registrar and Proxy are the SIP addresses (port 0 picks one).
	Registrar netip.AddrPort
	Proxy     netip.AddrPort
	// Users is the user table; the phones register with these passwords.
	Users *sipauth.Users
	// Phones to start; each registers through the proxy.
	Phones []PhoneSpec
	// SocketDir, when set, gets a control socket per phone (<name>.sock)
	// so `uaclient <verb> -ctl` and `siplab demo call` can drive them.
	SocketDir string
	// ProxySettings are the proxy's initial NAT toggles.
	ProxySettings *proxy.Settings
	Logger        *slog.Logger
}

// Default is the documented demo: proxy 127.0.0.10:5060, registrar
// 127.0.0.20:5060, alice 127.0.0.50:5060, bob .51, carol .52 (each answers
// after one second), passwords from the users file.
func Default(users *sipauth.Users) Config {
	answer := map[string]string{"auto_answer": "1s"}
	return Config{
		Registrar: netip.MustParseAddrPort("127.0.0.20:5060"),
		Proxy:     netip.MustParseAddrPort("127.0.0.10:5060"),
		Users:     users,
		Phones: []PhoneSpec{
			{Name: "alice", Addr: netip.MustParseAddr("127.0.0.50"), SIPPort: 5060, RTPPort: 16000, Settings: answer},
			{Name: "bob", Addr: netip.MustParseAddr("127.0.0.51"), SIPPort: 5060, RTPPort: 17000, Settings: answer},
			{Name: "carol", Addr: netip.MustParseAddr("127.0.0.52"), SIPPort: 5060, RTPPort: 18000, Settings: answer},
		},
	}
}

// Lab is a running demo.
type Lab struct {
	Registrar *registrar.Registrar
	Proxy     *proxy.Proxy
	Phones    map[string]*uaclient.Phone
	// ProxyAddr and RegistrarAddr are the bound SIP addresses.
	ProxyAddr, RegistrarAddr netip.AddrPort

	closers []func()
}

// Start brings the demo up and returns once every phone is registered.
func Start(ctx context.Context, cfg Config) (lab *Lab, err error) {
	if cfg.Users == nil {
		return nil, errors.New("demolab: no users")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	lab = &Lab{Phones: map[string]*uaclient.Phone{}}
	defer func() {
		if err != nil {
			lab.Close()
		}
	}()
	runCtx, cancel := context.WithCancel(context.Background())
	lab.closers = append(lab.closers, cancel)

	regEP, err := sipnet.Listen(sipnet.Config{Listen: cfg.Registrar.String(), UserAgent: "siplab-registrar", Logger: log.With("node", "registrar")})
	if err != nil {
		return nil, fmt.Errorf("demolab: registrar: %w", err)
	}
	lab.closers = append(lab.closers, func() { regEP.Close() })
	proxyEP, err := sipnet.Listen(sipnet.Config{Listen: cfg.Proxy.String(), UserAgent: "siplab-proxy", Logger: log.With("node", "proxy")})
	if err != nil {
		return nil, fmt.Errorf("demolab: proxy: %w", err)
	}
	lab.closers = append(lab.closers, func() { proxyEP.Close() })
	lab.RegistrarAddr, lab.ProxyAddr = regEP.Addr(), proxyEP.Addr()

	reg, err := registrar.New(registrar.Config{
		Domain:         Domain,
		Users:          cfg.Users,
		TrustedProxies: []netip.Prefix{netip.PrefixFrom(lab.ProxyAddr.Addr(), 32)},
		Logger:         log.With("node", "registrar"),
	})
	if err != nil {
		return nil, fmt.Errorf("demolab: %w", err)
	}
	lab.Registrar = reg
	lab.closers = append(lab.closers, func() { reg.Close() })
	reg.Attach(regEP)
	if err := regEP.Start(runCtx); err != nil {
		return nil, fmt.Errorf("demolab: registrar: %w", err)
	}

	px, err := proxy.New(proxy.Config{
		Domain:      Domain,
		Location:    reg,
		Registrar:   lab.RegistrarAddr.String(),
		Auth:        reg.Authenticator(),
		AuthInvites: true,
		Settings:    cfg.ProxySettings,
		Logger:      log.With("node", "proxy"),
	}, proxyEP)
	if err != nil {
		return nil, fmt.Errorf("demolab: %w", err)
	}
	lab.Proxy = px
	lab.closers = append(lab.closers, func() { px.Close() })
	if err := px.Start(runCtx); err != nil {
		return nil, fmt.Errorf("demolab: proxy: %w", err)
	}

	for _, spec := range cfg.Phones {
		password := spec.Password
		if password == "" {
			u, ok := cfg.Users.Lookup(spec.Name)
			if !ok {
				return nil, fmt.Errorf("demolab: phone %s has no user", spec.Name)
			}
			password = u.Password
		}
		ph, err := uaclient.New(uaclient.Config{
			Name:         spec.Name,
			Password:     password,
			Domain:       Domain,
			Proxy:        lab.ProxyAddr.String(),
			Listen:       netip.AddrPortFrom(spec.Addr, uint16(spec.SIPPort)).String(),
			RTPPort:      spec.RTPPort,
			Codecs:       spec.Codecs,
			AutoRegister: true,
			Settings:     spec.Settings,
			Logger:       log.With("node", spec.Name),
		})
		if err != nil {
			return nil, fmt.Errorf("demolab: phone %s: %w", spec.Name, err)
		}
		lab.Phones[spec.Name] = ph
		lab.closers = append(lab.closers, func() {
			sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
			defer c()
			ph.Shutdown(sctx)
			ph.Close()
		})
		if err := ph.Start(runCtx); err != nil {
			return nil, fmt.Errorf("demolab: phone %s: %w", spec.Name, err)
		}
		if cfg.SocketDir != "" {
			ln, err := ctl.Listen(filepath.Join(cfg.SocketDir, spec.Name+".sock"))
			if err != nil {
				return nil, fmt.Errorf("demolab: phone %s: %w", spec.Name, err)
			}
			go ctl.ServeListener(runCtx, ln, ph.Handler())
		}
	}
	for name, ph := range lab.Phones {
		wctx, c := context.WithTimeout(ctx, 10*time.Second)
		_, err := ph.WaitRegistration(wctx, uaclient.RegRegistered)
		c()
		if err != nil {
			return nil, fmt.Errorf("demolab: %s did not register: %w", name, err)
		}
	}
	return lab, nil
}

// Close stops everything, phones first so they can unregister.
func (l *Lab) Close() {
	for i := len(l.closers) - 1; i >= 0; i-- {
		l.closers[i]()
	}
	l.closers = nil
}
