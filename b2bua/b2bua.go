// Package b2bua is the lab's PBX: a back-to-back user agent. Every call is
// terminated on one dialog (the caller's, where the PBX is the UAS) and
// re-originated on another (the callee's, where the PBX is the UAC), so an
// intern sees two Call-IDs where a proxy shows one. Both legs carry the
// same X-Siplab-Call header, so captures and ladders can group them.
//
// What it does with the call in between is the PBX's business: a dial plan
// of extensions, media anchored through an RTP relay or passed directly
// between the phones (a live toggle: direct media between NATed phones is
// the classic no-audio bug), hold with music on hold, forward on busy / no
// answer, voicemail recorded to WAV with a message-waiting NOTIFY.
//
// Like the phones, dialogs are kept here on top of sipgo's transactions
// only, so every field of them is visible in status.
package b2bua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/b2bleg"
	"github.com/siplab/siplab/sip/sipcheck"
	"github.com/siplab/siplab/sip/sipdialog"
	"github.com/siplab/siplab/sip/sipnet"
)

// allowed are the methods the PBX answers, sent in Allow.
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, MESSAGE, REFER, NOTIFY, SUBSCRIBE, PRACK"

// maxCalls bounds the calls kept for status; the oldest ended ones go first.
const maxCalls = 200

// B2BUA is a running PBX.
type B2BUA struct {
	cfg      Config
	ep       *sipnet.Endpoint
	client   *sipgo.Client
	log      *slog.Logger
	mediaIP  netip.Addr
	settings settingsBox
	// initial is the startup settings: `set X default` and Reset.
	initial Settings

	mu     sync.Mutex
	calls  []*Call
	legs   map[sipdialog.Key]*leg
	nextID int
	closed bool
	// mailboxes counts new messages per user, for message-summary.
	mailboxes map[string]*mailbox
	subs      map[sipdialog.Key]*subscription
	counters  Counters

	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// Counters are totals since start.
type Counters struct {
	Calls     uint64 `json:"calls"`
	Answered  uint64 `json:"answered"`
	Failed    uint64 `json:"failed"`
	Forwarded uint64 `json:"forwarded"`
	Voicemail uint64 `json:"voicemail"`
	Refused   uint64 `json:"refused"`
}

// New makes a PBX on a bound endpoint (it takes ownership and closes it).
// Nothing is served until Start.
func New(cfg Config, ep *sipnet.Endpoint) (*B2BUA, error) {
	if ep == nil {
		return nil, fmt.Errorf("%w: no SIP endpoint", ErrConfig)
	}
	if err := cfg.validate(); err != nil {
		ep.Close()
		return nil, err
	}
	cl, err := ep.Client(sipnet.UDP)
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("%w: the PBX needs UDP: %w", ErrConfig, err)
	}
	b := &B2BUA{
		cfg:       cfg,
		ep:        ep,
		client:    cl,
		log:       cfg.Logger.With("component", "b2bua"),
		mediaIP:   cfg.MediaIP,
		legs:      map[sipdialog.Key]*leg{},
		mailboxes: map[string]*mailbox{},
		done:      make(chan struct{}),
	}
	if !b.mediaIP.IsValid() {
		b.mediaIP = ep.Addr().Addr()
	}
	b.settings.Store(*cfg.Settings)
	b.initial = *cfg.Settings
	srv := ep.Server
	srv.OnInvite(b.onInvite)
	srv.OnAck(b.onAck)
	srv.OnBye(b.onBye)
	srv.OnCancel(b.onCancel)
	srv.OnOptions(b.onOptions)
	srv.OnInfo(b.onInDialog)
	srv.OnUpdate(b.onInDialog)
	srv.OnMessage(b.onInDialog)
	srv.OnNotify(b.onInDialog)
	srv.OnRefer(b.onRefer)
	srv.OnSubscribe(b.onSubscribe)
	srv.OnPrack(b.onPrack)
	srv.OnNoRoute(b.onOther)
	return b, nil
}

// Start serves SIP until ctx ends or Close.
func (b *B2BUA) Start(ctx context.Context) error {
	if err := b.ep.Start(ctx); err != nil {
		return err
	}
	b2bleg.CloseOnCancel(ctx, b.done, b.Close)
	b.log.Info("pbx running", "sip", b.ep.Addr(), "media", b.mediaIP, "proxy", b.cfg.Proxy, "domain", b.cfg.Domain)
	return nil
}

// LocalAddr is the bound SIP address.
func (b *B2BUA) LocalAddr() netip.AddrPort { return b.ep.Addr() }

// Close stops media and the endpoint without signalling; use Shutdown first
// to hang calls up politely.
func (b *B2BUA) Close() error {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		calls := slices.Clone(b.calls)
		b.mu.Unlock()
		close(b.done)
		for _, c := range calls {
			c.releaseMedia()
		}
		b.ep.Close()
		b.wg.Wait()
	})
	return nil
}

// Shutdown hangs up every call (BYE on both legs), waiting until ctx ends.
func (b *B2BUA) Shutdown(ctx context.Context) {
	b.mu.Lock()
	calls := slices.Clone(b.calls)
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() { c.hangupAll(ctx, "PBX shutting down") })
	}
	wg.Wait()
}

// Settings returns the live settings.
func (b *B2BUA) Settings() Settings { return b.settings.get() }

