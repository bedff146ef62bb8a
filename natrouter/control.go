package natrouter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultSocket is where the daemon serves its control API. A scratch image
// has no shell, so people reach it with `docker exec <ctr> /natrouter ...`,
// whose subcommands are clients of this socket.
const DefaultSocket = "/run/siplab/natrouter.sock"

// SettingsRequest is the wire form of Settings.
type SettingsRequest struct {
	Preset  string `json:"preset,omitempty"`
	Pinhole string `json:"pinhole,omitempty"` // a Go duration: "20s"
	ALG     string `json:"alg,omitempty"`
}

// SetResult answers a settings change, a reset or a flush.
type SetResult struct {
	Flushed int `json:"flushed"`
	// Dropped are the mappings that existed before the flush: each
	// inside host gets a new public port with its next packet, and
	// anything registered at the old one is unreachable until then.
	Dropped []Mapping `json:"dropped,omitempty"`
	Status  Status    `json:"status"`
}

type errorBody struct {
	Error string `json:"error"`
}

// ListenControl binds the control socket, creating its directory and
// replacing a stale socket left by a previous run.
func ListenControl(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("natrouter: control socket dir: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("natrouter: remove stale control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("natrouter: control socket: %w", err)
	}
	return ln, nil
}

// ServeControl serves the control API for r on ln until ctx is done. It
// returns nil on a clean shutdown.
func ServeControl(ctx context.Context, ln net.Listener, r *Router, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	srv := &http.Server{
		Handler:           ControlHandler(r),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(shut)
		case <-done:
		}
	}()
	err := srv.Serve(ln)
	close(done)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("natrouter: control server: %w", err)
}

// ControlHandler is the HTTP API:
//
//	GET  /v1/status    -> Status
//	POST /v1/settings  SettingsRequest -> SetResult (reprograms and flushes)
//	POST /v1/flush     -> SetResult
//	POST /v1/reset     -> SetResult (startup preset, pinhole and ALG; flushes)
func ControlHandler(r *Router) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, req *http.Request) {
		st, err := r.Status(req.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /v1/settings", func(w http.ResponseWriter, req *http.Request) {
		var sr SettingsRequest
		dec := json.NewDecoder(io.LimitReader(req.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sr); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("bad settings body: %w", err))
			return
		}
		s, err := sr.withDefaults(r.Initial()).settings()
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		before := mappings(req.Context(), r)
		n, err := r.Set(req.Context(), s)
		if err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, ErrUnknownPreset) || errors.Is(err, ErrUnknownALG) || errors.Is(err, ErrBadPinhole) {
				code = http.StatusBadRequest
			}
			writeError(w, code, err)
			return
		}
		writeResult(w, r, req.Context(), n, before)
	})
	mux.HandleFunc("POST /v1/flush", func(w http.ResponseWriter, req *http.Request) {
		before := mappings(req.Context(), r)
		n, err := r.Flush(req.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeResult(w, r, req.Context(), n, before)
	})
	mux.HandleFunc("POST /v1/reset", func(w http.ResponseWriter, req *http.Request) {
		before := mappings(req.Context(), r)
		n, err := r.Reset(req.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeResult(w, r, req.Context(), n, before)
	})
	return mux
}

// withDefaults replaces each "default" value with the startup one.
func (sr SettingsRequest) withDefaults(init Settings) SettingsRequest {
	if strings.EqualFold(sr.Preset, "default") {
		sr.Preset = init.Preset
	}
	if strings.EqualFold(sr.Pinhole, "default") {
		sr.Pinhole = init.Pinhole.String()
	}
	if strings.EqualFold(sr.ALG, "default") {
		sr.ALG = init.ALG
	}
	return sr
}

func (sr SettingsRequest) settings() (Settings, error) {
	s := Settings{Preset: sr.Preset, ALG: sr.ALG}
	if sr.Pinhole != "" {
		d, err := time.ParseDuration(sr.Pinhole)
		if err != nil {
			return s, fmt.Errorf("%w: %q: %w", ErrBadPinhole, sr.Pinhole, err)
		}
		if err := validatePinhole(d); err != nil {
			return s, err
		}
		s.Pinhole = d
	}
	if s == (Settings{}) {
		return s, errors.New("nothing to set: give preset, pinhole or alg")
	}
	return s, nil
}

// mappings are the translated mappings now, to say which a flush drops.
func mappings(ctx context.Context, r *Router) []Mapping {
	st, err := r.Status(ctx)
	if err != nil {
		return nil
	}
	var out []Mapping
	for _, m := range st.Mappings {
		if m.Translated {
			out = append(out, m)
		}
	}
	return out
}

func writeResult(w http.ResponseWriter, r *Router, ctx context.Context, n int, dropped []Mapping) {
	st, err := r.Status(ctx)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, SetResult{Flushed: n, Dropped: dropped, Status: st})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, errorBody{Error: err.Error()})
}

// Client talks to a router's control socket.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the control socket at path.
func NewClient(path string) *Client {
	return &Client{
		socket: path,
		hc: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		}},
	}
}

// Status fetches the router's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Set changes settings live.
func (c *Client) Set(ctx context.Context, sr SettingsRequest) (SetResult, error) {
	var res SetResult
	err := c.do(ctx, http.MethodPost, "/v1/settings", sr, &res)
	return res, err
}

// Reset puts the startup settings back and forgets all mappings.
func (c *Client) Reset(ctx context.Context) (SetResult, error) {
	var res SetResult
	err := c.do(ctx, http.MethodPost, "/v1/reset", nil, &res)
	return res, err
}

// Flush forgets all mappings.
func (c *Client) Flush(ctx context.Context) (SetResult, error) {
	var res SetResult
	err := c.do(ctx, http.MethodPost, "/v1/flush", nil, &res)
	return res, err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://natrouter"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("natrouter: control socket %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("natrouter: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			return fmt.Errorf("natrouter: %s", eb.Error)
		}
		return fmt.Errorf("natrouter: %s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("natrouter: decode response: %w", err)
	}
	return nil
}
