// Package registrar is the lab's RFC 3261 §10 registrar and location
// service: it authenticates REGISTERs (sipauth), keeps for every binding both
// the Contact as the phone wrote it and the address the REGISTER was really
// seen from, persists bindings in an fsync'd journal before acknowledging
// them, and answers location lookups (location.Service).
package registrar

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/siplab/siplab/sip/guard"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/sip/sipauth"
	"github.com/siplab/siplab/sip/sipnet"
	"github.com/siplab/siplab/sip/txlimit"
)

// Registrar handles REGISTER and serves the bindings it stores.
type Registrar struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	auth    *sipauth.Authenticator
	users   *sipauth.Users
	store   *store
	persist *persist // nil when DataDir is empty
	guard   *guard.AuthGuard
	txl     *txlimit.Limiter
	ep      atomic.Pointer[sipnet.Endpoint] // set by Attach (UDP): its direct path's counts

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var _ location.Service = (*Registrar)(nil)
var _ location.Lister = (*Registrar)(nil)

// New loads any bindings stored in cfg.DataDir (replaying the journal,
// compacting it) and returns a Registrar ready to Attach.
func New(cfg Config) (*Registrar, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Registrar{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "registrar", "domain", cfg.Domain),
		now:   cfg.Now,
		users: cfg.Users,
		store: newStore(),
		stop:  make(chan struct{}),
	}
	g, err := guard.NewAuthGuard(*cfg.Guard, r.log, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("registrar: %w", err)
	}
	r.guard = g
	r.txl = txlimit.New(cfg.MaxTransactions)
	r.auth = cfg.Auth
	if r.auth == nil {
		a, err := sipauth.New(sipauth.Config{Realm: cfg.Realm, Users: cfg.Users, Now: cfg.Now, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("registrar: %w", err)
		}
		r.auth = a
	}
	if cfg.DataDir != "" {
		p, err := openPersist(cfg.DataDir, cfg.CompactBytes, r.store, r.log, r.now())
		if err != nil {
			return nil, err
		}
		r.persist = p
		r.store.journal = p.journal
	}
	aors, bindings := r.store.count()
	r.log.Info("registrar ready", "realm", cfg.Realm, "users", r.users.Len(), "aors", aors, "bindings", bindings,
		"data_dir", cfg.DataDir)
	r.wg.Add(1)
	go r.maintain()
	return r, nil
}

// maintain drops expired bindings and compacts the journal periodically.
func (r *Registrar) maintain() {
	defer r.wg.Done()
	gc := time.NewTicker(r.cfg.GCInterval)
	defer gc.Stop()
	compact := time.NewTicker(r.cfg.CompactInterval)
	defer compact.Stop()
	var full chan struct{}
	if r.persist != nil {
		full = r.persist.journal.full
	}
	for {
		select {
		case <-full:
			if err := r.Compact(); err != nil {
				r.log.Error("journal compaction failed", "err", err)
			}
		case <-r.stop:
			return
		case <-gc.C:
			if n := r.store.gc(r.now()); n > 0 {
				r.log.Debug("expired bindings dropped", "count", n)
			}
		case <-compact.C:
			if err := r.Compact(); err != nil {
				r.log.Error("journal compaction failed", "err", err)
			}
		}
	}
}

// Compact folds the journal into a fresh snapshot now.
func (r *Registrar) Compact() error {
	if r.persist == nil {
		return nil
	}
	return r.persist.compact(r.store, r.now())
}

// Attach registers the registrar's handlers on ep, before ep.Start:
// REGISTER, OPTIONS (so it can be pinged), and 405 with Allow for
// everything else. REGISTERs over UDP take sipnet's direct path, without
// a sipgo server transaction (see serveDirect); the rest goes through
// ep's sipgo server.
func (r *Registrar) Attach(ep *sipnet.Endpoint) {
	srv := ep.Server
	srv.OnRegister(r.serve)
	srv.OnOptions(r.serve)
	srv.OnNoRoute(r.serve)
	if ep.PacketConn() != nil {
		// Only fails without UDP, checked above.
		_ = ep.Direct(sip.REGISTER, sipnet.DirectHandler{Serve: r.serveDirect, Keep: kept})
		r.ep.Store(ep)
	}
}

