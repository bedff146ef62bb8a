package ctl

import (
	"context"
	"errors"
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

// SetHandler is the POST /set route every daemon serves alike: it decodes
// a SetRequest, calls set with its name and value, and answers 200 with
// what set returns (the settings then in force), as JSON. A refused
// change is 400, or 404 when its error wraps unknown (a name the daemon
// does not have; nil: every refusal is 400), with the error's text.
func SetHandler[T any](set func(name, value string) (T, error), unknown error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in SetRequest
		if err := Decode(r, &in); err != nil {
			WriteError(w, http.StatusBadRequest, err)
			return
		}
		out, err := set(in.Name, in.Value)
		switch {
		case err != nil && unknown != nil && errors.Is(err, unknown):
			WriteError(w, http.StatusNotFound, err)
		case err != nil:
			WriteError(w, http.StatusBadRequest, err)
		default:
			WriteJSON(w, http.StatusOK, out)
		}
	}
}
