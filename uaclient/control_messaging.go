package uaclient

import (
	"context"
	"net/http"

	"github.com/siplab/siplab/internal/ctl"
)

// messagingRoutes: presence and message-waiting subscriptions, MESSAGE
// and OPTIONS.
func (p *Phone) messagingRoutes() []route {
	return []route{
		{"POST /message", verb(func(ctx context.Context, in CallRequest) (MessageRecord, error) {
			return p.SendMessage(ctx, in.Target, in.Text)
		})},
		{"POST /unsubscribe", verb(func(ctx context.Context, in CallRequest) (SubscriptionStatus, error) {
			return p.Unsubscribe(ctx, in.Call)
		})},
		{"POST /subscribe", func(w http.ResponseWriter, r *http.Request) {
			var in CallRequest
			if !decode(w, r, &in) {
				return
			}
			st, err := p.Subscribe(r.Context(), in.Target, in.Event)
			if err != nil && st.ID == "" {
				writeErr(w, err)
				return
			}
			// A refused SUBSCRIBE is an answer: report it, not an error.
			ctl.WriteJSON(w, http.StatusOK, st)
		}},
		{"POST /options", func(w http.ResponseWriter, r *http.Request) {
			var in CallRequest
			if !decode(w, r, &in) {
				return
			}
			res, err := p.Options(r.Context(), in.Target)
			if err != nil && res.Code == 0 {
				writeErr(w, err)
				return
			}
			// A failure response is still an answer: report it, not an error.
			ctl.WriteJSON(w, http.StatusOK, res)
		}},
	}
}