// serveDirect answers a REGISTER from sipnet's direct path. What sipgo's
// transaction gave it, the direct path gives it too: a retransmission
// arriving while the REGISTER is served is absorbed, and one arriving
// after its 200 gets that 200 again (kept), never a second run through
// the store, which would refuse the same CSeq as out of order. A 200
// that must wait for its journal record's fsync is held, not waited for:
// the journal's flusher releases a group commit's 200s together once the
// fsync returned (or 500s if it failed). The transaction cap counts the
// REGISTERs being served, held ones included.
func (r *Registrar) serveDirect(req *sip.Request) sipnet.DirectReply {
	if !r.txl.Take() {
		r.log.Debug("transaction cap reached", "call_id", callID(req), "max", r.txl.Max())
		return sipnet.DirectReply{Response: overloadResponse(req)}
	}
	res, h := r.handle(req)
	if h == nil {
		r.txl.Release()
		return sipnet.DirectReply{Response: res}
	}
	return sipnet.DirectReply{Response: res, Hold: func(send func(*sip.Response)) {
		h.done.when(func() {
			r.txl.Release()
			send(h.settle())
		})
	}}
}

func (r *Registrar) serve(req *sip.Request, tx sip.ServerTransaction) {
	var res *sip.Response
	if req.IsAck() || r.txl.Acquire(tx) {
		// sipgo gives handlers no context; the journal wait ends at Close
		// anyway because closing flushes and completes every pending batch.
		res = r.Handle(context.Background(), req)
	} else {
		r.log.Debug("transaction cap reached", "call_id", callID(req), "max", r.txl.Max())
		res = overloadResponse(req)
	}
	if res == nil || tx == nil {
		return
	}
	if err := tx.Respond(res); err != nil {
		r.log.Warn("cannot send response", "call_id", callID(req), "code", res.StatusCode, "err", err)
	}
	if stateless(res) {
		// Free the transaction now rather than after Timer J: terminating
		// stops its timers and removes it from sipgo's table (ServerTx.delete).
		tx.Terminate()
	}
}

// Close stops background work and closes the journal after making
// everything appended durable. It is safe to call twice.
func (r *Registrar) Close() error {
	r.closeOnce.Do(func() {
		close(r.stop)
		r.wg.Wait()
		if r.persist != nil {
			r.closeErr = r.persist.close()
		}
	})
	return r.closeErr
}

// Authenticator is the digest authenticator in use (a proxy in the same
// process may share it).
func (r *Registrar) Authenticator() *sipauth.Authenticator { return r.auth }

// userOf resolves a lookup key: "alice", "alice@domain", "sip:alice@domain".
func (r *Registrar) userOf(aor string) (string, error) {
	s := strings.TrimSpace(aor)
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = s[1 : len(s)-1]
	}
	user := s
	if strings.Contains(s, ":") {
		var u sip.Uri
		if err := sip.ParseUri(s, &u); err != nil || (u.Scheme != "sip" && u.Scheme != "sips") || u.User == "" {
			return "", fmt.Errorf("%w: %q is not a SIP AOR", location.ErrUnknownUser, aor)
		}
		if !r.serves(u.Host, u.Port) {
			return "", fmt.Errorf("%w: %q is not in domain %s", location.ErrUnknownUser, aor, r.cfg.Domain)
		}
		user = u.User
	} else if name, host, ok := strings.Cut(s, "@"); ok {
		if !r.serves(host, 0) {
			return "", fmt.Errorf("%w: %q is not in domain %s", location.ErrUnknownUser, aor, r.cfg.Domain)
		}
		user = name
	}
	if _, ok := r.users.Lookup(user); !ok {
		return "", fmt.Errorf("%w: %q", location.ErrUnknownUser, aor)
	}
	return user, nil
}