// Set changes one live setting.
func (b *B2BUA) Set(name, value string) error {
	if strings.EqualFold(strings.TrimSpace(value), "default") {
		v, err := b.initial.Get(name)
		if err != nil {
			return err
		}
		value = v
	}
	s, err := b.settings.Update(func(s *Settings) error { return s.Set(name, value) })
	if err != nil {
		return err
	}
	b.log.Info("setting changed", "name", normName(name), "value", value)
	if normName(name) == SettingMediaAnchor {
		// Calls already up follow too, by re-INVITE.
		b.reanchorCalls(s.MediaAnchor)
	}
	return nil
}

func (b *B2BUA) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// --- UAS plumbing -------------------------------------------------------

// check refuses what a UAS must not process (RFC 3261 §8.2), the same way
// every siplab daemon does; true means a response was sent.
func (b *B2BUA) check(req *sip.Request, tx sip.ServerTransaction) bool {
	prob := sipcheck.Request(req, sipcheck.Options{Role: sipcheck.UAS, Supported: []string{"100rel"},
		Bodies: []string{"application/sdp", "text/plain", "application/dtmf-relay", "application/dtmf",
			"message/sipfrag", "application/simple-message-summary"}})
	if prob == nil {
		where, foreign := b.foreignRoute(req) // routepolicy.go
		if !foreign {
			return false
		}
		b.log.Info("request refused: relaying denied", "method", req.Method, "route", where,
			"call_id", sipdialog.CallID(req), "source", req.Source())
		b.mu.Lock()
		b.counters.Refused++
		b.mu.Unlock()
		b.send(tx, sip.NewResponseFromRequest(req, sip.StatusForbidden, "Relaying Denied: Route to "+where+" not allowed", nil))
		return true
	}
	b.log.Info("request refused", "method", req.Method, "code", prob.Code, "detail", prob.Detail, "call_id", sipdialog.CallID(req))
	b.mu.Lock()
	b.counters.Refused++
	b.mu.Unlock()
	if res := sipcheck.Respond(req, prob); res != nil {
		b.send(tx, res)
	}
	return true
}

func (b *B2BUA) send(tx sip.ServerTransaction, res *sip.Response) {
	if err := tx.Respond(res); err != nil {
		b.log.Warn("respond failed", "code", res.StatusCode, "err", err)
	}
}

// reply answers req with code, extra headers, and a Warning when text is set.
func (b *B2BUA) reply(tx sip.ServerTransaction, req *sip.Request, code int, reason, text string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if text != "" {
		res.AppendHeader(b.warning(text))
	}
	b.send(tx, res)
}

func (b *B2BUA) warning(text string) sip.Header {
	text = strings.ReplaceAll(text, `"`, "'")
	return sip.NewHeader("Warning", fmt.Sprintf("399 %s \"%s\"", b.ep.Addr().Addr(), text))
}

// contact is the PBX's own Contact: in-dialog requests come back here.
func (b *B2BUA) contact() *sip.ContactHeader {
	a := b.ep.Addr()
	return &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "pbx", Host: a.Addr().String(), Port: int(a.Port())}}
}

// lookupLeg finds the leg an in-dialog request belongs to.
func (b *B2BUA) lookupLeg(req *sip.Request) *leg {
	key := sipdialog.KeyOf(req)
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.legs[key]
	if l == nil {
		return nil
	}
	if l.Dlg.RemoteTag != "" && l.Dlg.RemoteTag != sipdialog.FromTag(req) {
		return nil
	}
	return l
}

func (b *B2BUA) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if b.check(req, tx) {
		return
	}
	if sipdialog.ToTag(req) != "" && b.lookupLeg(req) == nil {
		b.reply(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", "")
		return
	}
	b.reply(tx, req, sip.StatusOK, "OK", "", sip.NewHeader("Allow", allowed),
		sip.NewHeader("Accept", "application/sdp"), b.contact())
}

// onCancel sees only CANCELs that matched no INVITE transaction; sipgo
// answers the others (200, and 487 to the INVITE) and tells the call.
func (b *B2BUA) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	if b.check(req, tx) {
		return
	}
	b.reply(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", "")
}

func (b *B2BUA) onOther(req *sip.Request, tx sip.ServerTransaction) {
	if b.check(req, tx) {
		return
	}
	if sipdialog.ToTag(req) != "" && b.lookupLeg(req) == nil {
		b.reply(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", "")
		return
	}
	b.reply(tx, req, sip.StatusMethodNotAllowed, "Method Not Allowed", "", sip.NewHeader("Allow", allowed))
}

// --- UAC plumbing -------------------------------------------------------

// transact sends req in a new client transaction; sipgo adds the Via.
func (b *B2BUA) transact(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	tx, err := b.client.TransactionRequest(ctx, req, sipgo.ClientRequestBuild)
	if err != nil {
		return nil, fmt.Errorf("b2bua: send %s: %w", req.Method, err)
	}
	return tx, nil
}

// do sends a non-INVITE request and waits for its final response.
func (b *B2BUA) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	tx, err := b.transact(ctx, req)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	res, err := sipnet.FinalResponse(ctx, tx, b.done)
	switch {
	case errors.Is(err, sipnet.ErrStopped):
		return nil, ErrClosed
	case errors.Is(err, sipnet.ErrNoFinalResponse):
		return nil, fmt.Errorf("b2bua: %s %s: %w", req.Method, req.Recipient.String(), err)
	}
	return res, err
}

// newCallID is a Call-ID for a leg the PBX originates.
func (b *B2BUA) newCallID() string {
	return sip.GenerateTagN(16) + "@" + b.ep.Addr().Addr().String()
}

// lifetime is a context that ends after d or when the PBX closes.
func (b *B2BUA) lifetime(d time.Duration) (context.Context, context.CancelFunc) {
	return b2bleg.Lifetime(b.done, d)
}
