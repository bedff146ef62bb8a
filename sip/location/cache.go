package location

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Cache is a Service that answers from a copy of the location service's
// bindings, kept current by its watch stream (GET /v1/watch), instead of
// one HTTP request per lookup. It answers a lookup itself only when it is
// sure to be as fresh as the service would be:
//
//   - the stream is up and its snapshot applied (while it is down, every
//     lookup goes to the service directly);
//   - the AOR has a live binding in the copy (no binding, an unknown user,
//     an AOR written differently: asked directly, so 404 and 480 stay the
//     service's answers);
//   - no REGISTER for the AOR was relayed since the stream caught up with
//     it (Invalidate): the first lookup after one goes to the service,
//     whose answer carries its version (VersionHeader); the copy is used
//     again once the stream has applied that version. A binding made a
//     moment ago through the proxy is therefore always found, however late
//     the stream is. A phone that registers at the registrar directly,
//     bypassing the proxy, is as fresh as the stream (milliseconds).
//
// Expired bindings are dropped at lookup time, by the Cache's own clock.
type Cache struct {
	direct *HTTPClient
	log    *slog.Logger
	// Now is the clock bindings expire by; default time.Now.
	Now func() time.Time
	// stream is the client for the long-lived watch request: no overall
	// timeout (the stream lives for hours), heartbeats bound silence.
	stream *http.Client

	mu      sync.RWMutex
	aors    map[string][]Binding // best first; never modified in place
	version uint64
	synced  bool
	dirty   map[string]dirtyMark
	seq     uint64

	hits, direct0 atomic.Uint64
}

type dirtyMark struct {
	seq  uint64 // which Invalidate
	need uint64 // version the copy must reach; 0: not known yet
}

// NewCache returns a Cache in front of direct. It answers through direct
// until Run has the stream up.
func NewCache(direct *HTTPClient, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.Default()
	}
	return &Cache{
		direct: direct,
		log:    log.With("component", "location-cache"),
		stream: &http.Client{Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			ResponseHeaderTimeout: 2 * time.Second,
		}},
		aors:  map[string][]Binding{},
		dirty: map[string]dirtyMark{},
	}
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Lookup implements Service.
func (c *Cache) Lookup(ctx context.Context, aor string) ([]Binding, error) {
	c.mu.RLock()
	d, dirty := c.dirty[aor]
	if c.synced && (!dirty || (d.need > 0 && c.version >= d.need)) {
		if out := alive(c.aors[aor], c.now()); len(out) > 0 {
			c.mu.RUnlock()
			c.hits.Add(1)
			return out, nil
		}
	}
	c.mu.RUnlock()
	c.direct0.Add(1)
	bs, v, err := c.direct.LookupVersion(ctx, aor)
	if err == nil && dirty && v > 0 {
		c.mu.Lock()
		// Only if no newer Invalidate came while we asked: this answer may
		// predate that REGISTER. (A mark whose version came from a
		// registrar that has restarted since is cleared here too.)
		if cur, ok := c.dirty[aor]; ok && cur.seq == d.seq {
			if c.synced && c.version >= v {
				delete(c.dirty, aor)
			} else if cur.need == 0 {
				c.dirty[aor] = dirtyMark{seq: d.seq, need: v}
			}
		}
		c.mu.Unlock()
	}
	return bs, err
}

// Invalidate implements Invalidator: aor was just registered (or
// unregistered) through the proxy.
func (c *Cache) Invalidate(aor string) {
	c.mu.Lock()
	c.seq++
	c.dirty[aor] = dirtyMark{seq: c.seq}
	c.mu.Unlock()
}

