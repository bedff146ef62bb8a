package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/siplab/siplab/lab/exercise"
	"github.com/siplab/siplab/lab/labops"
	"github.com/siplab/siplab/natrouter"
)

// actionResult is what every button gets back: what the verb printed, or
// its error.
type actionResult struct {
	OK     bool   `json:"ok"`
	Output string `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
	Result any    `json:"result,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// decode reads a small JSON body into v; anything else is a 400.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeJSON(w, http.StatusUnsupportedMediaType, actionResult{Error: "send JSON (Content-Type: application/json)"})
		return false
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, actionResult{Error: "bad request: " + err.Error()})
		return false
	}
	return true
}

// reply answers an action and has the poller read the lab again at once,
// so every browser sees what the button did.
func (s *Server) reply(w http.ResponseWriter, out []byte, result any, err error) {
	s.poller.Kick()
	res := actionResult{OK: err == nil, Output: string(out), Result: result}
	code := http.StatusOK
	if err != nil {
		res.Error = err.Error()
		code = http.StatusUnprocessableEntity
		if errors.Is(err, labops.ErrUsage) {
			code = http.StatusBadRequest
		}
	}
	writeJSON(w, code, res)
}

// meta is what the page's controls offer: the verbs, the router presets,
// the exercises.
func (s *Server) meta(w http.ResponseWriter, r *http.Request) {
	var presets []map[string]string
	for _, p := range natrouter.Presets() {
		presets = append(presets, map[string]string{"name": p.Name, "doc": p.Summary})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"phone_verbs": labops.PhoneVerbs,
		"presets":     presets,
		"alg":         []string{"off", "kernel", "broken"},
		"token":       !s.loopback,
	})
}

func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	for _, name := range []string{"state", "calls"} {
		if name != r.URL.Query().Get("event") {
			continue
		}
		if e, ok := s.hub.Last(name); ok {
			w.Header().Set("Content-Type", "application/json")
			w.Write(e.Data)
			return
		}
	}
	http.Error(w, "console: no such event yet (state, calls)", http.StatusNotFound)
}

// ladder is one call's projector page (ladder.WriteHTML, the same drawing
// as siplab ladder -html), for the page's live-ladder frame.
func (s *Server) ladder(w http.ResponseWriter, r *http.Request) {
	c, err := s.poller.call(r.URL.Query().Get("call"))
	if err != nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="stylesheet" href="/static/ladder-frame.css"></head><body><p class="empty">%s</p></body></html>`,
			htmlEscape(err.Error()))
		return
	}
	page, err := s.poller.page(c)
	if err != nil {
		http.Error(w, "console: ladder: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Siplab-Call", fmt.Sprint(c.N))
	io.WriteString(w, page)
}

func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	return r.Replace(s)
}

type phoneReq struct {
	Verb  string   `json:"verb"`
	Phone string   `json:"phone"`
	Args  []string `json:"args"`
}

func (s *Server) phone(w http.ResponseWriter, r *http.Request) {
	var q phoneReq
	if !decode(w, r, &q) {
		return
	}
	if !labops.IsPhoneVerb(q.Verb) || q.Phone == "" {
		writeJSON(w, http.StatusBadRequest, actionResult{Error: fmt.Sprintf("verb must be one of %s, with a phone", strings.Join(labops.PhoneVerbs, ", "))})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	out, err := s.cfg.Lab.Phone(ctx, q.Verb, append([]string{q.Phone}, q.Args...))
	s.reply(w, out, nil, err)
}

type setReq struct {
	Node  string `json:"node"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (s *Server) set(w http.ResponseWriter, r *http.Request) {
	var q setReq
	if !decode(w, r, &q) {
		return
	}
	if q.Node == "" || q.Key == "" {
		writeJSON(w, http.StatusBadRequest, actionResult{Error: "set needs node, key and value"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	out, err := s.cfg.Lab.Set(ctx, q.Node, q.Key, q.Value)
	s.reply(w, out, nil, err)
}

func (s *Server) reset(w http.ResponseWriter, r *http.Request) {
	var q struct{}
	if !decode(w, r, &q) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	out, err := s.cfg.Lab.Reset(ctx)
	s.reply(w, out, nil, err)
}

// exerciseRow is one exercise in the panel's list.
type exerciseRow struct {
	ID      string           `json:"id"`
	Module  string           `json:"module"`
	Title   string           `json:"title"`
	Task    string           `json:"task"`
	Current bool             `json:"current,omitempty"`
	Started time.Time        `json:"started,omitzero"`
	Passed  time.Time        `json:"passed,omitzero"`
	Checks  int              `json:"checks"`
	Last    *exercise.Result `json:"last,omitempty"`
}

func (s *Server) exercises(w http.ResponseWriter, r *http.Request) {
	exs := s.cfg.Lab.Exercises()
	prog, err := exs.Store.Load()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, actionResult{Error: err.Error()})
		return
	}
	rows := []exerciseRow{}
	for _, ex := range exercise.All() {
		row := exerciseRow{ID: ex.ID, Module: ex.Module, Title: ex.Title, Task: ex.Task, Current: ex.ID == prog.Current}
		if rec, ok := prog.Exercises[ex.ID]; ok {
			row.Started, row.Passed, row.Checks, row.Last = rec.Started, rec.Passed, rec.Checks, rec.Last
		}
		rows = append(rows, row)
	}
	writeJSON(w, http.StatusOK, map[string]any{"current": prog.Current, "exercises": rows})
}

type exerciseReq struct {
	Op string `json:"op"` // start, hint, check, solve, reset
	ID string `json:"id"`
	// Answer is the value an exercise asks for (02-anatomy), for check.
	Answer string `json:"answer,omitempty"`
}

func (s *Server) exercise(w http.ResponseWriter, r *http.Request) {
	var q exerciseReq
	if !decode(w, r, &q) {
		return
	}
	exs := s.cfg.Lab.Exercises()
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	var err error
	var result any
	switch q.Op {
	case "start":
		_, err = exs.Start(ctx, q.ID, &out)
	case "hint":
		var h string
		h, err = exs.Hint(q.ID)
		out.WriteString(h)
	case "check":
		var res exercise.Result
		res, err = exs.Check(ctx, q.ID, q.Answer)
		if err == nil {
			out.WriteString(res.String())
			result = res
		}
	case "solve":
		err = exs.Solve(ctx, q.ID, &out)
	case "reset":
		err = exs.Reset(ctx, q.ID, &out)
	default:
		writeJSON(w, http.StatusBadRequest, actionResult{Error: "op must be start, hint, check, solve or reset"})
		return
	}
	s.reply(w, out.Bytes(), result, err)
}

// doctor runs the doctor's state rules now (the capture rules run with
// every build of the calls and arrive with them).
func (s *Server) doctor(w http.ResponseWriter, r *http.Request) {
	var q struct{}
	if !decode(w, r, &q) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	fs := s.cfg.Lab.StateFindings(ctx)
	docs := findingDocs(fs)
	s.reply(w, nil, docs, nil)
}
