// Package console is the classroom console: the running lab in a web
// browser. One HTTP server (the page, its assets embedded with go:embed, a
// JSON API and one Server-Sent Events stream) and one poller shared by every
// browser: the trainer's projector and the interns' laptops see the same
// state. Every button goes through the same code as the siplab verbs
// (labops: the daemons' own subcommands run inside their containers as
// argv, never through a shell).
//
// Security: on a loopback address the page is open to the local user (and
// the Host header must name a loopback host: no DNS rebinding). On any
// other address a token is required (printed at start): ?token= once sets a
// cookie, scripts send the X-Siplab-Token header. Every state-changing
// request is a POST whose Origin must be the console itself.
package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// Token names: the cookie the browser keeps, the header scripts send, the
// query parameter that hands the token to a browser once.
const (
	CookieName  = "siplab_token"
	HeaderName  = "X-Siplab-Token"
	QueryName   = "token"
	DefaultAddr = "127.0.0.1:8080"
)

// NodesFor is how long the console reuses its list of the lab's nodes
// (labctl.Runner.NodesFor).
const NodesFor = 3 * time.Second

// Config is the console's configuration, validated once by New.
type Config struct {
	// Listen is the address the server is reachable at (host:port); it
	// decides whether a token is required.
	Listen string
	// Token is required from browsers when Listen is not loopback; empty
	// there means New makes one (Server.Token tells it).
	Token string
	// Lab is what the buttons and the poller act on.
	Lab Lab
	// StatusEvery and CaptureEvery pace the shared poller.
	StatusEvery  time.Duration
	CaptureEvery time.Duration
	Log          *slog.Logger
}

// Server is the console.
type Server struct {
	cfg      Config
	loopback bool
	token    string
	hub      *Hub
	poller   *poller
	mux      *http.ServeMux
}

// IsLoopback tells whether a listen address is loopback only: 127.0.0.0/8,
// ::1 or localhost. An empty host (every interface) is not.
func IsLoopback(listen string) (bool, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false, fmt.Errorf("console: listen address %q: %w", listen, err)
	}
	if host == "localhost" {
		return true, nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		if host == "" {
			return false, nil
		}
		return false, fmt.Errorf("console: listen address %q: the host must be an IP address or localhost", listen)
	}
	return a.IsLoopback(), nil
}

// New checks cfg and builds the server; Run starts its poller.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultAddr
	}
	loop, err := IsLoopback(cfg.Listen)
	if err != nil {
		return nil, err
	}
	if cfg.Lab == nil {
		return nil, errors.New("console: no lab")
	}
	if cfg.StatusEvery <= 0 {
		cfg.StatusEvery = time.Second
	}
	if cfg.CaptureEvery <= 0 {
		cfg.CaptureEvery = 100 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if d, ok := cfg.Lab.(*DockerLab); ok && d.R != nil && d.R.NodesFor == 0 {
		// The poller reads every node each second and every button finds
		// its node: one docker ps and inspect per NodesFor serve them all
		// (a button's INVITE leaves two docker commands sooner).
		d.R.NodesFor = NodesFor
	}
	s := &Server{cfg: cfg, loopback: loop, hub: NewHub()}
	if !loop {
		s.token = cfg.Token
		if s.token == "" {
			b := make([]byte, 16)
			if _, err := rand.Read(b); err != nil {
				return nil, fmt.Errorf("console: token: %w", err)
			}
			s.token = hex.EncodeToString(b)
		} else if len(s.token) < 16 {
			return nil, errors.New("console: a token must be at least 16 characters")
		}
	}
	s.poller = newPoller(cfg, s.hub)
	if err := s.routes(); err != nil {
		return nil, err
	}
	return s, nil
}

// Token is the token browsers need ("" on loopback: none).
func (s *Server) Token() string { return s.token }

// Hub is the server's broadcaster.
func (s *Server) Hub() *Hub { return s.hub }

// Handler is the console's HTTP handler with its checks.
func (s *Server) Handler() http.Handler { return s.guard(s.mux) }

// Run serves on ln and polls the lab until ctx ends.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go s.poller.run(ctx)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) routes() error {
	m := http.NewServeMux()
	phone, err := s.phonePage()
	if err != nil {
		return fmt.Errorf("console: the browser phone: %w", err)
	}
	m.Handle("GET /phone", phone)
	m.Handle("GET /phone/", phone)
	static, _ := fs.Sub(assets, "assets")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, static, "index.html")
	})
	m.HandleFunc("GET /events", s.hub.ServeHTTP)
	m.HandleFunc("GET /api/meta", s.meta)
	m.HandleFunc("GET /api/state", s.state)
	m.HandleFunc("GET /ladder", s.ladder)
	m.HandleFunc("GET /api/exercises", s.exercises)
	m.HandleFunc("POST /api/phone", s.phone)
	m.HandleFunc("POST /api/set", s.set)
	m.HandleFunc("POST /api/exercise", s.exercise)
	m.HandleFunc("POST /api/doctor", s.doctor)
	m.HandleFunc("POST /api/reset", s.reset)
	s.mux = m
	return nil
}

// guard runs the checks every request passes: the Host on loopback, the
// token elsewhere, the Origin of anything that is not a GET.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if s.loopback && !loopbackHost(r.Host) {
			http.Error(w, "console: this console answers only to a loopback host name (127.0.0.1, localhost)", http.StatusMisdirectedRequest)
			return
		}
		if !s.loopback {
			if q := r.URL.Query().Get(QueryName); q != "" && r.Method == http.MethodGet {
				if !s.tokenOK(q) {
					http.Error(w, "console: wrong token", http.StatusUnauthorized)
					return
				}
				// The token moves into a cookie and out of the address
				// bar (and of the history, the projector's screen).
				http.SetCookie(w, &http.Cookie{Name: CookieName, Value: q, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
				u := *r.URL
				qs := u.Query()
				qs.Del(QueryName)
				u.RawQuery = qs.Encode()
				http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
				return
			}
			if !s.authorized(r) {
				http.Error(w, "console: a token is required: open the address printed at start (…/?token=…) or send "+HeaderName, http.StatusUnauthorized)
				return
			}
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := sameOrigin(r); err != nil {
				http.Error(w, "console: "+err.Error(), http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) tokenOK(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(s.token)) == 1
}

func (s *Server) authorized(r *http.Request) bool {
	if h := r.Header.Get(HeaderName); h != "" {
		return s.tokenOK(h)
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return s.tokenOK(c.Value)
	}
	return false
}

// sameOrigin: a state-changing request carries the console's own Origin.
// Browsers always send Origin on a POST; a request without one is not from
// a page of ours (scripts use the siplab CLI).
func sameOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return errors.New("a state-changing request needs an Origin header (the console's own page)")
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bad Origin %q", o)
	}
	if !strings.EqualFold(u.Host, r.Host) || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("Origin %s is not this console (%s)", o, r.Host)
	}
	return nil
}

// loopbackHost tells whether a Host header names this machine's loopback
// (a DNS name pointing at 127.0.0.1 from a web page is an attack, not a
// visitor).
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