func alive(bs []Binding, now time.Time) []Binding {
	out := make([]Binding, 0, len(bs))
	for _, b := range bs {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	return out
}

// sortBest orders as the registrar answers: highest q, then most recently
// refreshed.
func sortBest(bs []Binding) {
	slices.SortStableFunc(bs, func(a, b Binding) int {
		if c := cmp.Compare(b.Q, a.Q); c != 0 {
			return c
		}
		return b.Updated.Compare(a.Updated)
	})
}

// CacheStatus is what a Cache reports for status views.
type CacheStatus struct {
	Synced  bool   `json:"synced"`
	Version uint64 `json:"version"`
	AORs    int    `json:"aors"`
	// Hits were answered from the copy, Direct by asking the service.
	Hits   uint64 `json:"hits"`
	Direct uint64 `json:"direct"`
}

// Status reports the cache's state.
func (c *Cache) Status() CacheStatus {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return CacheStatus{Synced: c.synced, Version: c.version, AORs: len(c.aors), Hits: c.hits.Load(), Direct: c.direct0.Load()}
}

// Run keeps the watch stream up until ctx ends, reconnecting with backoff;
// while it is down, lookups go to the service directly.
func (c *Cache) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := c.watch(ctx)
		c.mu.Lock()
		wasSynced := c.synced
		c.synced = false
		c.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if wasSynced {
			c.log.Warn("location watch lost, asking the registrar directly until it is back", "err", err)
		} else {
			c.log.Debug("location watch failed", "err", err)
		}
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// watch runs one stream to its end.
func (c *Cache) watch(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u := strings.TrimRight(c.direct.BaseURL, "/") + "/v1/watch"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("location: %w", err)
	}
	res, err := c.stream.Do(req)
	if err != nil {
		return fmt.Errorf("location: GET %s: %w", u, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: GET %s: %s", ErrService, u, res.Status)
	}
	// A silent stream is a dead one: three missed heartbeats end it.
	silence := 3 * WatchHeartbeat
	dead := time.AfterFunc(silence, cancel)
	defer dead.Stop()
	lines := bufio.NewReaderSize(res.Body, 64<<10)
	var long []byte // a line longer than the buffer (a snapshot)
	first := true
	for {
		line, err := lines.ReadSlice('\n')
		if err == bufio.ErrBufferFull || (long != nil && err == nil) {
			long = append(long, line...)
			if err != nil {
				continue
			}
			line, long = long, nil
		} else if err != nil {
			return fmt.Errorf("location: watch %s: %w", u, err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			continue
		}
		// Each line is one Change; the lines the registrar writes are read
		// without reflection, anything else as any JSON.
		var ch Change
		if !ParseChangeJSON(line, &ch) {
			ch = Change{}
			if err := json.Unmarshal(line, &ch); err != nil {
				return fmt.Errorf("location: watch %s: %w", u, err)
			}
		}
		dead.Reset(silence)
		if first != ch.Snapshot {
			return fmt.Errorf("%w: watch %s: snapshot=%v on line %s", ErrService, u, ch.Snapshot, map[bool]string{true: "1", false: "> 1"}[first])
		}
		if first {
			c.log.Info("location watch up", "version", ch.Version, "bindings", len(ch.Bindings))
		}
		first = false
		c.apply(ch)
	}
}

func (c *Cache) apply(ch Change) {
	var aors map[string][]Binding
	if ch.Snapshot {
		aors = make(map[string][]Binding)
		for _, b := range ch.Bindings {
			aors[b.AOR] = append(aors[b.AOR], b)
		}
		for _, bs := range aors {
			sortBest(bs)
		}
	} else if ch.AOR != "" {
		sortBest(ch.Bindings)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case ch.Snapshot:
		c.aors = aors
		c.synced = true
	case ch.AOR == "":
		// heartbeat
	case len(ch.Bindings) == 0:
		delete(c.aors, ch.AOR)
	default:
		c.aors[ch.AOR] = ch.Bindings
	}
	if ch.Version > c.version || ch.Snapshot {
		c.version = ch.Version
	}
	for aor, d := range c.dirty {
		if d.need > 0 && d.need <= c.version {
			delete(c.dirty, aor)
		}
	}
}
