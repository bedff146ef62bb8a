package ctl

import (
	"context"
	"net/http"
)

// NewMux is a control API mux with the routes every daemon serves alike,
// each answering 200 with what its function returns, as JSON:
//
//	GET  /status    status()
//	GET  /settings  settings()
//	POST /reset     reset(the request's context)
//
// The daemon adds its own routes (POST /set, POST /unblock, ...) to it.
func NewMux[S, T, R any](status func() S, settings func() T, reset func(context.Context) R) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, status())
	})
	mux.HandleFunc("GET /settings", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, settings())
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, reset(r.Context()))
	})
	return mux
}