// CanonicalAOR maps a lookup key to "sip:user@domain".
func (r *Registrar) CanonicalAOR(aor string) (string, error) {
	user, err := r.userOf(aor)
	if err != nil {
		return "", err
	}
	return "sip:" + user + "@" + r.cfg.Domain, nil
}

// Lookup implements location.Service: the live bindings of a provisioned
// user, best first (highest q, then most recently refreshed).
func (r *Registrar) Lookup(ctx context.Context, aor string) ([]location.Binding, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	canon, err := r.CanonicalAOR(aor)
	if err != nil {
		return nil, err
	}
	return r.store.lookup(canon, r.now()), nil
}

// Bindings lists every live binding, ordered by AOR, for status views.
func (r *Registrar) Bindings() []location.Binding {
	return r.store.all(r.now())
}

// Status is a summary for /v1/status.
type Status struct {
	Domain     string `json:"domain"`
	Realm      string `json:"realm"`
	Users      int    `json:"users"`
	AORs       int    `json:"aors"`
	Bindings   int    `json:"bindings"`
	DataDir    string `json:"data_dir,omitempty"`
	Generation uint64 `json:"journal_generation,omitempty"`
	// JournalRecords / JournalSyncs is the group-commit batch size.
	JournalRecords uint64 `json:"journal_records,omitempty"`
	JournalSyncs   uint64 `json:"journal_syncs,omitempty"`
	// Summary is one line for people (`siplab status`): who is registered
	// and from where the REGISTER was really seen.
	Summary string `json:"summary"`
	// Settings are the live settings (failed-auth guard, transaction cap).
	Settings Settings `json:"settings"`
	// Blocked are the sources refused for failed authentication now.
	Blocked []guard.Block `json:"blocked"`
	// FailedAuths counts wrong passwords and unknown users since start;
	// Transactions are the server transactions held now (sipgo's, and the
	// REGISTERs being served on the direct path), Overloaded the requests
	// answered 503 for the cap.
	FailedAuths  uint64 `json:"failed_auths"`
	Transactions int    `json:"transactions"`
	Overloaded   uint64 `json:"overloaded"`
	// Direct is the UDP direct path's work: REGISTERs being served, 200s
	// kept for retransmissions, retransmissions answered and absorbed.
	Direct sipnet.DirectStats `json:"direct"`
}

// Status reports counts.
func (r *Registrar) Status() Status {
	live := r.Bindings()
	aors := map[string]bool{}
	for _, b := range live {
		aors[b.AOR] = true
	}
	s := Status{Domain: r.cfg.Domain, Realm: r.cfg.Realm, Users: r.users.Len(), AORs: len(aors), Bindings: len(live), DataDir: r.cfg.DataDir}
	s.Summary = summarise(live)
	s.Settings = r.Settings()
	s.Blocked = r.Blocked()
	s.FailedAuths = r.guard.Stats().FailedAuths
	s.Transactions, s.Overloaded = r.txl.Held(), r.txl.Refused()
	if ep := r.ep.Load(); ep != nil {
		s.Direct = ep.DirectStats()
	}
	if r.persist != nil {
		s.Generation = r.persist.generation()
		s.JournalRecords = r.persist.journal.recs.Load()
		s.JournalSyncs = r.persist.journal.syncs.Load()
	}
	return s
}

// summarise lists each binding as user=written-contact (seen source).
func summarise(live []location.Binding) string {
	if len(live) == 0 {
		return "no bindings"
	}
	parts := make([]string, 0, len(live))
	for _, b := range live {
		user := strings.TrimPrefix(b.AOR, "sip:")
		if i := strings.IndexByte(user, '@'); i >= 0 {
			user = user[:i]
		}
		parts = append(parts, fmt.Sprintf("%s=%s (seen %s/%s)", user, b.ContactURI, b.Source, b.Transport))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}
