// Package ctl is the lab's control plane: JSON over HTTP on a unix socket.
//
// Every daemon serves one socket; its CLI verbs are subcommands of the same
// binary that talk to it (a FROM scratch image has no shell or curl, so
// `docker exec alice /uaclient status` must be the daemon binary itself). A
// unix socket rather than a TCP port keeps control traffic off the lab
// networks: it can never become a path around a NAT router.
//
// Wire format: requests and responses are JSON. A failure is any HTTP status
// >= 400 with the body {"error": "..."}; Client turns it into an *Error whose
// text is the server's message, so a CLI can print it as is.
package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

var (
	// ErrInUse means another live process already serves the socket path.
	ErrInUse = errors.New("ctl: socket already in use by a running daemon")
	// ErrNotSocket means the socket path exists and is not a socket; we
	// refuse to delete what we did not create.
	ErrNotSocket = errors.New("ctl: path exists and is not a unix socket")
	// ErrUnavailable means the client could not reach the daemon at all.
	ErrUnavailable = errors.New("ctl: daemon not reachable")
	// ErrBadRequest wraps request bodies a handler cannot decode.
	ErrBadRequest = errors.New("ctl: bad request")
)

// maxBody bounds request and response bodies; control messages are tiny.
const maxBody = 1 << 20

// Error is a failure reported by the server: the HTTP status and the
// server's own message.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Listen binds a unix socket at path: it creates the parent directory,
// removes a stale socket left by a crashed daemon (but not a live one), and
// makes the socket 0660 so a group can be granted control without root.
func Listen(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("ctl: empty socket path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("ctl: create socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("ctl: listen %s: %w", path, err)
	}
	// Close must not unlink: Serve removes the file itself, and only if it
	// is still ours.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("ctl: chmod %s: %w", path, err)
	}
	return ln, nil
}

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ctl: stat %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%w: %s", ErrNotSocket, path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: %s", ErrInUse, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ctl: remove stale socket %s: %w", path, err)
	}
	return nil
}

// Serve listens on path and serves h until ctx ends, then shuts down and
// removes the socket. It returns nil on a clean shutdown.
func Serve(ctx context.Context, path string, h http.Handler) error {
	ln, err := Listen(path)
	if err != nil {
		return err
	}
	return ServeListener(ctx, ln, h)
}

// ServeListener serves h on an already bound listener (from Listen) until
// ctx ends. Splitting it from Listen lets a daemon fail fast on a bad socket
// path before it starts anything else.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	path := ln.Addr().String()
	select {
	case err := <-errc:
		os.Remove(path)
		return fmt.Errorf("ctl: serve %s: %w", path, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	os.Remove(path)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("ctl: shutdown %s: %w", path, err)
	}
	return nil
}

// Start binds path and serves h in the background until stop is called;
// stop shuts the server down, removes the socket and returns what serving
// ended with. For tests and for daemons whose main loop is elsewhere.
func Start(path string, h http.Handler) (stop func() error, err error) {
	ln, err := Listen(path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, h) }()
	return func() error {
		cancel()
		return <-done
	}, nil
}

// WriteJSON writes v as the JSON response body with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// WriteError writes the error body {"error": msg} with status.
func WriteError(w http.ResponseWriter, status int, err error) {
	WriteJSON(w, status, map[string]string{"error": err.Error()})
}

// Decode reads a JSON request body into v. An empty body leaves v as is, so
// verbs whose arguments are all optional can be posted bare. Unknown fields
// are refused: a typo in a script must not be silently ignored.
func Decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%w: read body: %w", ErrBadRequest, err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return nil
}

// Client talks to one daemon's socket. The zero value is unusable: set
// Socket.
type Client struct {
	Socket string
	// Timeout bounds one call when the context has no deadline; 0 means
	// 30 s. Verbs that wait (a call being answered) pass their own context.
	Timeout time.Duration
}

// Get fetches path and decodes the JSON reply into out (nil to discard).
func (c Client) Get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// Post sends in as JSON (nil for no body) and decodes the reply into out.
func (c Client) Post(ctx context.Context, path string, in, out any) error {
	return c.do(ctx, http.MethodPost, path, in, out)
}

func (c Client) do(ctx context.Context, method, path string, in, out any) error {
	if c.Socket == "" {
		return fmt.Errorf("%w: no socket path given", ErrUnavailable)
	}
	if _, ok := ctx.Deadline(); !ok {
		t := c.Timeout
		if t == 0 {
			t = 30 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("ctl: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	// The host part is ignored: the transport always dials the socket.
	req, err := http.NewRequestWithContext(ctx, method, "http://ctl"+path, body)
	if err != nil {
		return fmt.Errorf("ctl: build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", c.Socket)
		},
		DisableKeepAlives: true,
	}}
	res, err := hc.Do(req)
	if err != nil {
		if isDialError(err) {
			return fmt.Errorf("%w at %s (is the daemon running?): %w", ErrUnavailable, c.Socket, err)
		}
		return fmt.Errorf("ctl: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return fmt.Errorf("ctl: read reply: %w", err)
	}
	if res.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if msg == "" {
			msg = res.Status
		}
		return &Error{Status: res.StatusCode, Message: msg}
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("ctl: decode reply from %s: %w", path, err)
	}
	return nil
}

func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}
