package location

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/siplab/siplab/internal/ctl"
)

// ErrService is returned by HTTPClient when the location service answers
// with something other than bindings or "unknown user".
var ErrService = errors.New("location: service error")

// Lister is implemented by services that can list every live binding
// (the registrar does); NewHandler serves it as GET /v1/bindings.
type Lister interface {
	Bindings() []Binding
}

// LookupResult is the JSON body of GET /v1/location/{user}.
type LookupResult struct {
	AOR      string    `json:"aor"`
	Bindings []Binding `json:"bindings"`
}

// BindingsResult is the JSON body of GET /v1/bindings.
type BindingsResult struct {
	Bindings []Binding `json:"bindings"`
}

type errorBody struct {
	Error string `json:"error"`
}

// NewHandler serves a Service over HTTP so a proxy in another process can
// route by it:
//
//	GET /v1/location/{user}  200 {"aor":...,"bindings":[...]}, 404 {"error":...}
//	GET /v1/bindings         200 {"bindings":[...]} (when svc is a Lister)
//	GET /v1/watch            200, one Change per line: a snapshot, then
//	                         every change, heartbeats (when svc is a Watcher)
//
// A lookup's answer carries VersionHeader when svc is a Watcher.
// {user} is a bare user name or a URL-escaped SIP URI.
func NewHandler(svc Service) http.Handler {
	mux := http.NewServeMux()
	watcher, _ := svc.(Watcher)
	mux.HandleFunc("GET /v1/location/{user}", func(w http.ResponseWriter, r *http.Request) {
		user := r.PathValue("user")
		bs, err := svc.Lookup(r.Context(), user)
		if watcher != nil {
			// Read after the lookup: every change it saw is numbered at
			// most this, so a cache at this version has seen them too.
			w.Header().Set(VersionHeader, strconv.FormatUint(watcher.Version(), 10))
		}
		switch {
		case errors.Is(err, ErrUnknownUser):
			ctl.WriteJSON(w, http.StatusNotFound, errorBody{Error: err.Error()})
			return
		case err != nil:
			slog.Default().Warn("location lookup failed", "user", user, "err", err)
			ctl.WriteJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
			return
		}
		res := LookupResult{AOR: user, Bindings: bs}
		if res.Bindings == nil {
			res.Bindings = []Binding{}
		}
		if c, ok := svc.(interface{ CanonicalAOR(string) (string, error) }); ok {
			if aor, err := c.CanonicalAOR(user); err == nil {
				res.AOR = aor
			}
		} else if len(bs) > 0 {
			res.AOR = bs[0].AOR
		}
		ctl.WriteJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("GET /v1/bindings", func(w http.ResponseWriter, r *http.Request) {
		l, ok := svc.(Lister)
		if !ok {
			ctl.WriteJSON(w, http.StatusNotImplemented, errorBody{Error: "this location service cannot list bindings"})
			return
		}
		res := BindingsResult{Bindings: l.Bindings()}
		if res.Bindings == nil {
			res.Bindings = []Binding{}
		}
		ctl.WriteJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("GET /v1/watch", func(w http.ResponseWriter, r *http.Request) {
		if watcher == nil {
			ctl.WriteJSON(w, http.StatusNotImplemented, errorBody{Error: "this location service cannot stream changes"})
			return
		}
		serveWatch(w, r, watcher)
	})
	return mux
}

// WatchHeartbeat is how often an idle watch stream sends a line, so a
// client notices a dead connection within a few of them.
var WatchHeartbeat = 5 * time.Second

// watchLinger is the least time between two flushes of a watch stream
// under load: what a watcher's copy may lag behind the registrar by,
// beyond the network. A proxy's own REGISTERs do not wait for it (Cache's
// Invalidate); 2 ms at 10,000 REGISTERs a second is ~20 lines a write.
const watchLinger = 2 * time.Millisecond

func serveWatch(w http.ResponseWriter, r *http.Request, wt Watcher) {
	snap, changes, stop := wt.Watch()
	defer stop()
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	// One line per change, written by AppendChangeJSON: at thousands of
	// REGISTERs a second the reflective encoder was most of the stream's
	// cost. (It does not escape <, > and & as \u003c...: the same JSON to
	// any reader.)
	var line []byte
	encode := func(c *Change) error {
		var err error
		if line, err = AppendChangeJSON(line[:0], c); err != nil {
			return err
		}
		line = append(line, '\n')
		_, err = w.Write(line)
		return err
	}
	last := snap.Version
	if err := encode(&snap); err != nil {
		return
	}
	if cap(line) > 1<<20 {
		line = nil // a large snapshot's buffer is not kept for the stream
	}
	tick := time.NewTicker(WatchHeartbeat)
	defer tick.Stop()
	// Under load the stream is flushed at most once per watchLinger: the
	// lines of what arrived meanwhile leave in one write, read by the
	// watcher in one read, instead of a write and a read (and a wake-up on
	// each side) per REGISTER. An idle stream flushes a change at once.
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	var lastFlush time.Time
	pending := false
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
		lastFlush, pending = time.Now(), false
	}
	flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case c, ok := <-changes:
			if !ok {
				return // fell behind: the client resyncs
			}
			// Send what is queued before flushing: one write for a burst.
			for {
				if err := encode(&c); err != nil {
					return
				}
				last = c.Version
				if len(changes) == 0 {
					break
				}
				if c, ok = <-changes; !ok {
					return
				}
			}
			if wait := watchLinger - time.Since(lastFlush); wait > 0 {
				if !pending {
					linger.Reset(wait)
					pending = true
				}
				continue
			}
			flush()
		case <-linger.C:
			if pending {
				flush()
			}
		case <-tick.C:
			// The last version sent, not the service's: a heartbeat must
			// not claim changes still queued.
			if err := encode(&Change{Version: last}); err != nil {
				return
			}
			flush()
		}
	}
}

// HTTPClient is a Service backed by a location HTTP API (NewHandler).
type HTTPClient struct {
	// BaseURL is e.g. "http://10.0.0.20:8080".
	BaseURL string
	// HTTP is the client to use; nil means one with a 2 s timeout. A proxy
	// must never wait long on a lookup: the caller's INVITE is waiting.
	HTTP *http.Client
}

// defaultHTTP keeps enough idle connections for a proxy doing one lookup
// per INVITE: Go's default of 2 per host churns a socket per call.
var defaultHTTP = &http.Client{
	Timeout: 2 * time.Second,
	Transport: &http.Transport{
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	},
}

// maxBody bounds what a lookup will read from a misbehaving server.
const maxBody = 8 << 20

func (c *HTTPClient) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

func (c *HTTPClient) get(ctx context.Context, path string, out any) (http.Header, error) {
	u := strings.TrimRight(c.BaseURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("location: %w", err)
	}
	res, err := c.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("location: GET %s: %w", u, err)
	}
	defer res.Body.Close()
	body := io.LimitReader(res.Body, maxBody)
	switch res.StatusCode {
	case http.StatusOK:
		if err := json.NewDecoder(body).Decode(out); err != nil {
			return nil, fmt.Errorf("%w: GET %s: decode: %w", ErrService, u, err)
		}
		return res.Header, nil
	case http.StatusNotFound:
		var e errorBody
		json.NewDecoder(body).Decode(&e)
		if e.Error == "" {
			// A 404 without our error body is a wrong URL, not an
			// unknown user: do not let a misconfiguration look like one.
			return nil, fmt.Errorf("%w: GET %s: 404 without error body", ErrService, u)
		}
		return nil, fmt.Errorf("%w (%s)", ErrUnknownUser, e.Error)
	default:
		var e errorBody
		json.NewDecoder(body).Decode(&e)
		return nil, fmt.Errorf("%w: GET %s: %s %s", ErrService, u, res.Status, e.Error)
	}
}

// Lookup implements Service.
func (c *HTTPClient) Lookup(ctx context.Context, aor string) ([]Binding, error) {
	bs, _, err := c.LookupVersion(ctx, aor)
	return bs, err
}

// LookupVersion is Lookup that also returns the service's VersionHeader
// (0 when it sends none).
func (c *HTTPClient) LookupVersion(ctx context.Context, aor string) ([]Binding, uint64, error) {
	var res LookupResult
	h, err := c.get(ctx, "/v1/location/"+url.PathEscape(aor), &res)
	if err != nil {
		return nil, 0, err
	}
	v, _ := strconv.ParseUint(h.Get(VersionHeader), 10, 64)
	return res.Bindings, v, nil
}

// Bindings lists every live binding the service knows.
func (c *HTTPClient) Bindings(ctx context.Context) ([]Binding, error) {
	var res BindingsResult
	if _, err := c.get(ctx, "/v1/bindings", &res); err != nil {
		return nil, err
	}
	return res.Bindings, nil
}
