package ctl

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/runtest"
)

type echoIn struct {
	Name string `json:"name"`
}

type echoOut struct {
	Hello string `json:"hello"`
}

func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, echoOut{Hello: "status"})
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		var in echoIn
		if err := Decode(r, &in); err != nil {
			WriteError(w, http.StatusBadRequest, err)
			return
		}
		if in.Name == "" {
			WriteError(w, http.StatusUnprocessableEntity, errors.New("name is required"))
			return
		}
		WriteJSON(w, http.StatusOK, echoOut{Hello: in.Name})
	})
	mux.HandleFunc("GET /plain-fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "plain text failure", http.StatusInternalServerError)
	})
	return mux
}

// serve starts a server on a fresh socket and returns a client for it.
func serve(t *testing.T) (Client, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "d.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	// Checked after the server stopped: cleanups run last first.
	t.Cleanup(func() {
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket not removed after shutdown: %v", err)
		}
	})
	runtest.Serve(t, func(ctx context.Context) error { return ServeListener(ctx, ln, testMux()) })
	return Client{Socket: path, Timeout: 5 * time.Second}, path
}

func TestClientServer(t *testing.T) {
	c, path := serve(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o660 {
		t.Errorf("socket mode %o, want 660", perm)
	}

	tests := []struct {
		name       string
		method     string
		path       string
		in         any
		wantHello  string
		wantStatus int    // 0: success expected
		wantMsg    string // substring of the error message
	}{
		{name: "get", method: "GET", path: "/status", wantHello: "status"},
		{name: "path without slash", method: "GET", path: "status", wantHello: "status"},
		{name: "post", method: "POST", path: "/echo", in: echoIn{Name: "alice"}, wantHello: "alice"},
		{name: "server error message", method: "POST", path: "/echo", in: echoIn{}, wantStatus: 422, wantMsg: "name is required"},
		{name: "empty body allowed", method: "POST", path: "/echo", wantStatus: 422, wantMsg: "name is required"},
		{name: "unknown field refused", method: "POST", path: "/echo", in: map[string]string{"nmae": "x"}, wantStatus: 400, wantMsg: `unknown field "nmae"`},
		{name: "non-json error body", method: "GET", path: "/plain-fail", wantStatus: 500, wantMsg: "plain text failure"},
		{name: "unknown path", method: "GET", path: "/nope", wantStatus: 404, wantMsg: "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out echoOut
			var err error
			if tt.method == "GET" {
				err = c.Get(context.Background(), tt.path, &out)
			} else {
				err = c.Post(context.Background(), tt.path, tt.in, &out)
			}
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if out.Hello != tt.wantHello {
					t.Fatalf("hello = %q, want %q", out.Hello, tt.wantHello)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want *ctl.Error", err, err)
			}
			if ce.Status != tt.wantStatus {
				t.Errorf("status %d, want %d", ce.Status, tt.wantStatus)
			}
			if !strings.Contains(ce.Error(), tt.wantMsg) {
				t.Errorf("message %q does not contain %q", ce.Error(), tt.wantMsg)
			}
		})
	}
}

func TestListenSocketPath(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr error
	}{
		{name: "fresh path"},
		{
			name: "stale socket of a dead daemon is replaced",
			prepare: func(t *testing.T, path string) {
				ln, err := net.Listen("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				ln.(*net.UnixListener).SetUnlinkOnClose(false)
				ln.Close()
				if _, err := os.Stat(path); err != nil {
					t.Fatalf("stale socket not left behind: %v", err)
				}
			},
		},
		{
			name: "live socket is refused",
			prepare: func(t *testing.T, path string) {
				ln, err := net.Listen("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						c.Close()
					}
				}()
			},
			wantErr: ErrInUse,
		},
		{
			name: "regular file is not deleted",
			prepare: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: ErrNotSocket,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), fmt.Sprintf("s%d.sock", i))
			if tt.prepare != nil {
				tt.prepare(t, path)
			}
			ln, err := Listen(path)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if tt.wantErr == ErrNotSocket {
					if b, _ := os.ReadFile(path); string(b) != "keep me" {
						t.Fatal("regular file was modified")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ln.Close()
		})
	}
}

func TestClientUnavailable(t *testing.T) {
	tests := []struct {
		name   string
		client Client
	}{
		{name: "no socket file", client: Client{Socket: filepath.Join(t.TempDir(), "missing.sock")}},
		{name: "empty socket path", client: Client{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.client.Get(context.Background(), "/status", nil)
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestServeEndsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.sock")
	_, stop := runtest.Start(t, func(ctx context.Context, ready func(struct{})) error {
		ready(struct{}{})
		return Serve(ctx, path, testMux())
	})
	c := Client{Socket: path, Timeout: 5 * time.Second}
	// Serve binds asynchronously here; poll until it answers.
	var err error
	for range 500 {
		if err = c.Get(context.Background(), "/status", nil); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("server never answered: %v", err)
	}
	stop() // fails the test unless Serve returns nil after the cancel
	if err := c.Get(context.Background(), "/status", nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after shutdown: err = %v, want ErrUnavailable", err)
	}
}

// Start serves until stop, which removes the socket; a second Start on a
// live socket is refused.
func TestStartStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	stop, err := Start(path, testMux())
	if err != nil {
		t.Fatal(err)
	}
	var out echoOut
	if err := (Client{Socket: path}).Get(context.Background(), "/status", &out); err != nil || out.Hello != "status" {
		t.Fatalf("status: %+v %v", out, err)
	}
	if _, err := Start(path, testMux()); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Start: %v, want ErrInUse", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket left after stop: %v", err)
	}
}
